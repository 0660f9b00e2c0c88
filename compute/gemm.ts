// Synchronous single-threaded GEMM on the calling thread.

import { localKernels } from './kernel-text';
import type { GemmDesc, Task } from './types';
import { toTask } from './validate';

// Float64 accumulator for one row strip x column block; bounded by the block sizes (about 6 MB).
let workspace: Float64Array | null = null;

/** Runs a validated task (or a rectangle of one) on this thread. */
export function runLocal(t: Task): void {
  workspace = localKernels().runTask(t, workspace);
}

/** The calling thread's help with a pool call while its workers wake up (see runClaims). */
export function helpLocal(msg: { task: Task; ctl: Int32Array; byRows: boolean; units: number; minTake: number; threads: number },
  helpUntil: number, helpers: number): number {
  const r = localKernels().runClaims(msg.task, msg.ctl, msg.byRows, msg.units, msg.minTake, msg.threads, workspace, helpUntil, helpers);
  workspace = r.ws;
  return r.chunks;
}

/**
 * C = alpha * op(A) * op(B) + beta * C, in place, on the calling thread. Returns desc.c.
 * Throws TypeError / RangeError on a malformed descriptor (see docs/compute.md).
 */
export function gemm<D extends GemmDesc>(desc: D): D['c'] {
  runLocal(toTask(desc));
  return desc.c;
}
