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
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}, 300000);
