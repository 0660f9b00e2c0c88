// Malformed descriptors are programmer errors: gemm throws a TypeError or RangeError naming the problem.

import { gemm } from '../../compute';
import type { GemmDesc } from '../../compute';

function f32(over: Record<string, unknown> = {}): GemmDesc {
  return { dtype: 'f32', m: 2, n: 3, k: 4, a: new Float32Array(8), b: new Float32Array(12), c: new Float32Array(6), ...over } as GemmDesc;
}

describe('descriptor validation', () => {
  test.each<[string, Record<string, unknown>, ErrorConstructor, RegExp]>([
    ['negative m', { m: -1 }, RangeError, /m must be a non-negative integer \(got -1\)/],
    ['fractional k', { k: 1.5 }, RangeError, /k must be a non-negative integer/],
    ['NaN n', { n: NaN }, RangeError, /n must be a non-negative integer/],
    ['string m', { m: '2' }, TypeError, /m must be a number \(got string\)/],
    ['lda below width', { lda: 3 }, RangeError, /lda \(3\) must be at least 4/],
    ['ldb below width', { ldb: 2 }, RangeError, /ldb \(2\) must be at least 3/],
    ['ldc below width', { ldc: 0 }, RangeError, /ldc \(0\) must be at least 3/],
    ['negative lda', { lda: -4 }, RangeError, /lda must be a non-negative integer/],
    ['a too short', { a: new Float32Array(7) }, RangeError, /a has 7 elements but .* needs 8/],
    ['b too short for ldb', { ldb: 5 }, RangeError, /b has 12 elements but its 4x3 view with ldb=5 needs 18/],
    ['c too short', { c: new Float32Array(5) }, RangeError, /c has 5 elements/],
    ['wrong array type', { a: new Float64Array(8) }, TypeError, /a must be a Float32Array \(got Float64Array\)/],
    ['plain array', { b: new Array(12).fill(0) }, TypeError, /b must be a Float32Array \(got Array\)/],
    ['bad dtype', { dtype: 'f16' }, TypeError, /dtype must be 'f32', 'f64' or 'i8'/],
    ['non-boolean transA', { transA: 1 }, TypeError, /transA must be a boolean/],
    ['string alpha', { alpha: '2' }, TypeError, /alpha must be a number/],
  ])('%s', (_name, over, Err, msg) => {
    expect(() => gemm(f32(over))).toThrow(Err);
    expect(() => gemm(f32(over))).toThrow(msg);
  });

  test('transposed shapes are checked against the stored layout', () => {
    // transA: A is stored k x m = 4 x 2, so lda must be >= 2 and A needs 3*lda + 2 elements.
    expect(() => gemm(f32({ transA: true, lda: 2 }))).not.toThrow();
    expect(() => gemm(f32({ transA: true, lda: 3, a: new Float32Array(10) }))).toThrow(/needs 11/);
  });

  test('i8 needs Int8Array inputs, an Int32Array C and int32 alpha/beta', () => {
    const ok = { dtype: 'i8', m: 1, n: 1, k: 1, a: new Int8Array(1), b: new Int8Array(1), c: new Int32Array(1) };
    expect(() => gemm({ ...ok } as GemmDesc)).not.toThrow();
    expect(() => gemm({ ...ok, c: new Float32Array(1) } as unknown as GemmDesc)).toThrow(/c must be an Int32Array/);
    expect(() => gemm({ ...ok, a: new Uint8Array(1) } as unknown as GemmDesc)).toThrow(TypeError);
    expect(() => gemm({ ...ok, alpha: 0.5 } as GemmDesc)).toThrow(/i8 alpha must be an int32 integer \(got 0.5\)/);
    expect(() => gemm({ ...ok, beta: 2 ** 31 } as GemmDesc)).toThrow(RangeError);
    expect(() => gemm({ ...ok, beta: NaN } as GemmDesc)).toThrow(RangeError);
  });

  test('C overlapping A or B in memory is rejected', () => {
    const buf = new Float32Array(40);
    expect(() => gemm(f32({ a: buf.subarray(0, 8), c: buf.subarray(4, 10) }))).toThrow(/c overlaps a/);
    expect(() => gemm(f32({ b: buf.subarray(10, 22), c: buf.subarray(20, 26) }))).toThrow(/c overlaps b/);
    // Disjoint views of one buffer are fine; A and B may alias each other (both are only read).
    expect(() => gemm(f32({ a: buf.subarray(0, 8), b: buf.subarray(0, 12), c: buf.subarray(30, 36) }))).not.toThrow();
  });

  test('a rejected call leaves C untouched', () => {
    const c = new Float32Array(6).fill(9);
    expect(() => gemm(f32({ c, lda: 1 }))).toThrow(RangeError);
    expect(Array.from(c)).toEqual(new Array(6).fill(9));
  });

  test('a non-object descriptor is a TypeError', () => {
    expect(() => gemm(null as unknown as GemmDesc)).toThrow(TypeError);
  });
});
