// The kernels' warm-up (compute/kernels.ts warmUp) and pool.warm(): once they are done, real calls
// of every dtype, shape class, transpose and scalar, single-threaded and on the pool (shared and
// copied arrays, so the calling thread's share too), make V8 deoptimize no kernel function. A
// deoptimization throws compiled code away mid-call; before warmUp covered these, the first calls
// of a quick benchmark did (docs/performance.md, fourteenth round). A canary function deoptimized
// on purpose after the calls shows that the trace does report deoptimizations.

import { spawnSync } from 'child_process';
import * as esbuild from 'esbuild';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createPool } from '../../compute';
import { KERNEL_FUNCTIONS } from '../../compute/kernels';

const COMPUTE = path.resolve(__dirname, '../../compute');

// Runs in a node of its own, under --trace-deopt: jest's module sandbox is another V8 context, whose
// objects have other hidden classes than the kernels' (which run against the real global).
const SCRIPT = `
import { writeSync } from 'fs';
import { createPool, gemm } from ${JSON.stringify(COMPUTE)};
type Kind = 'f32' | 'f64' | 'i8';
function desc(dtype: Kind, m: number, n: number, k: number, tr: number, shared: boolean) {
  const I = dtype === 'f32' ? Float32Array : dtype === 'f64' ? Float64Array : Int8Array;
  const O = dtype === 'f32' ? Float32Array : dtype === 'f64' ? Float64Array : Int32Array;
  const make = (C: any, len: number) => shared ? new C(new SharedArrayBuffer(len * C.BYTES_PER_ELEMENT)) : new C(len);
  const a = make(I, m * k), b = make(I, k * n), c = make(O, m * n);
  for (let i = 0; i < a.length; i++) a[i] = ((i * 53) % 255) - 127;
  for (let i = 0; i < b.length; i++) b[i] = ((i * 29) % 255) - 127;
  const int = dtype === 'i8';
  return { dtype, m, n, k, a, b, c, transA: (tr & 1) !== 0, transB: (tr & 2) !== 0,
    alpha: tr === 2 ? 1 : int ? 3 : 0.75, beta: (tr & 1) === 0 ? 0 : int ? -1 : 0.5 } as any;
}
const shapes: [number, number, number][] = [[256, 256, 256], [100, 101, 99], [37, 70, 600], [20, 9, 1100], [31, 18, 5000]];
async function main() {
  const pool = createPool({ threads: 2 });
  await pool.warm();
  // Markers in one write(2) each: V8's trace comes on the same descriptor from other threads.
  writeSync(1, '=== warm\\n');
  for (const dtype of ['f32', 'f64', 'i8'] as Kind[]) for (const [m, n, k] of shapes) for (let tr = 0; tr < 4; tr++) {
    gemm(desc(dtype, m, n, k, tr, false));
    for (const shared of [true, false]) await pool.gemm(desc(dtype, m, n, k, tr, shared));
  }
  await pool.close();
  writeSync(1, '=== done\\n');
  // A canary: compiled for numbers, then given a string. Its deoptimization must show in the trace.
  new Function('function canary(x) { return x + 1; }\\n' +
    '%PrepareFunctionForOptimization(canary); canary(1); canary(2); %OptimizeFunctionOnNextCall(canary); canary(3); canary("a");')();
}
main().catch((e) => { console.error(e); process.exit(1); });
`;

let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-warm-')); });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** One run of the script under --trace-deopt: the kernel functions' deoptimizations between the markers. */
function kernelDeopts(js: string): string[] {
  const r = spawnSync(process.execPath, ['--trace-deopt', '--allow-natives-syntax', js], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
  expect(r.status).toBe(0);
  const out = r.stdout;
  const warm = out.indexOf('=== warm'), done = out.indexOf('=== done');
  expect(warm).toBeGreaterThanOrEqual(0);
  expect(done).toBeGreaterThan(warm);
  const deopts = (text: string, names: string[]) =>
    text.split('\n').filter((l) => l.includes('bailout (') && names.some((n) => l.includes(`<JSFunction ${n} `)));
  // The trace works (the canary's deoptimization is in it), so silence between the markers means something.
  expect(deopts(out.slice(done), ['canary']).length).toBeGreaterThan(0);
  return deopts(out.slice(warm, done), KERNEL_FUNCTIONS.map((f) => f.name));
}

test('after pool.warm(), no call deoptimizes a kernel function, on the calling thread or in a worker', () => {
  const src = path.join(dir, 'calls.ts'), js = path.join(dir, 'calls.js');
  fs.writeFileSync(src, SCRIPT);
  esbuild.buildSync({ entryPoints: [src], bundle: true, platform: 'node', target: 'node20', outfile: js, logLevel: 'silent' });
  // A path the warm-up misses deoptimizes in every run. V8 compiles on background threads, and on
  // a loaded machine code compiled from part of the warm-up's feedback can, rarely, land after it
  // and deoptimize once (seen once in about 40 runs): a second run tells the two apart.
  const first = kernelDeopts(js);
  if (first.length > 0) expect({ first, second: kernelDeopts(js) }).toEqual({ first, second: [] });
}, 300_000);

test('pool.warm() resolves once every worker is ready, again at once, and rejects on a closed pool', async () => {
  const pool = createPool({ threads: 2 });
  expect(pool.workers).toBe(0);
  await expect(pool.warm()).resolves.toBeUndefined();
  expect(pool.workers).toBe(2);
  await expect(pool.warm()).resolves.toBeUndefined();
  const n = 64, a = new Float64Array(n * n).fill(1), c = new Float64Array(n * n);
  await pool.gemm({ dtype: 'f64', m: n, n, k: n, a, b: a, c });
  expect(c.every((x) => x === n)).toBe(true);
  await pool.close();
  await expect(pool.warm()).rejects.toThrow('gemm pool is closed');
});

test('closing a pool while it warms rejects the warm() in flight', async () => {
  const pool = createPool({ threads: 2 });
  const warming = expect(pool.warm()).rejects.toThrow('gemm pool is closed');
  await pool.close();
  await warming;
});
