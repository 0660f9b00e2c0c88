// The kernels and their workers must run outside jest too: in an esbuild bundle (plain and minified)
// and as per-file compiled JavaScript under plain node. Each child process also leaves its pools
// open on purpose: idle workers must not keep the process alive.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildSync, transformSync } from 'esbuild';

const ROOT = path.resolve(__dirname, '../..');
const COMPUTE = path.join(ROOT, 'compute');

// Runs gemm, a 2-thread pool and gemmAsync on one i8 problem (big enough to reach the workers),
// checks all three against a naive loop, and prints the verdict. Never closes a pool.
const SCRIPT = (entry: string) => `
const { gemm, createPool, gemmAsync } = require(${JSON.stringify(entry)});
(async () => {
  const m = 130, n = 120, k = 700;
  const a = new Int8Array(m * k).map((_, i) => ((i * 37) % 255) - 127);
  const b = new Int8Array(k * n).map((_, i) => ((i * 91) % 251) - 125);
  const cs = [0, 1, 2].map(() => new Int32Array(m * n));
  gemm({ dtype: 'i8', m, n, k, a, b, c: cs[0] });
  await createPool({ threads: 2, minFlops: 0 }).gemm({ dtype: 'i8', m, n, k, a, b, c: cs[1] });
  await gemmAsync({ dtype: 'i8', m, n, k, a, b, c: cs[2] });
  let bad = 0;
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
    for (const c of cs) if (c[i * n + j] !== s) bad++;
  }
  console.log(bad === 0 ? 'OK' : 'MISMATCH ' + bad);
})().catch((e) => { console.log('ERROR ' + e.stack); });
`;

function runNode(file: string): { out: string; status: number | null } {
  // The timeout only guards against a hang (a pool keeping the process alive); nothing is timed.
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 20000 });
  return { out: `${r.stdout}${r.stderr}`.trim(), status: r.status };
}

let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-compute-')); });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test.each([false, true])('esbuild bundle (minify=%s), run with plain node', (minify) => {
  const entry = path.join(dir, `entry-${minify}.js`);
  fs.writeFileSync(entry, SCRIPT(path.join(COMPUTE, 'index.ts')));
  const outfile = path.join(dir, `bundle-${minify}.js`);
  buildSync({ entryPoints: [entry], bundle: true, platform: 'node', target: 'node20', minify, outfile, logLevel: 'error' });
  expect(runNode(outfile)).toEqual({ out: 'OK', status: 0 });
});

test('per-file compiled JavaScript (no bundler), run with plain node', () => {
  const out = path.join(dir, 'plain', 'compute');
  fs.mkdirSync(out, { recursive: true });
  for (const f of fs.readdirSync(COMPUTE).filter((x) => x.endsWith('.ts'))) {
    const js = transformSync(fs.readFileSync(path.join(COMPUTE, f), 'utf8'), { loader: 'ts', format: 'cjs', target: 'node20' }).code;
    fs.writeFileSync(path.join(out, f.replace(/\.ts$/, '.js')), js);
  }
  const main = path.join(dir, 'plain', 'main.js');
  fs.writeFileSync(main, SCRIPT('./compute/index.js'));
  expect(runNode(main)).toEqual({ out: 'OK', status: 0 });
});
