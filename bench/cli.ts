// CLI start-up: wall time of `accel dev show` (launcher, bundle load, connect, resolve, one dump,
// print, exit) against a running daemon, next to a bare `node -e 0` for scale (issue 17: the
// ratio of the medians at most 1.2).
//
// Paired, interleaved rounds: each round runs every command once, in an order that rotates from
// round to round, so that a neighbour's burst of load falls on all of them alike. Reported: the
// median and spread of each command, and the median of the per-round ratio dev show / node -e 0.
// ACCELNL_BENCH_ROOT=<dir>: time that tree's bin/accel (an installed package, say) instead.
import { spawnSync } from 'child_process';
import * as os from 'os';
import * as path from 'path';
import { startChild } from './_daemon';
import { fmt, quick, smoke, report, stats, table } from './_lib';

const root = process.env.ACCELNL_ROOT ?? process.cwd();
const accel = path.join(process.env.ACCELNL_BENCH_ROOT ?? root, 'bin/accel');
const rounds = smoke ? 2 : quick ? 20 : 40;

function once(argv: string[], env: NodeJS.ProcessEnv): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, argv, { env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
  return ms;
}

async function main(): Promise<void> {
  const port = 0x41500000 + (process.pid & 0xffff);
  await require(path.join(root, 'bin/build.js')).build();
  const d = await startChild(port);
  try {
    const env = { ...process.env, ACCEL_NL_PORT: String(port) };
    const cases: [string, string[]][] = [
      ['node -e 0', ['-e', '0']],
      ['accel -V', [accel, '-V']],
      ['accel dev show', [accel, 'dev', 'show']],
      ['accel -j ras show', [accel, '-j', 'ras', 'show']],
    ];
    // Two warm-up rounds (page cache, code cache), not counted.
    for (let i = 0; i < 2; i++) for (const [, argv] of cases) once(argv, env);
    const ms: number[][] = cases.map(() => []);
    const ratio: number[] = [];
    const load0 = os.loadavg()[0];
    for (let r = 0; r < rounds; r++) {
      const round: number[] = [];
      for (let j = 0; j < cases.length; j++) {
        const c = (j + r) % cases.length;
        round[c] = once(cases[c][1], env);
      }
      round.forEach((x, c) => ms[c].push(x));
      ratio.push(round[2] / round[0]);
    }
    const load1 = os.loadavg()[0];
    const rows = cases.map(([name], c) => {
      const s = stats(ms[c]);
      return { command: name, 'median ms': fmt(s.median, 1), 'q1-q3 ms': `${fmt(s.q1, 1)}-${fmt(s.q3, 1)}`, 'min-max ms': `${fmt(s.min, 1)}-${fmt(s.max, 1)}`, runs: s.n };
    });
    const r = stats(ratio);
    table(`CLI wall time, ${rounds} paired interleaved rounds, load ${load0.toFixed(1)} -> ${load1.toFixed(1)} ` +
      `(goal: accel dev show / node -e 0 at most 1.2; per-round ratio median ${r.median.toFixed(2)}, q1-q3 ${r.q1.toFixed(2)}-${r.q3.toFixed(2)})`, rows);
    report('cli', { runs: rounds, rows, ratio: r, load: [load0, load1] });
  } finally {
    await d.stop();
  }
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
