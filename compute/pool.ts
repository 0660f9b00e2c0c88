// Multi-core GEMM: a pool of worker_threads sharing A, B and C through SharedArrayBuffer.
// Each call cuts C into chunks (row panels, or column pairs when C is wider than tall) that the
// workers claim from a shared counter; every element is computed by the same code in the same order
// as gemm(), so results are bit-identical to the single-threaded call.

import { availableParallelism } from 'node:os';
import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from 'node:worker_threads';
import { helpLocal, joinLocal, runLocal, warmLocal } from './gemm';
import { blocking, makeTask, scratchSizes } from './kernels';
import type { Dst, GemmDesc, Src, Task } from './types';
import { spans, toTask } from './validate';
import { workerScript } from './kernel-text';

export interface PoolOptions {
  /** Worker threads. Default: os.availableParallelism(). */
  threads?: number;
  /** Calls below this many flops (2*m*n*k) run synchronously on the calling thread. Default 2^24 (about 2 ms of one core). */
  minFlops?: number;
  /**
   * Calls below this many flops are computed by the calling thread together with the workers, and
   * it holds the event loop until they are done (as a synchronous call would, for about half as
   * long on two cores). Default 2^26 (about 6 ms of one core). 0: never.
   */
  joinFlops?: number;
}

export interface Pool {
  readonly threads: number;
  /** Workers running now: 0 until the first call or warm(), then up to threads. */
  readonly workers: number;
  /** Like gemm(desc), on the workers. Rejects with TypeError/RangeError on a bad descriptor. */
  gemm<D extends GemmDesc>(desc: D): Promise<D['c']>;
  /**
   * Starts every worker and resolves when each has compiled its kernels, and so has this thread
   * (one dtype per turn of its event loop; about 0.2 s of CPU per thread, docs/compute.md).
   * Optional: without it the first calls start the workers, and run beside their warm-up. Rejects
   * if a worker dies or the pool closes.
   */
  warm(): Promise<void>;
  /** Terminates the workers; calls still in flight reject. Idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_MIN_FLOPS = 1 << 24;

export const DEFAULT_JOIN_FLOPS = 1 << 26;

/** At most this long (ms) the calling thread computes chunks while a call's workers wake up. */
const HELP_MS = 0.5;

/**
 * A joined call: how long (ms) the calling thread waits, after the last chunk is claimed, for the
 * workers still inside one; past it the call completes asynchronously (a descheduled worker).
 */
const JOIN_WAIT_MS = 5;

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
/** A worker's answer to a share: done, or the error it threw. */
interface Reply { ok: boolean; error?: string; chunks?: number }
/** What a worker posts once its kernels are compiled, before any reply. */
interface Warm { warm: true }
interface Slot { worker: Worker; port: MessagePort; call: Call | null; warm: boolean }

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
  if (isShared(t.c)) return { task: makeTask(t, a, b, t.c, t.m0, t.m1, t.n0, t.n1, t.id), copyBack: () => {} };
  const c = sharedLike(t.c, sp.c);
  if (t.beta !== 0) copyRows(t.c, c, t.m, t.n, t.ldc);
  return { task: makeTask(t, a, b, c, t.m0, t.m1, t.n0, t.n1, t.id), copyBack: () => copyRows(c, t.c, t.m, t.n, t.ldc) };
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
  const ctl = new Int32Array(new SharedArrayBuffer(12)); // [0] units claimed, [1] workers started, [2] workers done
  return { task: makeTask(t, t.a, t.b, t.c, t.m0, t.m1, t.n0, t.n1, nextCallId++), ctl, byRows, units, minTake, threads, oneBlock };
}

/** Starts a pool. Workers start on first use; idle workers do not keep the process alive. */
export function createPool(opts: PoolOptions = {}): Pool {
  const threads = opts.threads ?? availableParallelism();
  const minFlops = opts.minFlops ?? DEFAULT_MIN_FLOPS;
  const joinFlops = opts.joinFlops ?? DEFAULT_JOIN_FLOPS;
  if (!Number.isSafeInteger(threads) || threads < 1) throw new RangeError(`createPool: threads must be a positive integer (got ${threads})`);
  if (typeof minFlops !== 'number' || !(minFlops >= 0)) throw new RangeError(`createPool: minFlops must be a non-negative number (got ${minFlops})`);
  if (typeof joinFlops !== 'number' || !(joinFlops >= 0)) throw new RangeError(`createPool: joinFlops must be a non-negative number (got ${joinFlops})`);
  const slots: Slot[] = [];
  const queue: Call[] = []; // one entry per share still to start
  // Workers that must have started before the calling thread stops helping: all of them if there
  // is a core to spare, else one fewer (the last one needs the caller's core).
  const helpers = Math.min(threads, availableParallelism() - 1);
  let closed = false;
  // warm() calls waiting for every worker to post Warm.
  let warmWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];

  function spawn(): Slot {
    // Scratch allocated on this thread, see installScratch. Shared rather than transferred: detaching
    // any ArrayBuffer invalidates a V8 protector and de-optimizes the kernels on this thread.
    const scratch = scratchSizes().map((n) => new SharedArrayBuffer(n * 8));
    // Replies come on a port of their own, so that this thread can also take them synchronously
    // (receiveMessageOnPort) before the event loop gets to them: see drain().
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(workerScript(), { eval: true, workerData: { scratch, port: port2 }, transferList: [port2] });
    worker.unref();
    const slot: Slot = { worker, port: port1, call: null, warm: false };
    port1.on('message', (msg: Reply | Warm) => take(slot, msg));
    port1.unref(); // after on('message'), which refs the port: the worker's ref() alone keeps the process alive
    worker.on('error', (err: Error) => drop(slot, err));
    worker.on('exit', (code: number) => drop(slot, new Error(`gemm worker exited with code ${code}`)));
    slots.push(slot);
    return slot;
  }

  function take(slot: Slot, msg: Reply | Warm): void {
    if ('warm' in msg) {
      slot.warm = true;
      if (slot.call === null) slot.worker.unref(); // warm() ref'd it
      checkWarm(null);
    } else {
      settle(slot, msg.ok ? null : new Error(`gemm worker: ${msg.error}`));
    }
  }

  /** Settles the warm() calls: with err, or once every worker is warm. */
  function checkWarm(err: Error | null): void {
    if (warmWaiters.length === 0 || (err === null && (slots.length < threads || slots.some((s) => !s.warm)))) return;
    const waiting = warmWaiters;
    warmWaiters = [];
    for (const w of waiting) if (err === null) w.resolve(); else w.reject(err);
  }

  /** Takes every reply already posted, without waiting for the event loop: idle workers are free again. */
  function drain(): void {
    for (const slot of slots.slice()) {
      for (let m = receiveMessageOnPort(slot.port); m !== undefined; m = receiveMessageOnPort(slot.port)) take(slot, m.message as Reply | Warm);
    }
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
    slot.port.close();
    void slot.worker.terminate();
    checkWarm(err);
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
      slot.port.postMessage(call.msg);
    }
  }

  function submit(msg: Call['msg'], join: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      drain();
      // A joined call leaves the calling thread a core: one share fewer than the cores.
      const shares = Math.min(join ? helpers : threads, msg.units);
      const call: Call = { msg, queued: shares, running: 0, settled: false, resolve, reject };
      for (let i = 0; i < shares; i++) queue.push(call);
      pump();
      if (join) {
        // Small calls: the wake-ups (0.1-0.3 ms each way on this VM, docs/compute.md) are a large
        // part of them. This thread claims chunks like a worker from the start, so a late worker
        // costs only its own share, and when nothing is left it waits on the shared counters
        // (Atomics.wait) for the workers still inside a chunk, instead of for their replies to
        // come through the event loop.
        if (joinLocal(msg, JOIN_WAIT_MS)) finish(call, null);
        return;
      }
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
    await submit(plan(task, threads), helpers > 0 && 2 * t.m * t.n * t.k < joinFlops);
    copyBack();
    return desc.c;
  }

  function warm(): Promise<void> {
    if (closed) return Promise.reject(new Error('gemm pool is closed'));
    const workers = new Promise<void>((resolve, reject) => {
      warmWaiters.push({ resolve, reject });
      // Referenced until warm: a process with nothing else to do would exit before this settles.
      while (slots.length < threads) spawn().worker.ref();
      for (const s of slots) if (!s.warm) s.worker.ref();
      checkWarm(null);
    });
    return Promise.all([workers, warmLocal()]).then(() => undefined);
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    const err = new Error('gemm pool is closed');
    checkWarm(err);
    for (const call of queue.splice(0)) finish(call, err);
    const all = slots.splice(0);
    for (const s of all) if (s.call !== null) { finish(s.call, err); s.call = null; }
    for (const s of all) s.port.close();
    // Something must keep the event loop alive until the workers are gone, or a process with
    // nothing else to do exits 0 before close() resolves, and what was to follow it never runs
    // (seen as a bench that exited without its report). Ref'ing the workers was not enough: a
    // process whose pool had run calls still exited so in 4 of 24 runs under load; with a timer,
    // in none (terminate took 8-16 ms).
    const alive = setInterval(() => {}, 1000);
    try {
      await Promise.all(all.map((s) => s.worker.terminate()));
    } finally {
      clearInterval(alive);
    }
  }

  return { threads, get workers() { return slots.length; }, gemm, warm, close };
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
