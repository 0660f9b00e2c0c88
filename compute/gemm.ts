// Synchronous single-threaded GEMM on the calling thread.

import { localKernels, localKernelsAt } from './kernel-text';
import type { GemmDesc, Task } from './types';
import { toTask } from './validate';

// Float64 accumulator for one row strip x column block; bounded by the block sizes (about 6 MB).
let workspace: Float64Array | null = null;

/** Runs a validated task (or a rectangle of one) on this thread. */
export function runLocal(t: Task): void {
  workspace = localKernels(t).runTask(t, workspace);
}

let warming: Promise<void> | null = null;

/**
 * Compiles this thread's kernels for every dtype now rather than at each dtype's first call: one
 * dtype per turn of the event loop, since each is 45-85 ms of compiling and a server's requests
 * (the daemon's, whose first bo-create starts this) go on between them.
 */
export function warmLocal(): Promise<void> {
  warming ??= (async () => {
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 0)); // a timer: the immediates already queued (a server flushing its replies) go first
      localKernelsAt(i);
    }
  })();
  return warming;
}

/** The calling thread's help with a pool call while its workers wake up (see runClaims). */
export function helpLocal(msg: { task: Task; ctl: Int32Array; byRows: boolean; units: number; minTake: number; threads: number },
  helpUntil: number, helpers: number): number {
  const r = localKernels(msg.task).runClaims(msg.task, msg.ctl, msg.byRows, msg.units, msg.minTake, msg.threads, workspace, helpUntil, helpers);
  workspace = r.ws;
  return r.chunks;
}

/**
 * The calling thread's part in a joined pool call: it claims chunks like a worker until none are left,
 * then waits (Atomics.wait on ctl[2], at most waitMs) until every worker that started is done.
 * Returns true if the call is complete (C is final), false if a worker was still inside a chunk at
 * the deadline. A worker that starts after the last claim finds nothing left and never touches C.
 */
export function joinLocal(msg: { task: Task; ctl: Int32Array; byRows: boolean; units: number; minTake: number; threads: number },
  waitMs: number): boolean {
  const r = localKernels(msg.task).runClaims(msg.task, msg.ctl, msg.byRows, msg.units, msg.minTake, msg.threads, workspace, -1, 0);
  workspace = r.ws;
  const ctl = msg.ctl, deadline = performance.now() + waitMs;
  for (;;) {
    // done before started: a worker counted in neither, or in started only, is not yet done.
    const done = Atomics.load(ctl, 2);
    if (done >= Atomics.load(ctl, 1)) return true;
    const left = deadline - performance.now();
    if (left <= 0) return false;
    Atomics.wait(ctl, 2, done, left);
  }
}

/**
 * C = alpha * op(A) * op(B) + beta * C, in place, on the calling thread. Returns desc.c.
 * Throws TypeError / RangeError on a malformed descriptor (see docs/compute.md).
 */
export function gemm<D extends GemmDesc>(desc: D): D['c'] {
  runLocal(toTask(desc));
  return desc.c;
}
