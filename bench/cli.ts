// CLI start-up: wall time of `accel dev show` (launcher, bundle load, connect, resolve, one dump,
// print, exit) against a running daemon, next to a bare `node -e 0` for scale. Goal: under 150 ms.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { startChild } from './_daemon';
import { fmt, quick, smoke, report, table } from './_lib';

const root = process.env.ACCELNL_ROOT ?? process.cwd();
const accel = path.join(root, 'bin/accel');
const runs = smoke ? 2 : quick ? 10 : 40;

function time(argv: string[], env: NodeJS.ProcessEnv): number[] {
  const ms: number[] = [];
  for (let i = 0; i < runs + 2; i++) {
    const t = process.hrtime.bigint();
    const r = spawnSync(process.execPath, argv, { env, encoding: 'utf8' });
    const el = Number(process.hrtime.bigint() - t) / 1e6;
    if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
    if (i >= 2) ms.push(el); // the first two warm the page cache
  }
  return ms.sort((a, b) => a - b);
}

const pct = (xs: number[], p: number): number => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))];

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
    const rows = cases.map(([name, argv]) => {
      const ms = time(argv, env);
      return { command: name, 'median ms': fmt(pct(ms, 0.5), 1), 'p90 ms': fmt(pct(ms, 0.9), 1), 'min ms': fmt(ms[0], 1), runs: ms.length };
    });
    table(`CLI wall time, ${runs} runs each (goal: accel dev show under 150 ms)`, rows);
    report('cli', { runs, rows });
  } finally {
    await d.stop();
  }
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
