// Descriptor checking: turns a user GemmDesc into a defaulted Task, or throws on programmer error
// (TypeError for wrong kinds of values, RangeError for bad numbers, sizes and overlaps).

import { DTYPES } from './dtypes';
import type { GemmDesc, Src, Dst, Task } from './types';

const INT32_MAX = 2147483647;

// Tag check instead of instanceof: arrays may come from another realm (vm context, worker).
function tagOf(x: unknown): string {
  return Object.prototype.toString.call(x).slice(8, -1);
}

function dim(name: string, v: unknown): number {
  if (typeof v !== 'number') throw new TypeError(`gemm: ${name} must be a number (got ${typeof v})`);
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`gemm: ${name} must be a non-negative integer (got ${v})`);
  return v;
}

function flag(name: string, v: unknown): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new TypeError(`gemm: ${name} must be a boolean (got ${typeof v})`);
  return v;
}

function scalar(name: string, v: unknown, dflt: number, int: boolean): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number') throw new TypeError(`gemm: ${name} must be a number (got ${typeof v})`);
  if (int && !(Number.isInteger(v) && v >= -2147483648 && v <= INT32_MAX)) {
    throw new RangeError(`gemm: i8 ${name} must be an int32 integer (got ${v})`);
  }
  return v;
}

/** Checks one stored matrix (rows x cols with row stride ld) and returns ld and the element span it uses. */
function matrix(name: string, arr: unknown, tag: string, rows: number, cols: number, ldIn: unknown): { ld: number; span: number } {
  if (tagOf(arr) !== tag) throw new TypeError(`gemm: ${name} must be ${/^[AEIOU]/.test(tag) ? 'an' : 'a'} ${tag} (got ${tagOf(arr)})`);
  const minLd = Math.max(1, cols);
  const ldName = 'ld' + name;
  const ld = ldIn === undefined ? minLd : dim(ldName, ldIn);
  if (ld < minLd) throw new RangeError(`gemm: ${ldName} (${ld}) must be at least ${minLd}, the stored row width of ${name}`);
  const span = rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols;
  const len = (arr as Src | Dst).length;
  if (span > len) throw new RangeError(`gemm: ${name} has ${len} elements but its ${rows}x${cols} view with ${ldName}=${ld} needs ${span}`);
  if (span > INT32_MAX) throw new RangeError(`gemm: ${name} spans ${span} elements, beyond the 2^31-1 the kernels index`);
  return { ld, span };
}

function overlaps(x: Src | Dst, xSpan: number, y: Src | Dst, ySpan: number): boolean {
  if (xSpan === 0 || ySpan === 0 || x.buffer !== y.buffer) return false;
  const x0 = x.byteOffset, x1 = x0 + xSpan * x.BYTES_PER_ELEMENT;
  const y0 = y.byteOffset, y1 = y0 + ySpan * y.BYTES_PER_ELEMENT;
  return x0 < y1 && y0 < x1;
}

/** Validates a descriptor and returns the whole-matrix task. Throws TypeError / RangeError. */
export function toTask(desc: GemmDesc): Task {
  if (desc === null || typeof desc !== 'object') throw new TypeError('gemm: descriptor must be an object');
  const dtype = desc.dtype as unknown;
  if (dtype !== 'f32' && dtype !== 'f64' && dtype !== 'i8') throw new TypeError(`gemm: dtype must be 'f32', 'f64' or 'i8' (got ${String(dtype)})`);
  const srcTag = DTYPES[dtype].input.name, dstTag = DTYPES[dtype].output.name;
  const m = dim('m', desc.m), n = dim('n', desc.n), k = dim('k', desc.k);
  const transA = flag('transA', desc.transA), transB = flag('transB', desc.transB);
  const A = matrix('a', desc.a, srcTag, transA ? k : m, transA ? m : k, desc.lda);
  const B = matrix('b', desc.b, srcTag, transB ? n : k, transB ? k : n, desc.ldb);
  const C = matrix('c', desc.c, dstTag, m, n, desc.ldc);
  const isInt = dtype === 'i8';
  const alpha = scalar('alpha', desc.alpha, 1, isInt), beta = scalar('beta', desc.beta, 0, isInt);
  if (overlaps(desc.c, C.span, desc.a, A.span)) throw new RangeError('gemm: c overlaps a in memory');
  if (overlaps(desc.c, C.span, desc.b, B.span)) throw new RangeError('gemm: c overlaps b in memory');
  return {
    kind: isInt ? 1 : 0, m, n, k,
    a: desc.a, lda: A.ld, transA, b: desc.b, ldb: B.ld, transB, c: desc.c, ldc: C.ld,
    alpha, beta, m0: 0, m1: m, n0: 0, n1: n, id: 0,
  };
}

/** Elements of a, b and c a task touches (row-major spans from index 0). */
export function spans(t: Task): { a: number; b: number; c: number } {
  const span = (rows: number, cols: number, ld: number) => (rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols);
  return {
    a: span(t.transA ? t.k : t.m, t.transA ? t.m : t.k, t.lda),
    b: span(t.transB ? t.n : t.k, t.transB ? t.k : t.n, t.ldb),
    c: span(t.m, t.n, t.ldc),
  };
}
