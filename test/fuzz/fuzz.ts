// The mutation fuzz loop: pick an input from the pool, mutate it, run it (harness.ts), keep inputs
// that make the server answer in a way not seen before (errno, message, reply kind: a cheap stand-in
// for coverage), and save each distinct problem as a regression file under test/fuzz/corpus/.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as A from '../../attrs';
import * as G from '../../genl';
import { rng } from './gen';
import { type Target, closeTarget, newTarget, runOne, seedCorpus } from './harness';
import { mutate } from './mutate';

/** test/fuzz/corpus; the CLI runs from a bundle elsewhere and says where the repo is. */
export const CORPUS_DIR = process.env.ACCELNL_ROOT ? path.join(process.env.ACCELNL_ROOT, 'test/fuzz/corpus') : path.join(__dirname, 'corpus');

export interface CorpusEntry { file: string; data: Uint8Array; nobody: boolean; note: string }

/**
 * A regression file: '#' comment lines (what went wrong, how it was made), then hex. A long run of
 * trailing zero bytes is left out and restored from a "# length: N" line.
 */
export function formatEntry(data: Uint8Array, nobody: boolean, notes: string[]): string {
  let n = data.length;
  while (n > 64 && data[n - 1] === 0) n--;
  if (data.length - n < 256) n = data.length;
  const hex = Buffer.from(data.subarray(0, n)).toString('hex').replace(/(.{64})/g, '$1\n').trim();
  return [...notes.map((x) => `# ${x.replace(/\n/g, ' ')}`), `# sender: ${nobody ? 'nobody' : 'root'}`,
    ...(n < data.length ? [`# length: ${data.length}`] : []), hex, ''].join('\n');
}

export function loadCorpus(dir = CORPUS_DIR): CorpusEntry[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => f.endsWith('.hex')).sort().map((f) => {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    const lines = text.split('\n');
    const comments = lines.filter((l) => l.startsWith('#'));
    const hex = Buffer.from(lines.filter((l) => !l.startsWith('#')).join('').replace(/\s/g, ''), 'hex');
    const len = /^# length: (\d+)/m.exec(text);
    const data = new Uint8Array(Math.max(hex.length, len ? Number(len[1]) : 0));
    data.set(hex);
    return { file: f, nobody: comments.some((l) => /sender: nobody/.test(l)), note: comments.map((l) => l.slice(2)).join('; '), data };
  });
}

export interface FuzzOptions {
  seconds?: number;
  iterations?: number;
  seed?: number;
  /** Where to save problems (default test/fuzz/corpus); null: don't save. */
  saveDir?: string | null;
  log?: (line: string) => void;
}

export interface Finding { signature: string; problems: string[]; ops: string[]; nobody: boolean; file?: string }

export interface FuzzResult {
  inputs: number;
  seconds: number;
  /** Distinct answer shapes seen (the feedback signal), and the pool size at the end. */
  outcomes: number;
  pool: number;
  findings: Finding[];
}

/** A problem with its numbers taken out, so one bug found many ways is saved once. */
const signatureOf = (p: string): string => p.replace(/0x[0-9a-f]+|\d+/gi, 'N');

/** What the answers to one input looked like: message kinds, errnos and extack messages. */
function outcome(t: Target): string {
  const parts: string[] = [];
  for (const s of t.sent) {
    for (const m of msgs(s.data)) {
      if (m.type === G.NLMSG.ERROR || m.type === G.NLMSG.DONE) {
        const { error, extack } = G.decodeStatus(m);
        parts.push(`${m.type}:${error}:${extack.msg ?? ''}:${extack.missType ?? ''}`);
      } else parts.push(`${m.type}/${m.cmd}${s.groups ? 'g' : ''}`);
    }
  }
  return [...new Set(parts)].sort().join(',');
}

function msgs(d: Uint8Array): G.Message[] {
  const v = A.view(d);
  const out: G.Message[] = [];
  G.forEachMessage(v, 0, d.length, (at, len) => {
    out.push({ v, at, len, type: v.dv.getUint16(at + 4, true), flags: v.dv.getUint16(at + 6, true), seq: v.dv.getUint32(at + 8, true),
      cmd: d[at + 16] ?? 0, version: 0, attrs: at + 20, end: at + len, port: 0, groups: 0 });
  });
  return out;
}

export async function fuzz(o: FuzzOptions = {}): Promise<FuzzResult> {
  const seed = o.seed ?? (Date.now() & 0x7fffffff);
  const r = rng(seed);
  const until = performance.now() + (o.seconds ?? 3) * 1000;
  const maxIter = o.iterations ?? Infinity;
  const saveDir = o.saveDir === undefined ? CORPUS_DIR : o.saveDir;
  let t = newTarget();
  const pool: Uint8Array[] = [...seedCorpus(t, r), ...loadCorpus().map((e) => e.data)];
  const seeds = pool.length;
  const seen = new Set<string>();
  const findings = new Map<string, Finding>();
  let n = 0;
  let lastLog = performance.now();
  while (n < maxIter && performance.now() < until) {
    const base = r.pick(pool);
    const { data, ops } = r.chance(0.03) ? { data: base, ops: ['none'] } : mutate(r, base, pool);
    const nobody = r.chance(0.2);
    const v = runOne(t, data, nobody, r);
    n++;
    if (v.problems.length) {
      const sig = signatureOf(v.problems[0]);
      if (!findings.has(sig)) {
        const f: Finding = { signature: sig, problems: v.problems, ops, nobody };
        if (saveDir) {
          fs.mkdirSync(saveDir, { recursive: true });
          const name = `${crypto.createHash('sha1').update(sig).digest('hex').slice(0, 12)}.hex`;
          f.file = path.join(saveDir, name);
          fs.writeFileSync(f.file, formatEntry(data, nobody, [`problem: ${v.problems.join(' / ')}`, `mutations: ${ops.join(', ')} (seed ${seed}, input ${n})`]));
        }
        findings.set(sig, f);
        o.log?.(`finding #${findings.size}: ${v.problems[0]} (${ops.join(', ')})${f.file ? ` -> ${path.basename(f.file)}` : ''}`);
      }
    } else {
      const sig = outcome(t);
      if (!seen.has(sig)) {
        seen.add(sig);
        if (pool.length < 20000 && data.length <= 8192) pool.push(data);
      }
    }
    if ((n & 255) === 0) await new Promise((res) => setImmediate(res)); // let resets and timers run
    if (t.runs >= 3000) { closeTarget(t); t = newTarget(); }
    if (o.log && performance.now() - lastLog > 10000) {
      lastLog = performance.now();
      o.log(`${n} inputs, ${seen.size} outcomes, pool ${pool.length} (${seeds} seeds), ${findings.size} findings`);
    }
  }
  closeTarget(t);
  const seconds = (performance.now() - (until - (o.seconds ?? 3) * 1000)) / 1000;
  return { inputs: n, seconds, outcomes: seen.size, pool: pool.length, findings: [...findings.values()] };
}
