// The worker pool: bit-identical to the single-threaded gemm, shared and copied inputs, lifecycle.

import { closeDefaultPool, createPool, gemm, gemmAsync } from '../../compute';
import type { GemmDesc, Pool } from '../../compute';
import { makeDesc, paddingIntact } from './reference';

/** Two copies of one random problem: one for gemm, one for the pool. */
function twins(o: Parameters<typeof makeDesc>[0]): [GemmDesc, GemmDesc] {
  return [makeDesc({ ...o, shared: false }), makeDesc(o)];
}

function sameBits(x: ArrayLike<number>, y: ArrayLike<number>): boolean {
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
  return true;
}

// Every call both ways: asynchronous (workers only; the calling thread helps while they wake up) and
// joined (the calling thread computes with them and waits on the shared counters).
describe.each([['asynchronous', 0], ['joined', Infinity]])('createPool, %s calls', (_mode, joinFlops) => {
  let pool: Pool;
  beforeAll(() => { pool = createPool({ threads: 2, minFlops: 0, joinFlops }); });
  afterAll(() => pool.close());

  test.each([
    ['f32', 97, 101, 600, false, false], ['f64', 61, 37, 1100, true, false], ['i8', 50, 70, 2100, false, true],
    ['f64', 7, 13, 29, true, true], ['f32', 1, 1, 1, false, false], ['i8', 5, 900, 40, true, false],
    ['f32', 6, 3000, 20, false, true], ['f64', 13, 2, 5, false, false],
  ] as const)('%s m=%i n=%i k=%i transA=%s transB=%s is bit-identical to gemm()', async (dtype, m, n, k, transA, transB) => {
    for (const shared of [true, false]) {
      const [d1, d2] = twins({ dtype, m, n, k, transA, transB, padA: 1, padB: 2, padC: 3, alpha: dtype === 'i8' ? 3 : 0.75, beta: dtype === 'i8' ? -1 : 0.5, seed: m + n + k, shared });
      gemm(d1);
      await expect(pool.gemm(d2)).resolves.toBe(d2.c);
      expect(sameBits(d1.c, d2.c)).toBe(true);
      expect(paddingIntact(d2)).toBe(true);
    }
  });

  // Calls big enough to cut into several chunks: rows with one B block (small chunks reusing B), rows
  // with several B blocks (n > NC, k > KC), columns (n > m) with an odd width and odd chunk edges.
  test.each([
    ['f32', 300, 200, 150], ['i8', 257, 255, 300], ['f64', 130, 520, 40], ['f32', 140, 600, 530], ['i8', 41, 777, 333],
    ['i8', 60, 50, 4200],
  ] as const)('%s m=%i n=%i k=%i in many chunks is bit-identical to gemm()', async (dtype, m, n, k) => {
    const [d1, d2] = twins({ dtype, m, n, k, padC: 1, beta: dtype === 'i8' ? 2 : 0.25, seed: m * n + k });
    gemm(d1);
    await pool.gemm(d2);
    expect(sameBits(d1.c, d2.c)).toBe(true);
    expect(paddingIntact(d2)).toBe(true);
  });

  test('a worker never reuses the packed B of another call: same shapes, different B, concurrently and in turn', async () => {
    const mk = (seed: number) => twins({ dtype: 'f32', m: 120, n: 96, k: 64, seed });
    const pairs = [mk(1), mk(2), mk(3), mk(4)];
    for (const [d1] of pairs) gemm(d1);
    await Promise.all(pairs.map(([, d2]) => pool.gemm(d2)));
    for (const [d1, d2] of pairs) expect(sameBits(d1.c, d2.c)).toBe(true);
    for (const [, d2] of pairs) { d2.c.fill(0); await pool.gemm(d2); }
    for (const [d1, d2] of pairs) expect(sameBits(d1.c, d2.c)).toBe(true);
  });

  test('beta = 0 with a non-shared C never reads it (NaN does not leak through the copy)', async () => {
    const d = makeDesc({ dtype: 'f32', m: 40, n: 30, k: 20, beta: 0, padC: 2, seed: 3 });
    for (let i = 0; i < 40; i++) for (let j = 0; j < 30; j++) d.c[i * 32 + j] = NaN;
    await pool.gemm(d);
    for (let i = 0; i < 40; i++) for (let j = 0; j < 30; j++) expect(Number.isFinite(d.c[i * 32 + j])).toBe(true);
    expect(paddingIntact(d)).toBe(true);
  });

  test('A and B may be the same array', async () => {
    const n = 33;
    const a = new Float64Array(n * n).map((_, i) => (i % 7) - 3);
    const c1 = new Float64Array(n * n), c2 = new Float64Array(n * n);
    gemm({ dtype: 'f64', m: n, n, k: n, a, b: a, c: c1, transB: true });
    await pool.gemm({ dtype: 'f64', m: n, n, k: n, a, b: a, c: c2, transB: true });
    expect(sameBits(c1, c2)).toBe(true);
  });

  test('many concurrent calls all complete correctly', async () => {
    const pairs = Array.from({ length: 7 }, (_, i) => twins({ dtype: i % 2 ? 'f64' : 'i8', m: 20 + i, n: 30 - i, k: 50 + 10 * i, seed: i, shared: i % 3 === 0 }));
    for (const [d1] of pairs) gemm(d1);
    await Promise.all(pairs.map(([, d2]) => pool.gemm(d2)));
    for (const [d1, d2] of pairs) expect(sameBits(d1.c, d2.c)).toBe(true);
  });

  test('a bad descriptor rejects with the same error gemm() throws, and the pool keeps working', async () => {
    const bad = { dtype: 'f32', m: 2, n: 2, k: 2, a: new Float32Array(3), b: new Float32Array(4), c: new Float32Array(4) } as GemmDesc;
    await expect(pool.gemm(bad)).rejects.toThrow(RangeError);
    await expect(pool.gemm(bad)).rejects.toThrow(/a has 3 elements/);
    const [d1, d2] = twins({ dtype: 'f64', m: 9, n: 9, k: 9, seed: 1 });
    gemm(d1);
    await pool.gemm(d2);
    expect(sameBits(d1.c, d2.c)).toBe(true);
  });

  test('edge shapes: k = 0, m = 0, alpha = 0', async () => {
    for (const o of [{ m: 5, n: 4, k: 0, beta: 2 }, { m: 0, n: 4, k: 3 }, { m: 12, n: 12, k: 12, alpha: 0, beta: -1 }]) {
      const [d1, d2] = twins({ dtype: 'f32', ...o, seed: 2 });
      gemm(d1);
      await pool.gemm(d2);
      expect(sameBits(d1.c, d2.c)).toBe(true);
    }
  });
});

describe('pool lifecycle', () => {
  test('small problems below minFlops run inline and still give the same result', async () => {
    const pool = createPool({ threads: 2 });
    try {
      const [d1, d2] = twins({ dtype: 'f64', m: 3, n: 4, k: 5, seed: 4 });
      gemm(d1);
      await pool.gemm(d2);
      expect(sameBits(d1.c, d2.c)).toBe(true);
    } finally {
      await pool.close();
    }
  });

  test('close() is idempotent; gemm after close rejects', async () => {
    const pool = createPool({ threads: 1, minFlops: 0 });
    await pool.gemm(makeDesc({ dtype: 'f32', m: 8, n: 8, k: 8, seed: 5 }));
    await pool.close();
    await pool.close();
    await expect(pool.gemm(makeDesc({ dtype: 'f32', m: 8, n: 8, k: 8, seed: 5 }))).rejects.toThrow(/closed/);
  });

  test('close() rejects calls still in flight', async () => {
    const pool = createPool({ threads: 1, minFlops: 0, joinFlops: 0 }); // a joined call is done when gemm() returns
    // Both built first, and n > NC so the calling thread does not help: only the worker, which is
    // still starting, could finish them.
    const d1 = makeDesc({ dtype: 'f64', m: 600, n: 600, k: 600, seed: 6 }), d2 = makeDesc({ dtype: 'f64', m: 600, n: 600, k: 600, seed: 7 });
    const pending = pool.gemm(d1);
    const queued = pool.gemm(d2);
    const checks = [expect(pending).rejects.toThrow(/closed/), expect(queued).rejects.toThrow(/closed/)];
    await pool.close();
    await Promise.all(checks);
  });

  test('threads and minFlops are validated', () => {
    expect(() => createPool({ threads: 0 })).toThrow(RangeError);
    expect(() => createPool({ threads: 1.5 })).toThrow(/threads must be a positive integer/);
    expect(() => createPool({ minFlops: -1 })).toThrow(/minFlops/);
    expect(() => createPool({ joinFlops: -1 })).toThrow(/joinFlops/);
  });

  test('a joined call is complete when its promise resolves, also while the workers are still starting', async () => {
    // A fresh pool: its worker spawns and warms up during the first call, so the calling thread
    // computes most of it; later calls are shared. Consecutive calls reuse the workers at once
    // (their replies are taken synchronously), and a worker's late reply never settles the wrong call.
    const pool = createPool({ threads: 2, minFlops: 0, joinFlops: Infinity });
    try {
      for (let i = 0; i < 6; i++) {
        const [d1, d2] = twins({ dtype: i % 3 === 0 ? 'i8' : 'f32', m: 150 + i, n: 120, k: 100 + 40 * i, padC: 1, beta: 1, seed: 20 + i });
        gemm(d1);
        await pool.gemm(d2);
        expect(sameBits(d1.c, d2.c)).toBe(true);
        expect(paddingIntact(d2)).toBe(true);
      }
    } finally {
      await pool.close();
    }
  });

  test('the default pool behind gemmAsync', async () => {
    try {
      const [d1, d2] = twins({ dtype: 'i8', m: 64, n: 64, k: 300, seed: 8 });
      gemm(d1);
      await gemmAsync(d2);
      expect(sameBits(d1.c, d2.c)).toBe(true);
    } finally {
      await closeDefaultPool();
    }
  });
});
