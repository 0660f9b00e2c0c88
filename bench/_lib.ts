// Shared benchmark helpers: time a function in rounds, take the median rate, print a table and
// write a JSON report. Ratios are always computed from numbers measured side by side in one run.
import * as fs from 'fs';
import * as path from 'path';

/** --smoke: the smallest run that proves a benchmark's setup works (npm test runs it); implies --quick. */
export const smoke = process.argv.includes('--smoke');
export const quick = smoke || process.argv.includes('--quick');

/** Operations per second: runs `fn(n)` (which performs n operations) until `ms` elapse, `rounds` times; median. */
export function rate(fn: (n: number) => void, ms = quick ? 150 : 1000, rounds = quick ? 3 : 7): number {
  if (smoke) { ms = 5; rounds = 1; }
  let n = 1;
  for (;;) { // calibrate: grow n until one batch takes >= 5 ms (also warms up the JIT)
    const t = process.hrtime.bigint();
    fn(n);
    if (Number(process.hrtime.bigint() - t) / 1e6 >= 5) break;
    n *= 2;
  }
  const rates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let ops = 0;
    const t0 = process.hrtime.bigint();
    let el = 0;
    while (el < ms) {
      fn(n);
      ops += n;
      el = Number(process.hrtime.bigint() - t0) / 1e6;
    }
    rates.push(ops / (el / 1000));
  }
  rates.sort((a, b) => a - b);
  return rates[rates.length >> 1];
}

/** Median and spread of repeated measurements: every figure is reported this way, never best-of. */
export interface Stats { median: number; min: number; max: number; q1: number; q3: number; n: number }

export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => {
    const i = (s.length - 1) * q, lo = Math.floor(i), hi = Math.ceil(i);
    return s[lo] + (s[hi] - s[lo]) * (i - lo);
  };
  return { median: at(0.5), min: s[0], max: s[s.length - 1], q1: at(0.25), q3: at(0.75), n: s.length };
}

export interface Row { [k: string]: string | number }

export function table(title: string, rows: Row[]): void {
  console.log(`\n## ${title}`);
  if (!rows.length) return;
  const cols = Object.keys(rows[0]);
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  console.log(cols.map((c, i) => c.padEnd(w[i])).join('  '));
  for (const r of rows) console.log(cols.map((c, i) => String(r[c]).padEnd(w[i])).join('  '));
}

export function report(name: string, data: unknown): void {
  const root = process.env.ACCELNL_ROOT ?? process.cwd();
  const dir = process.env.ACCELNL_BENCH_OUT ?? path.join(root, 'bench/results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify({ name, quick, smoke, date: new Date().toISOString(), node: process.version, data },
    (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2));
  console.log(`report: ${file}`);
}

export const fmt = (x: number, d = 0): string => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
