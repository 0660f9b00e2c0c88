// compute/: the emulated accelerator's matrix engine. A GEMM core in plain typed-array TypeScript,
// independent of netlink. See docs/compute.md.

export type { DType, GemmDesc, GemmF32, GemmF64, GemmI8 } from './types';
export { gemm } from './gemm';
export { createPool, gemmAsync, closeDefaultPool, DEFAULT_MIN_FLOPS, DEFAULT_JOIN_FLOPS } from './pool';
export type { Pool, PoolOptions } from './pool';
export { blocking } from './kernels';
export { DTYPES, elementSizes, typedView } from './dtypes';
