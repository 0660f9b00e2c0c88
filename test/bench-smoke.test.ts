// Every benchmark runs in --smoke mode (tiny sizes, no timing claims), so the suite never rots:
// each must exit cleanly and write its JSON report.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

test('npm run bench -- --smoke: every benchmark runs and reports', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-bench-smoke-'));
  try {
    const root = path.resolve(__dirname, '..');
    const names = fs.readdirSync(path.join(root, 'bench')).filter((f) => f.endsWith('.ts') && !f.startsWith('_')).map((f) => f.slice(0, -3));
    const r = spawnSync(process.execPath, [path.join(root, 'bench/run.js'), '--smoke'], {
      env: { ...process.env, ACCELNL_BENCH_OUT: out }, encoding: 'utf8', timeout: 240000,
    });
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    for (const n of names) {
      const rep = JSON.parse(fs.readFileSync(path.join(out, `${n}.json`), 'utf8'));
      expect(rep).toMatchObject({ name: n, smoke: true });
    }
    // The pool's rows come with their anchor: the register-only loop on as many threads, measured in
    // the same rounds, and the summary quotes how far it scaled next to the pool's ratio.
    const gemm = JSON.parse(fs.readFileSync(path.join(out, 'gemm.json'), 'utf8'));
    const anchor = gemm.data.ratios['n=256'][`scalar peak ${gemm.data.threads} threads/1 thread`];
    expect(anchor).toBeGreaterThan(0);
    expect(gemm.data.results.find((x: { impl: string; n: number }) => x.n === 256 && x.impl === `scalar peak, ${gemm.data.threads} threads (pool anchor)`).median).toBeGreaterThan(0);
    const { figures } = require('../bench/summary.js') as { figures: (dir: string) => { label: string; detail: string }[] };
    const row = figures(out).find((f) => f.label === 'GEMM f32 2-worker pool / 1 thread (n=256)');
    expect(row?.detail).toContain(`the ${gemm.data.threads}-thread anchor scaled ${anchor.toFixed(2)}x`);
    // The request rate is measured against a busy-polling daemon too, in the same rounds.
    const rate = JSON.parse(fs.readFileSync(path.join(out, 'rate.json'), 'utf8'));
    for (const k of ['busy_1', 'busyjoined_1', 'busy_32', 'busyjoined_32']) expect([k, rate.data[k] > 0]).toEqual([k, true]);
    // (the row is a ratio to the C floor, which is skipped without a C compiler)
    if (!rate.data.floorSkipped) expect(figures(out).map((f) => f.label)).toContain(`sequential, daemon with --busy-poll ${rate.data.busyPollUs} vs floor`);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}, 300000);
