// Argument handling shared by every object: iproute2 keyword abbreviation, a cursor over the
// words, and the two kinds of failure (bad syntax exits 2, a failed operation exits 1).

// Errors carry their exit status as a field, not a class to test with instanceof: the lazily
// loaded bundles (monitor, exporter) have their own copies of these classes.
/** Bad syntax: printed as is, exit status 2. */
export class UsageError extends Error { readonly exitStatus: number = 2; }
/** A failed operation (the daemon said no, or cannot be reached): exit status 1. */
export class OpError extends Error { readonly exitStatus: number = 1; }

/**
 * The keyword `word` abbreviates, from `keywords` in usage order: an exact match, else the first
 * keyword it is a prefix of. As in iproute2, order settles shared prefixes (`d` is dev, not daemon).
 */
export function keyword(word: string, keywords: readonly string[]): string | undefined {
  if (!word) return undefined;
  if (keywords.includes(word)) return word;
  return keywords.find((k) => k.startsWith(word));
}

export class Args {
  private i = 0;
  constructor(private words: string[]) {}
  get more(): boolean { return this.i < this.words.length; }
  peek(): string | undefined { return this.words[this.i]; }
  next(): string | undefined { return this.words[this.i++]; }
  rest(): string[] { const r = this.words.slice(this.i); this.i = this.words.length; return r; }
  /** The value after a keyword: `what` names it in the error. */
  value(kw: string, what: string): string {
    const v = this.next();
    if (v === undefined) throw new UsageError(`Command line is not complete. "${kw}" needs ${what}.`);
    return v;
  }
  /** Throw if anything is left over. */
  end(): void {
    if (this.more) throw new UsageError(`Unknown option "${this.peek()}".`);
  }
}

/**
 * An integer (decimal or 0x-hex, with an optional minus) within [min, max], as a number when safe,
 * else a bigint. A number out of range, a negative one included, is named as out of range.
 */
export function parseInteger(s: string, what: string, min: bigint, max: bigint): number | bigint {
  const m = /^(-?)(0x[0-9a-f]+|[0-9]+)$/i.exec(s);
  if (!m) throw new UsageError(`Invalid ${what} "${s}": expected a number.`);
  const n = m[1] ? -BigInt(m[2]) : BigInt(m[2]);
  if (n < min || n > max) throw new UsageError(`Invalid ${what} "${s}": out of range, ${what} is from ${min} to ${max}.`);
  return n <= BigInt(Number.MAX_SAFE_INTEGER) && n >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(n) : n;
}

/** A non-negative integer (decimal or 0x-hex), as a number when safe, else a bigint. */
export const parseUint = (s: string, what: string, max = 0xffffffffffffffffn): number | bigint => parseInteger(s, what, 0n, max);

export const parseU32 = (s: string, what: string): number => parseUint(s, what, 0xffffffffn) as number;

/** true/false, as devlink takes them. */
export function parseBool(s: string, what: string): boolean {
  if (s === 'true' || s === '1' || s === 'on') return true;
  if (s === 'false' || s === '0' || s === 'off') return false;
  throw new UsageError(`Invalid ${what} "${s}": expected true or false.`);
}

const UNITS: Record<string, bigint> = { '': 1n, k: 1n << 10n, m: 1n << 20n, g: 1n << 30n, t: 1n << 40n };

/** A byte size: 4096, 0x1000, 16G, 16GiB, 512M; at most `max` (a u64 by default). */
export function parseSize(s: string, what: string, max = 0xffffffffffffffffn): bigint {
  const m = /^(\d+)\s*([kmgt]?)(i?b)?$/i.exec(s);
  if (!m) throw new UsageError(`Invalid ${what} "${s}": expected a size like 16GiB.`);
  const n = BigInt(m[1]) * UNITS[m[2].toLowerCase()];
  if (n > max) throw new UsageError(`Invalid ${what} "${s}": out of range, ${what} is from 0 to ${max} bytes.`);
  return n;
}

/** A byte offset or length within a buffer object, as a number (exact up to 2^53 - 1). */
export const parseBytes = (s: string, what: string): number => Number(parseSize(s, what, BigInt(Number.MAX_SAFE_INTEGER)));

/** One of a spec enum's names, abbreviations allowed. */
export function parseEnum(s: string, names: readonly string[], what: string): string {
  const k = keyword(s, names);
  if (!k) throw new UsageError(`Invalid ${what} "${s}": expected one of ${names.join(', ')}.`);
  return k;
}

/** Leave with this status, the message (if any) already printed. */
export class Exit extends Error {
  constructor(readonly exitStatus: number) { super(''); }
}
