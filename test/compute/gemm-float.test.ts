// f32 / f64 GEMM against a float64 reference: shapes, transposes, leading dims, alpha/beta, NaN/Inf.

import fc from 'fast-check';
import { gemm } from '../../compute';
import type { GemmDesc } from '../../compute';
import { expectMatches, makeDesc, withTail, mismatches, refFloat } from './reference';

const run = (d: GemmDesc) => { gemm(d); };
const DTYPES = ['f32', 'f64'] as const;

describe.each(DTYPES)('gemm %s', (dtype) => {
  test.each([
    [1, 1, 1], [1, 7, 1], [1, 1, 9], [5, 1, 3], [7, 13, 29], [13, 7, 5], [6, 2, 4], [12, 12, 12],
    [97, 101, 103], [61, 37, 600], [200, 130, 1100], [6, 1030, 17],
  ])('m=%i n=%i k=%i matches the reference', (m, n, k) => {
    expectMatches(makeDesc({ dtype, m, n, k, seed: m * 1000 + n * 10 + k }), run);
  });

  test.each([[false, false], [false, true], [true, false], [true, true]])('transA=%s transB=%s with padded leading dims', (transA, transB) => {
    for (const [m, n, k] of [[7, 13, 29], [31, 17, 521], [1, 9, 4]]) {
      expectMatches(makeDesc({ dtype, m, n, k, transA, transB, padA: 3, padB: 5, padC: 2, seed: m + n + k, alpha: 1.5, beta: -0.25 }), run);
    }
  });

  test.each([
    [1, 0], [1, 1], [2.5, 0], [-1, 0.5], [0.125, -3], [0, 1], [0, 0], [0, 2],
  ])('alpha=%f beta=%f', (alpha, beta) => {
    expectMatches(makeDesc({ dtype, m: 19, n: 23, k: 41, alpha, beta, padC: 1, seed: 7 }), run);
  });

  test('k = 0 means C = beta * C', () => {
    const d = makeDesc({ dtype, m: 5, n: 4, k: 0, beta: 3, padC: 2, seed: 1 });
    const before = Array.from(d.c);
    gemm(d);
    for (let i = 0; i < 5; i++) for (let j = 0; j < 4; j++) expect(d.c[i * 6 + j]).toBe(dtype === 'f32' ? Math.fround(3 * before[i * 6 + j]) : 3 * before[i * 6 + j]);
    expectMatches(makeDesc({ dtype, m: 5, n: 4, k: 0, beta: 0, padC: 2, seed: 2 }), run);
  });

  test('m = 0 or n = 0 leaves every array untouched', () => {
    for (const [m, n] of [[0, 5], [5, 0], [0, 0]]) {
      const d = makeDesc({ dtype, m, n, k: 3, padC: 2, seed: 3 });
      const c = Array.from(d.c);
      gemm(d);
      expect(Array.from(d.c)).toEqual(c);
    }
  });

  test('beta = 0 ignores NaN and Inf in the old C', () => {
    const d = makeDesc({ dtype, m: 8, n: 9, k: 10, beta: 0, seed: 4 });
    d.c.fill(NaN);
    d.c[3] = Infinity;
    gemm(d);
    expect(Array.from(d.c).every(Number.isFinite)).toBe(true);
    expectMatches(makeDesc({ dtype, m: 8, n: 9, k: 10, beta: 0, seed: 4 }), run);
  });

  test('beta != 0 propagates NaN from the old C', () => {
    const d = makeDesc({ dtype, m: 8, n: 9, k: 10, beta: 1, seed: 5 });
    d.c[2 * 9 + 4] = NaN;
    gemm(d);
    expect(Number.isNaN(d.c[2 * 9 + 4])).toBe(true);
    expect(Array.from(d.c).filter(Number.isNaN)).toHaveLength(1);
  });

  test('NaN in A poisons its row of C; Inf times positive gives Inf, Inf times 0 gives NaN', () => {
    const m = 13, n = 7, k = 600; // k spans two k-blocks
    const d = makeDesc({ dtype, m, n, k, seed: 6 });
    d.a[3 * k + 555] = NaN; // row 3
    d.a[9 * k + 10] = Infinity; // row 9 meets B row 10
    for (let j = 0; j < n; j++) d.b[10 * n + j] = j === 2 ? 0 : 1;
    gemm(d);
    for (let j = 0; j < n; j++) expect(Number.isNaN(d.c[3 * n + j])).toBe(true);
    for (let j = 0; j < n; j++) {
      if (j === 2) expect(Number.isNaN(d.c[9 * n + j])).toBe(true);
      else expect(d.c[9 * n + j]).toBe(Infinity);
    }
    // Every other row is finite: the poison stays in its row (padding rows of the panel are not stored).
    for (let i = 0; i < m; i++) if (i !== 3 && i !== 9) for (let j = 0; j < n; j++) expect(Number.isFinite(d.c[i * n + j])).toBe(true);
  });

  test('NaN and Inf in B propagate down their column', () => {
    const m = 11, n = 5, k = 4;
    const d = makeDesc({ dtype, m, n, k, transB: true, seed: 8 }); // B stored n x k
    d.b[1 * k + 2] = NaN; // column 1 of op(B)
    d.b[4 * k + 0] = -Infinity; // column 4
    for (let i = 0; i < m; i++) d.a[i * k + 0] = 2;
    gemm(d);
    for (let i = 0; i < m; i++) {
      expect(Number.isNaN(d.c[i * n + 1])).toBe(true);
      expect(d.c[i * n + 4]).toBe(-Infinity);
      expect(Number.isFinite(d.c[i * n + 0])).toBe(true);
    }
  });

  // The 3x2 micro-kernel's edge tiles: every m and n residue (rows past m and the second column of
  // a pair past n are computed but never stored), one k step, and k across two KC blocks (W, then C).
  test('edge tiles: m = 1..7 x n = 1..5, k = 1, 2, 513, transposes, padding, beta', () => {
    for (const k of [1, 2, 513]) {
      for (let m = 1; m <= 7; m++) {
        for (let n = 1; n <= 5; n++) {
          const transA = (m + n) % 2 === 0, transB = (m * n) % 3 === 0;
          expectMatches(withTail(makeDesc({ dtype, m, n, k, transA, transB, padA: 1, padB: 2, padC: 3, alpha: -1.5, beta: 0.75, seed: m * 100 + n * 10 + k })), run);
        }
      }
    }
  });

  // Three k blocks (first: W = sums, middle: W += sums, last: C from W + sums), two column blocks
  // (n > NC), rows not a multiple of 3, with and without beta.
  test.each([[0], [-0.5]])('k over three KC blocks, n over two NC blocks, beta=%f', (beta) => {
    expectMatches(withTail(makeDesc({ dtype, m: 23, n: 515, k: 1030, padA: 1, padB: 1, padC: 2, alpha: 0.5, beta, seed: 515 })), run);
    expectMatches(withTail(makeDesc({ dtype, m: 10, n: 7, k: 1537, transA: true, transB: true, beta, seed: 1537 })), run);
  });

  test('alpha = 0 does not read A or B (BLAS quick return)', () => {
    const d = makeDesc({ dtype, m: 4, n: 4, k: 4, alpha: 0, beta: 2, seed: 9 });
    d.a.fill(NaN);
    expectMatches(d, run);
  });

  test('returns its C argument and is deterministic', () => {
    const d1 = makeDesc({ dtype, m: 40, n: 33, k: 700, seed: 10 });
    const d2 = makeDesc({ dtype, m: 40, n: 33, k: 700, seed: 10 });
    expect(gemm(d1)).toBe(d1.c);
    gemm(d2);
    expect(Array.from(d1.c)).toEqual(Array.from(d2.c));
  });

  test('random shapes, transposes, leading dims and scalars (property)', () => {
    fc.assert(fc.property(
      fc.record({
        m: fc.integer({ min: 0, max: 20 }), n: fc.integer({ min: 0, max: 20 }), k: fc.integer({ min: 0, max: 40 }),
        transA: fc.boolean(), transB: fc.boolean(),
        padA: fc.integer({ min: 0, max: 3 }), padB: fc.integer({ min: 0, max: 3 }), padC: fc.integer({ min: 0, max: 3 }),
        alpha: fc.constantFrom(1, -2, 0.5, 0), beta: fc.constantFrom(0, 1, -0.5), seed: fc.integer(),
      }),
      (o) => {
        const d = makeDesc({ dtype, ...o });
        const before = Array.from(d.c);
        gemm(d);
        expect(mismatches(d, refFloat(d, before))).toEqual([]);
      },
    ), { numRuns: 150 });
  });
});

test('f32 accumulates in float64 (a sum float32 accumulation would get wrong)', () => {
  // 1 + 2^-24 * 4096 terms: in float32 each tiny term rounds away; in float64 they add up to 2^-12.
  const k = 4097;
  const a = new Float32Array(k).fill(1), b = new Float32Array(k).fill(2 ** -24);
  b[0] = 1;
  const c = new Float32Array(1);
  gemm({ dtype: 'f32', m: 1, n: 1, k, a, b, c });
  expect(c[0]).toBe(Math.fround(1 + 4096 * 2 ** -24));
});
