// Reading a -batch file the way iproute2 does: one command a line, # comments, quotes and
// backslash escapes grouping words; "-" is standard input.
import * as fs from 'fs';
import { OpError, UsageError } from './args';

export interface BatchLine { words: string[]; line: number }

export function splitWords(s: string, line: number): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && i + 1 < s.length) cur += s[++i];
      else cur += c;
    } else if (c === '"' || c === "'") { quote = c; inWord = true; }
    else if (c === '\\' && i + 1 < s.length) { cur += s[++i]; inWord = true; }
    else if (c === '#') break;
    else if (/\s/.test(c)) { if (inWord) words.push(cur); cur = ''; inWord = false; }
    else { cur += c; inWord = true; }
  }
  if (quote) throw new UsageError(`Unterminated quote on line ${line}.`);
  if (inWord) words.push(cur);
  return words;
}

export function readBatch(file: string): BatchLine[] {
  let text: string;
  try {
    text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new OpError(`Cannot open file "${file}" for batch: ${(e as Error).message}`);
  }
  return text.split('\n').map((l, i) => ({ words: splitWords(l, i + 1), line: i + 1 })).filter((l) => l.words.length);
}
