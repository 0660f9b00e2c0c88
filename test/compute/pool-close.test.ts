// A script that uses a pool and closes it must go on after close() resolves: idle workers are
// unref'd, and a close() awaiting their termination with nothing else keeping the process alive
// let Node exit (status 0) before it resolved, so what followed never ran (bench/gemm's report
// was missing in about one run in four). Run as its own process, since jest keeps the loop alive.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

test('close() resolves in a process that has nothing else to do', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-pool-close-'));
  try {
    const entry = path.join(dir, 'main.ts');
    fs.writeFileSync(entry, `
      import { createPool } from ${JSON.stringify(path.resolve(__dirname, '../../compute'))};
      async function main(): Promise<void> {
        const n = 96;
        const pool = createPool({ threads: 2, minFlops: 0 });
        const a = new Float32Array(n * n).fill(1), b = new Float32Array(n * n).fill(2), c = new Float32Array(n * n);
        for (let i = 0; i < 3; i++) await pool.gemm({ dtype: 'f32', m: n, n, k: n, a, b, c });
        await pool.close();
        process.stdout.write('after close ' + c[0]);
      }
      void main();
    `);
    const out = path.join(dir, 'main.js');
    require('esbuild').buildSync({ entryPoints: [entry], bundle: true, platform: 'node', outfile: out, logLevel: 'error' });
    for (let i = 0; i < 8; i++) {
      const r = spawnSync(process.execPath, [out], { encoding: 'utf8', timeout: 30000 });
      expect({ run: i, status: r.status, stdout: r.stdout }).toEqual({ run: i, status: 0, stdout: `after close ${2 * 96}` });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 120000);
