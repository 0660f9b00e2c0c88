// Public descriptor types for the GEMM engine, plus the internal task shape the kernels consume.

/** Element type of a GEMM: f32 and f64 are IEEE, i8 is int8 x int8 -> int32 (table: dtypes.ts). */
export type { DType } from './dtypes';

interface GemmCommon {
  /** Rows of op(A) and C. */
  m: number;
  /** Columns of op(B) and C. */
  n: number;
  /** Columns of op(A) = rows of op(B). */
  k: number;
  /** Row stride of A as stored (row-major). Default: the stored row width (k, or m if transA). */
  lda?: number;
  /** Row stride of B as stored. Default: n, or k if transB. */
  ldb?: number;
  /** Row stride of C. Default: n. */
  ldc?: number;
  /** Use A transposed: A is stored k x m and op(A) = A^T. */
  transA?: boolean;
  /** Use B transposed: B is stored n x k and op(B) = B^T. */
  transB?: boolean;
  /** Default 1. For i8 an int32 integer. */
  alpha?: number;
  /** Default 0. With beta = 0 the old C is never read (so NaN in C does not propagate). For i8 an int32 integer. */
  beta?: number;
}

export interface GemmF32 extends GemmCommon { dtype: 'f32'; a: Float32Array; b: Float32Array; c: Float32Array }
export interface GemmF64 extends GemmCommon { dtype: 'f64'; a: Float64Array; b: Float64Array; c: Float64Array }
export interface GemmI8 extends GemmCommon { dtype: 'i8'; a: Int8Array; b: Int8Array; c: Int32Array }

/** C = alpha * op(A) * op(B) + beta * C, row-major. C is updated in place. */
export type GemmDesc = GemmF32 | GemmF64 | GemmI8;


export type Src = Float32Array | Float64Array | Int8Array;
export type Dst = Float32Array | Float64Array | Int32Array;

/**
 * A validated, fully defaulted GEMM restricted to the C rectangle [m0, m1) x [n0, n1).
 * This is what crosses into worker threads (structured clone; arrays on SharedArrayBuffer are shared).
 */
export interface Task {
  /** 0: float (f32/f64 in, float64 accumulate); 1: i8 (exact integer). */
  kind: 0 | 1;
  m: number; n: number; k: number;
  a: Src; lda: number; transA: boolean;
  b: Src; ldb: number; transB: boolean;
  c: Dst; ldc: number;
  alpha: number; beta: number;
  m0: number; m1: number; n0: number; n1: number;
  /** A pool call's id (> 0): its chunks on one worker reuse B's packed blocks. 0: never reused. */
  id: number;
}
