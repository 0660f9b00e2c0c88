// Multi-core GEMM: a pool of worker_threads sharing A, B and C through SharedArrayBuffer.
// Each call cuts C into chunks (row panels, or column pairs when C is wider than tall) that the
// workers claim from a shared counter; every element is computed by the same code in the same order
// as gemm(), so results are bit-identical to the single-threaded call.

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { helpLocal, runLocal } from './gemm';
import { blocking, scratchSizes } from './kernels';
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

/** At most this long (ms) the calling thread computes chunks while a call's workers wake up. */
const HELP_MS = 0.5;

/**
 * One offloaded call. Every worker that takes one of its shares claims chunks of C from the shared
 * counter ctl[0] (see runClaims) until all `units` are claimed; the call is done when every unit is
 * claimed and no share is still running (shares still queued then are dropped).
 */
interface Call {
  msg: { task: Task; ctl: Int32Array; byRows: boolean; units: number; minTake: number; threads: number; oneBlock: boolean };
  queued: number;
  running: number;
  settled: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
}
interface Slot { worker: Worker; call: Call | null }

// Per process, so a worker never mistakes another call's packed B block for this one's.
let nextCallId = 1;

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

/**
 * How a call is cut: along C's longer side, in 6-row panels or column pairs. Chunks get smaller as
 * the work runs out, down to minTake units. Small chunks are cheap when every chunk a worker takes
 * reuses the B block it packed for its previous one (row chunks, B a single KC x NC block); otherwise
 * each chunk packs its own blocks, so at least 1/(2 * threads) of the work goes in a chunk.
 */
function plan(t: Task, threads: number): Call['msg'] {
  const { KC, NC } = blocking();
  const byRows = t.m >= t.n;
  const units = Math.ceil((byRows ? t.m : t.n) / (byRows ? 6 : 2));
  const oneBlock = byRows && t.n <= NC && t.k <= KC;
  const minTake = oneBlock ? 2 : Math.max(1, Math.ceil(units / (2 * threads)));
  const ctl = new Int32Array(new SharedArrayBuffer(8)); // [0] units claimed, [1] workers started
  return { task: { ...t, id: nextCallId++ }, ctl, byRows, units, minTake, threads, oneBlock };
}

/** Starts a pool. Workers start on first use; idle workers do not keep the process alive. */
export function createPool(opts: PoolOptions = {}): Pool {
  const threads = opts.threads ?? availableParallelism();
  const minFlops = opts.minFlops ?? DEFAULT_MIN_FLOPS;
  if (!Number.isSafeInteger(threads) || threads < 1) throw new RangeError(`createPool: threads must be a positive integer (got ${threads})`);
  if (typeof minFlops !== 'number' || !(minFlops >= 0)) throw new RangeError(`createPool: minFlops must be a non-negative number (got ${minFlops})`);
  const slots: Slot[] = [];
  const queue: Call[] = []; // one entry per share still to start
  // Workers that must have started before the calling thread stops helping: all of them if there
  // is a core to spare, else one fewer (the last one needs the caller's core).
  const helpers = Math.min(threads, availableParallelism() - 1);
  let closed = false;

  function spawn(): Slot {
    // Scratch allocated on this thread, see installScratch. Shared rather than transferred: detaching
    // any ArrayBuffer invalidates a V8 protector and de-optimizes the kernels on this thread.
    const scratch = scratchSizes().map((n) => new SharedArrayBuffer(n * 8));
    const worker = new Worker(workerScript(), { eval: true, workerData: scratch });
    worker.unref();
    const slot: Slot = { worker, call: null };
    worker.on('message', (msg: { ok: boolean; error?: string }) => settle(slot, msg.ok ? null : new Error(`gemm worker: ${msg.error}`)));
    worker.on('error', (err: Error) => drop(slot, err));
    worker.on('exit', (code: number) => drop(slot, new Error(`gemm worker exited with code ${code}`)));
    slots.push(slot);
    return slot;
  }

  /** Settles a call once: its shares still queued are dropped. */
  function finish(call: Call, err: Error | null): void {
    if (call.settled) return;
    call.settled = true;
    for (let i = queue.length - 1; i >= 0; i--) if (queue[i] === call) queue.splice(i, 1);
    call.queued = 0;
    if (err === null) call.resolve(); else call.reject(err);
  }

  function settle(slot: Slot, err: Error | null): void {
    const call = slot.call;
    slot.call = null;
    slot.worker.unref(); // idle: let the process exit
    if (call !== null) {
      call.running--;
      if (err !== null) finish(call, err);
      else if (call.running === 0 && (call.queued === 0 || Atomics.load(call.msg.ctl, 0) >= call.msg.units)) finish(call, null);
    }
    pump();
  }

  // A worker died: fail its call and forget it; pump() starts a replacement when needed.
  function drop(slot: Slot, err: Error): void {
    const i = slots.indexOf(slot);
    if (i < 0) return;
    slots.splice(i, 1);
    const call = slot.call;
    slot.call = null;
    if (call !== null) { call.running--; finish(call, err); }
    void slot.worker.terminate();
    if (!closed) pump();
  }

  function pump(): void {
    while (!closed && queue.length > 0) {
      const slot = slots.find((s) => s.call === null) ?? (slots.length < threads ? spawn() : undefined);
      if (slot === undefined) return;
      const call = queue.shift() as Call;
      call.queued--;
      call.running++;
      slot.call = call;
      slot.worker.ref(); // busy: keep the process alive until the result arrives
      slot.worker.postMessage(call.msg);
    }
  }

  function submit(msg: Call['msg']): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const shares = Math.min(threads, msg.units);
      const call: Call = { msg, queued: shares, running: 0, settled: false, resolve, reject };
      for (let i = 0; i < shares; i++) queue.push(call);
      pump();
      // A wake-up costs a worker 0.1-0.3 ms here (docs/compute.md), a tenth of a 256^3 call. While
      // the workers wake, this thread takes small chunks itself, when every share started at once
      // on an idle worker and the chunks are small (B one block). It stops when as many workers
      // have started as leave it a core, or after HELP_MS: the event loop is held at most that
      // long plus one chunk.
      if (call.queued === 0 && msg.oneBlock && helpers > 0) {
        helpLocal(msg, performance.now() + HELP_MS, Math.min(shares, helpers));
        if (call.running === 0 && Atomics.load(msg.ctl, 0) >= msg.units) finish(call, null);
      }
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
    await submit(plan(task, threads));
    copyBack();
    return desc.c;
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    const err = new Error('gemm pool closed');
    for (const call of queue.splice(0)) finish(call, err);
    const all = slots.splice(0);
    for (const s of all) if (s.call !== null) { finish(s.call, err); s.call = null; }
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
