// Multi-core GEMM: a pool of worker_threads sharing A, B and C through SharedArrayBuffer.
// Each call splits C into one rectangle per worker (row blocks, or column blocks when C is wider
// than tall); every element is computed by the same code in the same order as gemm(), so results
// are bit-identical to the single-threaded call.

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { runLocal } from './gemm';
import { scratchSizes } from './kernels';
import type { Dst, GemmDesc, Src, Task } from './types';
import { spans, toTask } from './validate';
import { workerScript } from './kernel-text';

export interface PoolOptions {
  /** Worker threads. Default: os.availableParallelism(). */
  threads?: number;
  /** Calls below this many flops (2*m*n*k) run synchronously on the calling thread. Default 2^24 (about 2 ms of one core). */
  minFlops?: number;
}

export interface Pool {
  readonly threads: number;
  /** Like gemm(desc), on the workers. Rejects with TypeError/RangeError on a bad descriptor. */
  gemm<D extends GemmDesc>(desc: D): Promise<D['c']>;
  /** Terminates the workers; calls still in flight reject. Idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_MIN_FLOPS = 1 << 24;

interface Job { task: Task; resolve: () => void; reject: (err: Error) => void }
interface Slot { worker: Worker; job: Job | null }

function isShared(arr: Src | Dst): boolean {
  return Object.prototype.toString.call(arr.buffer) === '[object SharedArrayBuffer]';
}

/** A zeroed array of the same type as `arr`, on a new SharedArrayBuffer. */
function sharedLike<T extends Src | Dst>(arr: T, length: number): T {
  const Ctor = arr.constructor as new (buf: SharedArrayBuffer) => T;
  return new Ctor(new SharedArrayBuffer(length * arr.BYTES_PER_ELEMENT));
}

function copyRows(from: Dst, to: Dst, rows: number, cols: number, ld: number): void {
  for (let i = 0, o = 0; i < rows; i++, o += ld) to.set(from.subarray(o, o + cols), o);
}

/**
 * Makes every array of the task shared, copying those that are not (A and B whole spans; C only
 * its m x n elements, in when beta != 0 and back out after). Returns the shared task and the copy-back.
 */
function share(t: Task): { task: Task; copyBack: () => void } {
  const sp = spans(t);
  const toShared = (x: Src, span: number): Src => {
    if (isShared(x)) return x;
    const s = sharedLike(x, span);
    s.set(x.subarray(0, span));
    return s;
  };
  const a = toShared(t.a, sp.a), b = t.b === t.a && sp.b <= sp.a ? a : toShared(t.b, sp.b);
  if (isShared(t.c)) return { task: { ...t, a, b }, copyBack: () => {} };
  const c = sharedLike(t.c, sp.c);
  if (t.beta !== 0) copyRows(t.c, c, t.m, t.n, t.ldc);
  return { task: { ...t, a, b, c }, copyBack: () => copyRows(c, t.c, t.m, t.n, t.ldc) };
}

/** Cuts C into at most `parts` rectangles along its longer side, in whole 6-row panels or column pairs. */
function split(t: Task, parts: number): Task[] {
  const byRows = t.m >= t.n;
  const len = byRows ? t.m : t.n, unit = byRows ? 6 : 2;
  const units = Math.ceil(len / unit), p = Math.min(parts, units);
  const out: Task[] = [];
  for (let i = 0, start = 0; i < p; i++) {
    const end = Math.min(len, Math.round((units * (i + 1)) / p) * unit);
    if (end > start) out.push(byRows ? { ...t, m0: start, m1: end } : { ...t, n0: start, n1: end });
    start = end;
  }
  return out;
}

/** Starts a pool. Workers start on first use; idle workers do not keep the process alive. */
export function createPool(opts: PoolOptions = {}): Pool {
  const threads = opts.threads ?? availableParallelism();
  const minFlops = opts.minFlops ?? DEFAULT_MIN_FLOPS;
  if (!Number.isSafeInteger(threads) || threads < 1) throw new RangeError(`createPool: threads must be a positive integer (got ${threads})`);
  if (typeof minFlops !== 'number' || !(minFlops >= 0)) throw new RangeError(`createPool: minFlops must be a non-negative number (got ${minFlops})`);
  const slots: Slot[] = [];
  const queue: Job[] = [];
  let closed = false;

  function spawn(): Slot {
    // Scratch allocated on this thread, see installScratch. Shared rather than transferred: detaching
    // any ArrayBuffer invalidates a V8 protector and de-optimizes the kernels on this thread.
    const scratch = scratchSizes().map((n) => new SharedArrayBuffer(n * 8));
    const worker = new Worker(workerScript(), { eval: true, workerData: scratch });
    worker.unref();
    const slot: Slot = { worker, job: null };
    worker.on('message', (msg: { ok: boolean; error?: string }) => settle(slot, msg.ok ? null : new Error(`gemm worker: ${msg.error}`)));
    worker.on('error', (err: Error) => drop(slot, err));
    worker.on('exit', (code: number) => drop(slot, new Error(`gemm worker exited with code ${code}`)));
    slots.push(slot);
    return slot;
  }

  function settle(slot: Slot, err: Error | null): void {
    const job = slot.job;
    slot.job = null;
    slot.worker.unref(); // idle: let the process exit
    if (job !== null) {
      if (err === null) job.resolve(); else job.reject(err);
    }
    pump();
  }

  // A worker died: fail its job and forget it; pump() starts a replacement when needed.
  function drop(slot: Slot, err: Error): void {
    const i = slots.indexOf(slot);
    if (i < 0) return;
    slots.splice(i, 1);
    const job = slot.job;
    slot.job = null;
    if (job !== null) job.reject(err);
    void slot.worker.terminate();
    if (!closed) pump();
  }

  function pump(): void {
    while (!closed && queue.length > 0) {
      const slot = slots.find((s) => s.job === null) ?? (slots.length < threads ? spawn() : undefined);
      if (slot === undefined) return;
      const job = queue.shift() as Job;
      slot.job = job;
      slot.worker.ref(); // busy: keep the process alive until the result arrives
      slot.worker.postMessage({ task: job.task });
    }
  }

  function submit(task: Task): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      queue.push({ task, resolve, reject });
      pump();
    });
  }

  async function gemm<D extends GemmDesc>(desc: D): Promise<D['c']> {
    if (closed) throw new Error('gemm pool is closed');
    const t = toTask(desc);
    if (2 * t.m * t.n * t.k < minFlops || t.alpha === 0) {
      runLocal(t);
      return desc.c;
    }
    const { task, copyBack } = share(t);
    await Promise.all(split(task, threads).map(submit));
    copyBack();
    return desc.c;
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    const err = new Error('gemm pool closed');
    for (const job of queue.splice(0)) job.reject(err);
    const all = slots.splice(0);
    for (const s of all) if (s.job !== null) { s.job.reject(err); s.job = null; }
    await Promise.all(all.map((s) => s.worker.terminate()));
  }

  return { threads, gemm, close };
}

let shared: Pool | null = null;

/** gemm on a process-wide default pool (created on first use, sized by availableParallelism()). */
export function gemmAsync<D extends GemmDesc>(desc: D): Promise<D['c']> {
  shared ??= createPool();
  return shared.gemm(desc);
}

/** Closes the default pool behind gemmAsync (a later gemmAsync starts a new one). */
export async function closeDefaultPool(): Promise<void> {
  const p = shared;
  shared = null;
  if (p !== null) await p.close();
}
