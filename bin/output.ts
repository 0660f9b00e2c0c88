// Output in devlink's shapes: text as a handle line with indented "key value" lines, JSON as one
// object keyed by section then by handle. u64 values above 2^53 go out as strings in JSON.

export interface Options {
  json: boolean;
  pretty: boolean;
  stats: boolean;
  timestamp: boolean;
  /** Set by -force in batch mode. */
  force: boolean;
}

export const defaultOptions = (): Options => ({ json: false, pretty: false, stats: false, timestamp: false, force: false });

export type Out = (s: string) => void;

/** "1 device", "2 devices": a count with its noun, singular or plural. */
export const plural = (n: number | bigint, one: string, many = `${one}s`): string => `${n} ${n === 1 || n === 1n ? one : many}`;

/** JSON numbers where exact, strings for larger integers (as devlink prints u64 values it cannot hold). */
export const jsonValue = (_k: string, v: unknown): unknown => {
  if (typeof v === 'bigint') return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (v instanceof Uint8Array) return hex(v);
  return v;
};

export function toJson(o: unknown, pretty: boolean): string {
  return JSON.stringify(o, jsonValue, pretty ? 2 : undefined);
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The devlink handle of a device: bus name / bus address. */
export const handleOf = (a: { busName?: string; busAddr?: string; devIndex?: number }): string =>
  a.busAddr !== undefined ? `${a.busName ?? 'pci'}/${a.busAddr}` : `accel${a.devIndex ?? '?'}`;

/** One text line of "key value" pairs; undefined values are left out, strings with spaces quoted. */
export function pairs(o: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    parts.push(`${k} ${fmt(v)}`);
  }
  return parts.join(' ');
}

function fmt(v: unknown): string {
  if (typeof v === 'string') return v === '' || /\s/.test(v) ? JSON.stringify(v) : v;
  if (v instanceof Uint8Array) return hex(v);
  if (Array.isArray(v)) return v.map(fmt).join(',');
  return String(v);
}

/** Big or small, as a number when exact. */
export const num = (v: number | bigint | undefined): number | bigint | undefined =>
  typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** Local date and time from nanoseconds since the epoch, as devlink prints last_dump_date/time. */
export function dateTime(ns: number | bigint): { date: string; time: string } {
  const big = BigInt(ns);
  const d = new Date(Number(big / 1000000n));
  const us = Number((big / 1000n) % 1000000n);
  return {
    date: `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
    time: `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(us, 6)}`,
  };
}

let anchor: { hr0: bigint; wall0: bigint } | undefined;

/**
 * Wall-clock nanoseconds since the epoch (the monotonic clock's resolution, anchored once, at the
 * first call: `performance` loads perf_hooks, which commands that print no time need not pay for).
 */
export function nowNs(): bigint {
  anchor ??= { hr0: process.hrtime.bigint(), wall0: BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n };
  return anchor.wall0 + (process.hrtime.bigint() - anchor.hr0);
}

/**
 * `ip -t monitor`'s line, "Timestamp: <ctime> <fraction>", with the fraction in nanoseconds:
 * "Timestamp: Mon Nov 24 10:00:00 2026 123456789 nsec".
 */
export function timestampLine(ns = nowNs()): string {
  const now = new Date(Number(ns / 1000000n));
  const [day, mon, dd, yyyy] = now.toDateString().split(' ');
  const ctime = `${day} ${mon} ${dd.replace(/^0/, ' ')} ${now.toTimeString().slice(0, 8)} ${yyyy}`;
  return `Timestamp: ${ctime} ${ns % 1000000000n} nsec`;
}

/** RFC 3339 in UTC with nanoseconds: 2026-11-24T10:00:00.123456789Z (JSON monitor output). */
export function isoNs(ns = nowNs()): string {
  return `${new Date(Number(ns / 1000000n)).toISOString().slice(0, 19)}.${String(ns % 1000000000n).padStart(9, '0')}Z`;
}
