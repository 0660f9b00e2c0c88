// i8 x i8 -> i32 GEMM: bit-exact against a BigInt reference, including k-splitting, extremes and wrap-around.

import fc from 'fast-check';
import { blocking, gemm } from '../../compute';
import type { GemmDesc, GemmI8 } from '../../compute';
import { expectMatches, makeDesc, withTail, mismatches, refI8 } from './reference';

const run = (d: GemmDesc) => { gemm(d); };

function filled(m: number, n: number, k: number, av: number, bv: number): GemmI8 {
  return { dtype: 'i8', m, n, k, a: new Int8Array(m * k).fill(av), b: new Int8Array(k * n).fill(bv), c: new Int32Array(m * n) };
}

describe('gemm i8', () => {
  test.each([
    [1, 1, 1], [1, 1, 9], [7, 13, 29], [6, 2, 4], [5, 3, 2], [97, 101, 103], [13, 1031, 50], [40, 30, 2047], [9, 11, 2048], [17, 9, 3001],
  ])('m=%i n=%i k=%i is exact', (m, n, k) => {
    expectMatches(makeDesc({ dtype: 'i8', m, n, k, seed: m * 7 + n * 3 + k, padC: 1 }), run);
  });

  test.each([[false, false], [false, true], [true, false], [true, true]])('transA=%s transB=%s with padded leading dims', (transA, transB) => {
    for (const [m, n, k] of [[7, 13, 29], [19, 8, 1100], [3, 1, 5]]) {
      expectMatches(makeDesc({ dtype: 'i8', m, n, k, transA, transB, padA: 2, padB: 3, padC: 4, alpha: 3, beta: -2, seed: k }), run);
    }
  });

  test('k > 2047 with every product at the extreme (-128 * -128): exact through the k-splitting', () => {
    const k = 3 * blocking().KC + 7; // several k-blocks, each at the largest |lo| the pair trick allows
    const d = filled(7, 5, k, -128, -128);
    gemm(d);
    expect(Array.from(d.c)).toEqual(new Array(35).fill(16384 * k));
  });

  // k <= 4095 keeps packed pair sums over all of k (shift 27) and decodes once; k = 4096 decodes per
  // KC block. Both sides of the boundary, at the extreme product, with an odd n (last column unpaired)
  // and alternating signs so both halves of a pair are at their limit with opposite signs.
  test.each([[4095], [4096], [4095 - 3]])('k = %i at the extremes, odd n: exact on both sides of the packed-sum limit', (k) => {
    const m = 7, n = 5;
    const d = filled(m, n, k, -128, -128);
    for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) d.b[p * n + j] = j % 2 === 0 ? -128 : 127;
    gemm(d);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) expect(d.c[i * n + j]).toBe((j % 2 === 0 ? 16384 : -16256) * k);
  });

  test('mixed extremes: -128 * 127 and 127 * 127 in neighbouring columns of a pair', () => {
    const m = 6, n = 4, k = 2500;
    const d = filled(m, n, k, -128, 127);
    for (let p = 0; p < k; p++) { d.b[p * n + 1] = -128; d.b[p * n + 3] = p % 2 === 0 ? 127 : -128; }
    gemm(d);
    for (let i = 0; i < m; i++) {
      expect(d.c[i * n + 0]).toBe(-16256 * k);
      expect(d.c[i * n + 1]).toBe(16384 * k);
      expect(d.c[i * n + 2]).toBe(-16256 * k);
      expect(d.c[i * n + 3]).toBe(1250 * -16256 + 1250 * 16384);
    }
  });

  // The 3x2 kernel over packed column pairs covers four columns of C: every n residue mod 4 (a
  // missing second column of a pair, a missing second pair), every m residue mod 3, one k step, and
  // k over two KC blocks (packed sums kept in W, decoded once).
  test('edge tiles: m = 1..7 x n = 1..9, k = 1, 3, 600, transposes, padding, alpha and beta', () => {
    for (const k of [1, 3, 600]) {
      for (let m = 1; m <= 7; m++) {
        for (let n = 1; n <= 9; n++) {
          const transA = (m + n) % 2 === 1, transB = (m + n + k) % 3 === 0;
          expectMatches(withTail(makeDesc({ dtype: 'i8', m, n, k, transA, transB, padA: 2, padB: 1, padC: 2, alpha: 3, beta: -2, seed: m * 100 + n * 10 + k })), run);
        }
      }
    }
  });

  // k > 4095 decodes every KC block into W in columns of C (macroI8): every n residue mod 4, so the
  // kernel's second packed column is sometimes past the edge and must not be written into W.
  test.each([[1], [2], [3], [4], [5], [6], [7]])('k = 4100 (decoded per block), n = %i, m = 4: exact', (n) => {
    expectMatches(withTail(makeDesc({ dtype: 'i8', m: 4, n, k: 4100, padC: 1, beta: 1, seed: n })), run);
  });

  test('sums beyond int32 wrap modulo 2^32, as int32_t arithmetic in C would', () => {
    const k = 140000; // 140000 * 16384 = 2293760000 > 2^31 - 1
    const d = filled(1, 2, k, -128, -128);
    gemm(d);
    expect(d.c[0]).toBe(2293760000 - 2 ** 32);
    expect(d.c[0]).toBe(Number(BigInt.asIntN(32, 2293760000n)));
  });

  test.each([
    [1, 0], [2, 1], [-1, 3], [2147483647, 0], [-2147483648, -2147483648], [0, 5], [0, 0], [65536, 65536],
  ])('alpha=%i beta=%i wraps exactly', (alpha, beta) => {
    const d = makeDesc({ dtype: 'i8', m: 9, n: 10, k: 70, alpha, beta, seed: alpha ^ beta });
    // Large old C values make the beta term overflow too.
    for (let i = 0; i < d.c.length; i++) d.c[i] = (i * 2654435761) | 0;
    expectMatches(d, run);
  });

  test('k = 0 gives C = beta * C (wrapped)', () => {
    const d: GemmI8 = { dtype: 'i8', m: 2, n: 2, k: 0, a: new Int8Array(0), b: new Int8Array(0), c: Int32Array.from([1, -2, 2 ** 30, 7]), beta: 4 };
    gemm(d);
    expect(Array.from(d.c)).toEqual([4, -8, 0, 28]);
  });

  test('random shapes, transposes, leading dims and scalars (property)', () => {
    fc.assert(fc.property(
      fc.record({
        m: fc.integer({ min: 0, max: 14 }), n: fc.integer({ min: 0, max: 14 }), k: fc.integer({ min: 0, max: 60 }),
        transA: fc.boolean(), transB: fc.boolean(),
        padA: fc.integer({ min: 0, max: 2 }), padB: fc.integer({ min: 0, max: 2 }), padC: fc.integer({ min: 0, max: 2 }),
        alpha: fc.integer({ min: -2147483648, max: 2147483647 }), beta: fc.integer({ min: -5, max: 5 }), seed: fc.integer(),
      }),
      (o) => {
        const d = makeDesc({ dtype: 'i8', ...o });
        const before = Array.from(d.c);
        gemm(d);
        expect(mismatches(d, refI8(d, before))).toEqual([]);
      },
    ), { numRuns: 150 });
  });
});
