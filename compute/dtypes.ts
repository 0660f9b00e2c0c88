// The one table of GEMM element types: for each dtype, the typed array of A and B (inputs) and of C
// (output). Element sizes (BYTES_PER_ELEMENT) and type tags (name) come from it, in compute/ and
// in whatever lays operands out in bytes (device/jobs.ts, the CLI). Imports nothing.

export const DTYPES = {
  f32: { input: Float32Array, output: Float32Array },
  f64: { input: Float64Array, output: Float64Array },
  i8: { input: Int8Array, output: Int32Array },
} as const;

export type DType = keyof typeof DTYPES;

/** Bytes per element of A and B, and of C. */
export function elementSizes(dtype: DType): { input: number; output: number } {
  const d = DTYPES[dtype];
  return { input: d.input.BYTES_PER_ELEMENT, output: d.output.BYTES_PER_ELEMENT };
}

/** A view of `length` elements at `byteOffset` in `buf`, typed as the dtype's inputs or output. */
export function typedView(dtype: DType, role: 'input' | 'output', buf: ArrayBufferLike, byteOffset: number, length: number):
  Float32Array | Float64Array | Int8Array | Int32Array {
  const Ctor = DTYPES[dtype][role] as new (b: ArrayBufferLike, o: number, l: number) => Float32Array | Float64Array | Int8Array | Int32Array;
  return new Ctor(buf, byteOffset, length);
}
