// Test helpers: a plain float64 reference GEMM, error bounds, and seeded random matrices.

import type { GemmDesc } from '../../compute';

// Hoisted: under jest, a global lookup such as `Math` goes through the vm context's interceptor on every use.
const abs = Math.abs;

export const EPS64 = 2 ** -52;
export const EPS32 = 2 ** -23;

/** Mulberry32: small seeded PRNG so failures reproduce. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Arr = Float32Array | Float64Array | Int8Array | Int32Array;

export function fillRandom<T extends Arr>(arr: T, rand: () => number): T {
  const int = arr instanceof Int8Array || arr instanceof Int32Array;
  for (let i = 0; i < arr.length; i++) arr[i] = int ? Math.floor(rand() * 256) - 128 : rand() * 2 - 1;
  return arr;
}

/** Element (i, p) of op(A) and (p, j) of op(B) as the descriptor defines them. */
export function opA(d: GemmDesc, i: number, p: number): number {
  const lda = d.lda ?? Math.max(1, d.transA ? d.m : d.k);
  return d.transA ? d.a[p * lda + i] : d.a[i * lda + p];
}
export function opB(d: GemmDesc, p: number, j: number): number {
  const ldb = d.ldb ?? Math.max(1, d.transB ? d.k : d.n);
  return d.transB ? d.b[j * ldb + p] : d.b[p * ldb + j];
}

/** op(A) as dense m x k and op(B)^T as dense n x k, so the reference loops are plain dot products. */
function dense(d: GemmDesc): { A: Float64Array; Bt: Float64Array } {
  const { m, n, k } = d;
  const A = new Float64Array(m * k), Bt = new Float64Array(n * k);
  for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) A[i * k + p] = opA(d, i, p);
  for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) Bt[j * k + p] = opB(d, p, j);
  return { A, Bt };
}

export interface RefResult {
  /** Expected C, row-major m x n (tight). */
  c: Float64Array;
  /** Per-element absolute tolerance (0 for i8: exact). */
  tol: Float64Array;
}

/**
 * Reference for float dtypes, from a copy of C taken before the call. Tolerance: our sum and the
 * reference sum each err by at most K*eps*sum|a||b| (plus the alpha/beta ops), so allow
 * 2*(K+2)*eps64*(|alpha|*sum|a||b| + |beta*c|), and for f32 output one rounding, eps32*|result|.
 */
export function refFloat(d: GemmDesc, c0: ArrayLike<number>): RefResult {
  const { m, n, k } = d;
  const ldc = d.ldc ?? Math.max(1, n);
  const alpha = d.alpha ?? 1, beta = d.beta ?? 0;
  const c = new Float64Array(m * n), tol = new Float64Array(m * n);
  const { A, Bt } = dense(d);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0, mag = 0;
      for (let p = 0; p < k; p++) {
        const x = A[i * k + p] * Bt[j * k + p];
        s += x;
        mag += abs(x);
      }
      const old = c0[i * ldc + j];
      const ab = alpha === 0 || k === 0 ? 0 : alpha * s;
      const v = beta === 0 ? ab : ab + beta * old;
      c[i * n + j] = v;
      const bterm = beta === 0 ? 0 : Math.abs(beta * old);
      tol[i * n + j] = 2 * (k + 2) * EPS64 * (Math.abs(alpha) * mag + bterm) + (d.dtype === 'f32' ? EPS32 * Math.abs(v) : 0);
    }
  }
  return { c, tol };
}

/** Exact i8 reference with BigInt: C = wrap32(alpha * sum(a*b) + beta * C). */
export function refI8(d: GemmDesc, c0: ArrayLike<number>): Int32Array {
  const { m, n, k } = d;
  const ldc = d.ldc ?? Math.max(1, n);
  const alpha = BigInt(d.alpha ?? 1), beta = BigInt(d.beta ?? 0);
  const out = new Int32Array(m * n);
  const { A, Bt } = dense(d);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += A[i * k + p] * Bt[j * k + p]; // exact: |s| <= 2^14 * k
      const v = (d.alpha === 0 || k === 0 ? 0n : alpha * BigInt(s)) + (d.beta === undefined || d.beta === 0 ? 0n : beta * BigInt(c0[i * ldc + j]));
      out[i * n + j] = Number(BigInt.asIntN(32, v));
    }
  }
  return out;
}

/** Compares the m x n window of C (row stride ldc) with the reference; returns mismatches as text. */
export function mismatches(d: GemmDesc, ref: RefResult | Int32Array, limit = 5): string[] {
  const ldc = d.ldc ?? Math.max(1, d.n);
  const out: string[] = [];
  for (let i = 0; i < d.m && out.length < limit; i++) {
    for (let j = 0; j < d.n && out.length < limit; j++) {
      const got = d.c[i * ldc + j];
      if (ref instanceof Int32Array) {
        if (got !== ref[i * d.n + j]) out.push(`(${i},${j}) got ${got} want ${ref[i * d.n + j]}`);
      } else {
        const want = ref.c[i * d.n + j], tol = ref.tol[i * d.n + j];
        const ok = Number.isNaN(want) ? Number.isNaN(got) : want === got || Math.abs(got - want) <= tol;
        if (!ok) out.push(`(${i},${j}) got ${got} want ${want} tol ${tol}`);
      }
    }
  }
  return out;
}

/** Builds a random descriptor; ld pads (extra columns) are filled with `pad`. */
export function makeDesc(opts: {
  dtype: 'f32' | 'f64' | 'i8'; m: number; n: number; k: number; seed: number;
  transA?: boolean; transB?: boolean; padA?: number; padB?: number; padC?: number;
  alpha?: number; beta?: number; shared?: boolean; pad?: number;
}): GemmDesc {
  const { dtype, m, n, k, transA = false, transB = false, padA = 0, padB = 0, padC = 0 } = opts;
  const rand = rng(opts.seed);
  const aRows = transA ? k : m, aCols = transA ? m : k, bRows = transB ? n : k, bCols = transB ? k : n;
  const lda = Math.max(1, aCols) + padA, ldb = Math.max(1, bCols) + padB, ldc = Math.max(1, n) + padC;
  const alloc = (Ctor: { new (buf: ArrayBufferLike): Arr; BYTES_PER_ELEMENT: number }, len: number) =>
    new Ctor(opts.shared ? new SharedArrayBuffer(len * Ctor.BYTES_PER_ELEMENT) : new ArrayBuffer(len * Ctor.BYTES_PER_ELEMENT));
  const S = dtype === 'f32' ? Float32Array : dtype === 'f64' ? Float64Array : Int8Array;
  const D = dtype === 'f32' ? Float32Array : dtype === 'f64' ? Float64Array : Int32Array;
  const a = fillRandom(alloc(S, aRows * lda), rand), b = fillRandom(alloc(S, bRows * ldb), rand);
  const c = fillRandom(alloc(D, m * ldc), rand);
  // Poison the padding: the kernels must never read A/B padding nor write C padding.
  const pad = opts.pad ?? (dtype === 'i8' ? 77 : NaN);
  for (let i = 0; i < aRows; i++) for (let p = aCols; p < lda; p++) a[i * lda + p] = pad;
  for (let i = 0; i < bRows; i++) for (let p = bCols; p < ldb; p++) b[i * ldb + p] = pad;
  for (let i = 0; i < m; i++) for (let p = n; p < ldc; p++) c[i * ldc + p] = dtype === 'i8' ? 0x5eed : 12345.5;
  return { dtype, m, n, k, a, b, c, lda, ldb, ldc, transA, transB, alpha: opts.alpha, beta: opts.beta } as GemmDesc;
}

/** True if every padding element of C (columns n..ldc) still holds the sentinel from makeDesc. */
export function paddingIntact(d: GemmDesc): boolean {
  const ldc = d.ldc ?? d.n;
  const sentinel = d.dtype === 'i8' ? 0x5eed : 12345.5;
  for (let i = 0; i < d.m; i++) for (let p = d.n; p < ldc; p++) if (d.c[i * ldc + p] !== sentinel) return false;
  return true;
}

/**
 * The same problem with C in a longer array whose `extra` elements after its m rows hold the padding
 * sentinel: a kernel writing rows past m (an edge tile's missing rows) shows there. (A subarray view
 * would not do: a typed array drops stores past its own length.)
 */
export function withTail<D extends GemmDesc>(d: D, extra = 64): D {
  const ldc = d.ldc ?? d.n, len = d.m * ldc;
  const Ctor = d.c.constructor as new (n: number) => D['c'];
  const c = new Ctor(len + extra);
  c.set(d.c.subarray(0, len));
  c.fill(d.dtype === 'i8' ? 0x5eed : 12345.5, len);
  return { ...d, c };
}

/** True if every element of C after its m rows still holds the sentinel (see withTail). */
export function tailIntact(d: GemmDesc): boolean {
  const sentinel = d.dtype === 'i8' ? 0x5eed : 12345.5;
  for (let i = d.m * (d.ldc ?? d.n); i < d.c.length; i++) if (d.c[i] !== sentinel) return false;
  return true;
}

/** Runs `fn` on the descriptor and checks it against the reference (and C padding). */
export function expectMatches(d: GemmDesc, run: (d: GemmDesc) => void): void {
  const before = Array.from(d.c);
  run(d);
  const ref = d.dtype === 'i8' ? refI8(d, before) : refFloat(d, before);
  expect(mismatches(d, ref)).toEqual([]);
  expect(paddingIntact(d)).toBe(true);
  expect(tailIntact(d)).toBe(true);
}
