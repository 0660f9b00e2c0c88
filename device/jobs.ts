// Device memory and the command path: buffer objects (BOs) in device memory, owned by the client
// that created them (the socket, genl/clients.ts: an id never reused, never its port number), and
// GEMM jobs queued per device and run by the compute engine. Faults meet jobs: an uncorrectable HBM
// error inside a job's BO fails it with EIO, a fatal error fails the running job and holds new ones
// until a reset, and a job past its timeout is cancelled.
import { type DType, type GemmDesc, type Pool, createPool, elementSizes, gemm, typedView } from '../compute';
import { EBUSY, EINVAL, EIO, EMFILE, ENODEV, ENOENT, ENOMEM, EOPNOTSUPP, ETIMEDOUT } from '../attrs/errno';
import { copyBytes } from '../attrs';
import { type Shm, loadShm } from '../genl/native/load';
import { type BoMemory, dropMemory, giveMemory, newBoMemory, takeMemory } from './bomem';
import type { Emulator } from './emulator';
import { type Device, touch } from './model';
import { stateSays } from './enums';

export type { DType };
export type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | 'timeout';

export interface Bo {
  /** Per-client handle, from 1 (as GEM handles are per open file): scripts can predict them. */
  handle: number;
  /** Daemon-wide id. */
  id: number;
  dev: Device;
  size: number;
  /** Device address of the first byte (for matching RAS error addresses). */
  addr: bigint;
  mem: SharedArrayBuffer;
  /**
   * Set once the BO is shared (bo-map): the sealed memfd that `mem` maps, which clients map too.
   * Such memory is never reused for another BO: a client may hold its mapping for ever.
   */
  fd?: number;
  /** Whether anything was written to it yet (bo-write, or as a job's C): a fresh BO is all zeros. */
  written: boolean;
  /** Its owner went away while a job used it: freed when that job is over (releaseClient). */
  orphan?: boolean;
  owner: number;
  /** The owner's uid, or undefined for an admin (whose BOs count against the host limit only). */
  uid?: number;
}

export interface Operand { handle: number; offset: number; ld: number }

export interface GemmRequest {
  m: number; n: number; k: number; dtype: DType; transA: boolean; transB: boolean;
  alpha: number; beta: number; a: Operand; b: Operand; c: Operand;
}

export interface Job {
  id: number;
  dev: Device;
  /** The client (socket id) that submitted it: its queued jobs are cancelled when it goes. */
  owner: number;
  /** The submitter's uid (-1: unknown): the job is seen by that user and by admins. */
  uid: number;
  req: GemmRequest;
  /**
   * The compute descriptor (views into the BOs' memory) and the BOs, while the job may touch them:
   * dropped once it is over (letGo), so that the finished jobs kept for job-get hold no memory of
   * BOs destroyed since.
   */
  desc: GemmDesc | undefined;
  bos: Bo[];
  status: JobStatus;
  /** errno of a failed job, 0 otherwise. */
  error: number;
  message: string;
  flops: number;
  startNs: bigint;
  durationNs: bigint;
  timeoutMs: number;
  timer?: NodeJS.Timeout;
  waiters: ((j: Job) => void)[];
}

export interface Engine {
  emu: Emulator;
  /** Every BO by daemon-wide id. */
  bos: Map<number, Bo>;
  /** Per client id: handle → BO, and the next handle. */
  handles: Map<number, { next: number; bos: Map<number, Bo> }>;
  jobs: Map<number, Job>;
  queues: Map<number, Job[]>;
  running: Map<number, Job>;
  nextBo: number;
  nextJob: number;
  /** Bytes of real memory all BOs may use together, whatever the devices claim. */
  hostLimit: number;
  hostUsed: number;
  /** Bytes the BOs of one non-admin uid may use together (so one user cannot take the host limit). */
  userLimit: number;
  /** Bytes in use per non-admin uid. */
  usedBy: Map<number, number>;
  /** Device address allocation cursor per device. */
  nextAddr: Map<number, bigint>;
  /** Busy milliseconds per device since the telemetry last asked. */
  busyMs: Map<number, number>;
  pool: Pool | undefined;
  /** Whether the pool was told to warm up (at the first BO: see createBo). */
  warming: boolean;
  /** Called when a job finishes, whatever the outcome. */
  onDone: ((j: Job) => void)[];
  /** Finished jobs kept for job-get. */
  keep: number;
  /** Freed BO memory kept for the next BO of the same size (device/bomem.ts). */
  memory: BoMemory;
  /** The shared-memory addon, for bo-map; null when it is not built (or a test says so). */
  shm: Shm | null;
  /** Mapped BOs one non-admin uid may hold at once (each holds a memfd descriptor in the daemon). */
  mapLimit: number;
  /** Mapped BOs held per non-admin uid. */
  mappedBy: Map<number, number>;
  /**
   * Mapped BOs the daemon holds in all (admins' too), and the most non-admins may make it hold: one
   * descriptor each. Admins are held to no count (they are trusted with the daemon's descriptors).
   */
  mappedTotal: number;
  mapTotalLimit: number;
}

/** Take `n` off `key`'s count, dropping the key at zero (so the maps hold only who holds something). */
export function countDown(m: Map<number, number>, key: number, n: number): void {
  const left = (m.get(key) ?? 0) - n;
  if (left > 0) m.set(key, left); else m.delete(key);
}

/** An error with an errno and an extack message, for the netlink layer. */
export class JobError extends Error {
  constructor(public errno: number, message: string) { super(message); }
}

export const MAX_BO = 1 << 30;

export function newEngine(emu: Emulator, o: { hostLimit?: number; userLimit?: number; threads?: number; shm?: Shm | null } = {}): Engine {
  const hostLimit = o.hostLimit ?? 4 * 2 ** 30;
  const e: Engine = {
    emu, bos: new Map(), handles: new Map(), jobs: new Map(), queues: new Map(), running: new Map(), nextBo: 1, nextJob: 1,
    hostLimit, hostUsed: 0, userLimit: o.userLimit ?? hostLimit / 4, usedBy: new Map(), nextAddr: new Map(), busyMs: new Map(),
    // joinFlops 0: the daemon's thread never computes a share of a job (a joined call would hold
    // its event loop, and every client's requests, for about half the call).
    pool: o.threads === 0 ? undefined : createPool({ threads: o.threads, joinFlops: 0 }), warming: false, onDone: [], keep: 1024,
    memory: newBoMemory(Math.min(hostLimit / 8, 256 * 2 ** 20)),
    shm: o.shm === undefined ? loadShm().shm : o.shm, mapLimit: 256, mappedBy: new Map(),
    mappedTotal: 0, mapTotalLimit: 8192,
  };
  emu.onRas.push((d, ev) => {
    if (ev.block !== 'hbm' || (ev.severity !== 'uncorrectable-nonfatal' && ev.severity !== 'uncorrectable-fatal') || ev.kind !== 'error') return;
    for (const j of e.jobs.values()) {
      if (j.dev !== d || (j.status !== 'queued' && j.status !== 'running')) continue;
      const hit = j.bos.find((b) => ev.address >= b.addr && ev.address < b.addr + BigInt(b.size));
      if (hit) finish(e, j, 'failed', EIO, `uncorrectable HBM error at 0x${ev.address.toString(16)} in BO ${hit.handle}`);
    }
  });
  emu.onConfig.push((ev) => {
    if (ev.kind === 'state') {
      const d = ev.dev;
      if (d.state === 'needs-reset' || d.state === 'malfunction' || d.state === 'offline') {
        const j = e.running.get(d.index);
        if (j) finish(e, j, 'failed', EIO, stateSays(d.name, d.state));
        if (d.state === 'offline') for (const q of [...(e.queues.get(d.index) ?? [])]) finish(e, q, 'failed', ENODEV, `device ${d.name} went offline`);
      } else if (d.state === 'operational') next(e, d);
    } else if (ev.kind === 'del') {
      for (const j of [...e.jobs.values()]) if (j.dev === ev.dev && (j.status === 'queued' || j.status === 'running')) finish(e, j, 'failed', ENODEV, `device ${ev.dev.name} was removed`);
      for (const b of [...e.bos.values()]) if (b.dev === ev.dev) freeBo(e, b);
    }
  });
  return e;
}

export async function stopEngine(e: Engine): Promise<void> {
  for (const j of e.jobs.values()) if (j.timer) clearTimeout(j.timer);
  for (const b of e.bos.values()) unshare(e, b);
  await e.pool?.close();
}

/**
 * Let go of a shared BO's memfd: its pages, our mapping (release) and our descriptor, now. Views of
 * the old mapping that something here still holds read zeros.
 */
function unshare(e: Engine, b: Bo): void {
  if (b.fd === undefined) return;
  // The file's pages go back with the BO, whoever faulted them in (the daemon's copies and a job's
  // C count against no one once the BO is gone): a mapping the client keeps stays valid and reads
  // zeros, and pages it writes after that are its own.
  e.shm!.punch(b.fd, b.size);
  e.shm!.release(b.mem);
  e.shm!.close(b.fd);
  b.fd = undefined;
  e.mappedTotal--;
  if (b.uid !== undefined) {
    countDown(e.mappedBy, b.uid, 1);
  }
}

/**
 * Move BO `b`'s memory into a sealed memfd that clients can map (bo-map); nothing when it is
 * shared already. Its bytes are kept. Throws JobError: EOPNOTSUPP without the shm addon, EBUSY
 * while a job holds views of the memory it would replace, EMFILE past the uid's mapLimit, ENOMEM
 * when no memfd can be made.
 */
export function shareBo(e: Engine, b: Bo): number {
  if (b.fd !== undefined) return b.fd;
  if (!e.shm) throw new JobError(EOPNOTSUPP, `this daemon cannot map BOs: ${loadShm().error ?? 'shared memory is turned off'}`);
  // A job that failed or timed out may still have its worker writing the memory this would give
  // back to the pool for other BOs: as busy as a running one.
  const j = inUse(e, b) ?? stillWriting(e, b);
  if (j) throw new JobError(EBUSY, `BO ${b.handle} is used by job ${j.id} (${j.status}); map it before submitting`);
  const held = b.uid === undefined ? 0 : e.mappedBy.get(b.uid) ?? 0;
  if (b.uid !== undefined && held >= e.mapLimit) {
    throw new JobError(EMFILE, `uid ${b.uid} holds ${held} mapped BOs, the most a non-admin user may; destroy one first`);
  }
  if (b.uid !== undefined && e.mappedTotal >= e.mapTotalLimit) throw new JobError(EMFILE, `the daemon holds ${e.mappedTotal} mapped BOs, its limit; try again when some are freed`);
  let made: { fd: number; mem: SharedArrayBuffer };
  try {
    made = e.shm.create(b.size);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new JobError(code === 'EMFILE' || code === 'ENFILE' ? EMFILE : ENOMEM, `cannot share BO ${b.handle}: ${(err as Error).message}`);
  }
  // A memfd starts zeroed, as a BO does: only written bytes need a copy (which would also fault
  // in every page on this side before the client touches them).
  if (b.written) new Uint8Array(made.mem).set(new Uint8Array(b.mem));
  giveMemory(e.memory, b.mem);
  b.mem = made.mem;
  b.fd = made.fd;
  e.mappedTotal++;
  if (b.uid !== undefined) e.mappedBy.set(b.uid, held + 1);
  return made.fd;
}

/**
 * Allocate a BO for client `owner`; `uid` (undefined for an admin) is held to the per-user limit.
 * Throws JobError ENOMEM with the sizes when device, host or the user's share is short.
 */
export function createBo(e: Engine, d: Device, want: number | bigint, owner: number, uid?: number): Bo {
  if (want > MAX_BO) throw new JobError(ENOMEM, `cannot allocate ${want} bytes: one BO holds at most ${MAX_BO}`);
  const size = Number(want);
  if (!Number.isSafeInteger(size) || size <= 0) throw new JobError(EINVAL, `bo size must be a positive integer, got ${want}`);
  const free = d.memTotal - d.memUsed;
  if (BigInt(size) > free) throw new JobError(ENOMEM, `cannot allocate ${size} bytes on ${d.name}: ${d.memUsed} of ${d.memTotal} in use`);
  if (size > MAX_BO || e.hostUsed + size > e.hostLimit) {
    throw new JobError(ENOMEM, `cannot allocate ${size} bytes: the emulator's host memory limit is ${e.hostLimit} (${e.hostUsed} in use), one BO at most ${MAX_BO}`);
  }
  const mine = uid === undefined ? 0 : e.usedBy.get(uid) ?? 0;
  if (uid !== undefined && mine + size > e.userLimit) {
    throw new JobError(ENOMEM, `cannot allocate ${size} bytes: uid ${uid} holds ${mine} of the ${e.userLimit} a non-admin user may`);
  }
  // Kept memory counts against the host limit too: give it up before failing or crowding it.
  if (e.hostUsed + size + e.memory.bytes > e.hostLimit) dropMemory(e.memory);
  let mem: SharedArrayBuffer;
  try { mem = takeMemory(e.memory, size); } catch { throw new JobError(ENOMEM, `host could not allocate ${size} bytes`); }
  const addr = e.nextAddr.get(d.index) ?? 0x1000n;
  e.nextAddr.set(d.index, addr + ((BigInt(size) + 0xfffn) & ~0xfffn));
  let ns = e.handles.get(owner);
  if (!ns) e.handles.set(owner, (ns = { next: 1, bos: new Map() }));
  const bo: Bo = { handle: ns.next++, id: e.nextBo++, dev: d, size, addr, mem, written: false, owner, uid };
  e.bos.set(bo.id, bo);
  ns.bos.set(bo.handle, bo);
  d.memUsed += BigInt(size);
  e.hostUsed += size;
  if (uid !== undefined) e.usedBy.set(uid, mine + size);
  d.generation++;
  touch(d);
  // A client that allocates a BO is about to submit a job: the workers start and compile their
  // kernels now, while it uploads, rather than beside its first jobs (docs/compute.md, warm-up).
  // Once per daemon; a daemon that never sees a BO never starts them.
  if (e.pool !== undefined && !e.warming) {
    e.warming = true;
    e.pool.warm().catch(() => {}); // rejects only when the pool closes (daemon stopping) or a worker dies, which the job will report
  }
  return bo;
}

/** A BO as its owner sees it: handles of other clients do not exist for them (as GEM handles per file). */
export function lookupBo(e: Engine, handle: number, client: number): Bo | undefined {
  return e.handles.get(client)?.bos.get(handle);
}

export function inUse(e: Engine, b: Bo): Job | undefined {
  for (const j of e.jobs.values()) if ((j.status === 'queued' || j.status === 'running') && j.bos.includes(b)) return j;
  return undefined;
}

export function freeBo(e: Engine, b: Bo): void {
  if (!e.bos.delete(b.id)) return;
  const ns = e.handles.get(b.owner);
  ns?.bos.delete(b.handle);
  if (ns && !ns.bos.size) e.handles.delete(b.owner);
  b.dev.memUsed -= BigInt(b.size);
  e.hostUsed -= b.size;
  if (b.uid !== undefined) {
    countDown(e.usedBy, b.uid, b.size);
  }
  b.dev.generation++;
  touch(b.dev);
  // Shared memory is the client's as much as ours: never handed to another BO.
  if (b.fd !== undefined) return unshare(e, b);
  // A job that failed or timed out while its worker still computes stays in `running` until the
  // worker is done: its memory is not reused while it may still be written.
  if (stillWriting(e, b)) return;
  giveMemory(e.memory, b.mem);
}

/** The job whose worker may still be writing BO `b` (running, or failed while its worker runs on). */
function stillWriting(e: Engine, b: Bo): Job | undefined {
  for (const j of e.running.values()) if (j.bos.includes(b)) return j;
  return undefined;
}

/** Copy `parts` into BO `b` from byte `at`, one after another; the caller checked they fit. */
export function writeBo(b: Bo, at: number, parts: readonly Uint8Array[]): void {
  // attrs' copyBytes: a part's payload seldom agrees with the BO offset modulo 8 (see there).
  for (const p of parts) { copyBytes(new Uint8Array(b.mem, at, p.length), 0, p); at += p.length; }
  b.written = true;
}

/** Everything a client held: its BOs, and its jobs that have not run yet. */
export function releaseClient(e: Engine, client: number): void {
  // Its queued jobs are in the device queues, its BOs under its handles: no walk of everything
  // (this runs whenever a client goes, a CLI command's socket included).
  const queued = [...e.queues.values()].flatMap((q) => q.filter((j) => j.owner === client)).sort((x, y) => x.id - y.id);
  for (const j of queued) finish(e, j, 'cancelled', 0, 'owner went away');
  for (const b of [...(e.handles.get(client)?.bos.values() ?? [])]) {
    if (inUse(e, b)) b.orphan = true; // freed when its running job is over (next)
    else freeBo(e, b);
  }
}

function operandView(e: Engine, name: string, op: Operand, client: number, esize: number, rows: number, cols: number,
  dtype: DType, isC: boolean): { bo: Bo; view: Float32Array | Float64Array | Int8Array | Int32Array } {
  const bo = lookupBo(e, op.handle, client);
  if (!bo) throw new JobError(ENOENT, `operand ${name}: no BO ${op.handle}`);
  if (op.ld < Math.max(1, cols)) {
    throw new JobError(EINVAL, `operand ${name}: ld${name.toLowerCase()} ${op.ld} is below ${cols > 0 ? `its row width ${cols}` : '1, the least an ld may be'}`);
  }
  if (op.offset % esize) throw new JobError(EINVAL, `operand ${name}: offset ${op.offset} is not aligned to ${esize} bytes`);
  const span = rows === 0 || cols === 0 ? 0 : (rows - 1) * op.ld + cols;
  const bytes = span * esize;
  if (op.offset + bytes > bo.size) {
    throw new JobError(EINVAL, `operand ${name} out of range: ${rows}x${cols} with ld ${op.ld} needs ${bytes} bytes at offset ${op.offset}, BO ${bo.handle} has ${bo.size}`);
  }
  const view = typedView(dtype, isC ? 'output' : 'input', bo.mem, op.offset, span);
  return { bo, view };
}

function describe(e: Engine, r: GemmRequest, client: number): { desc: GemmDesc; bos: Bo[] } {
  const { input: es, output: ces } = elementSizes(r.dtype);
  const A = operandView(e, 'A', r.a, client, es, r.transA ? r.k : r.m, r.transA ? r.m : r.k, r.dtype, false);
  const B = operandView(e, 'B', r.b, client, es, r.transB ? r.n : r.k, r.transB ? r.k : r.n, r.dtype, false);
  const C = operandView(e, 'C', r.c, client, ces, r.m, r.n, r.dtype, true);
  C.bo.written = true;
  const desc = {
    dtype: r.dtype, m: r.m, n: r.n, k: r.k, transA: r.transA, transB: r.transB, alpha: r.alpha, beta: r.beta,
    a: A.view, lda: r.a.ld, b: B.view, ldb: r.b.ld, c: C.view, ldc: r.c.ld,
  } as GemmDesc;
  return { desc, bos: [A.bo, B.bo, C.bo] };
}

/**
 * Validate and queue a GEMM job on a device; returns it at once. Throws JobError: EINVAL naming the
 * operand out of range, ENOENT for an unknown BO, EBUSY/ENODEV for a device that cannot take work.
 */
export function submit(e: Engine, d: Device, r: GemmRequest, client: number, timeoutMs: number, uid = -1): Job {
  if (d.state === 'offline') throw new JobError(ENODEV, `device ${d.name} is offline`);
  if (d.state !== 'operational') throw new JobError(EBUSY, stateSays(d.name, d.state));
  const { desc, bos } = describe(e, r, client);
  for (const b of bos) if (b.dev !== d) throw new JobError(EINVAL, `BO ${b.handle} lives on ${b.dev.name}, not ${d.name}`);
  const j: Job = {
    id: e.nextJob++, dev: d, owner: client, uid, req: r, desc, bos, status: 'queued', error: 0, message: '',
    flops: 2 * r.m * r.n * r.k, startNs: 0n, durationNs: 0n, timeoutMs, waiters: [],
  };
  e.jobs.set(j.id, j);
  let q = e.queues.get(d.index);
  if (!q) e.queues.set(d.index, (q = []));
  q.push(j);
  if (timeoutMs > 0) {
    j.timer = setTimeout(() => finish(e, j, 'timeout', ETIMEDOUT, `job exceeded its ${timeoutMs} ms timeout`), timeoutMs);
    j.timer.unref();
  }
  setImmediate(() => next(e, d));
  return j;
}

/** Start the next queued job of a device if it is idle and operational. */
function next(e: Engine, d: Device): void {
  if (e.running.has(d.index) || d.state !== 'operational') return;
  const q = e.queues.get(d.index);
  const j = q?.shift();
  if (!j) return;
  e.running.set(d.index, j);
  j.status = 'running';
  j.startNs = e.emu.clock.nowNs();
  const t0 = process.hrtime.bigint();
  const desc = j.desc!;
  const run = e.pool ? e.pool.gemm(desc) : Promise.resolve().then(() => gemm(desc));
  run.then(() => {
    const ns = process.hrtime.bigint() - t0;
    e.busyMs.set(d.index, (e.busyMs.get(d.index) ?? 0) + Number(ns) / 1e6);
    if (j.status === 'running') { j.durationNs = ns; finish(e, j, 'done', 0, ''); }
  }, (err: Error) => {
    if (j.status === 'running') finish(e, j, 'failed', err instanceof RangeError || err instanceof TypeError ? EINVAL : EIO, err.message);
  }).finally(() => {
    if (e.running.get(d.index) === j) e.running.delete(d.index);
    for (const b of j.bos) if (b.orphan && !inUse(e, b)) freeBo(e, b);
    letGo(j);
    next(e, d);
  });
}

/** A job that can no longer touch memory lets go of its BOs and their views. */
function letGo(j: Job): void {
  j.desc = undefined;
  j.bos = [];
}

/** Settle a job (once): status, errno, message; wake waiters; tell listeners. */
export function finish(e: Engine, j: Job, status: JobStatus, errno: number, message: string): void {
  if (j.status !== 'queued' && j.status !== 'running') return;
  if (j.status === 'queued') {
    letGo(j); // it never ran (a running one lets go when its worker is done: next)
    const q = e.queues.get(j.dev.index);
    const i = q?.indexOf(j) ?? -1;
    if (i >= 0) q!.splice(i, 1);
  } else if (j.durationNs === 0n) j.durationNs = e.emu.clock.nowNs() - j.startNs;
  j.status = status;
  j.error = errno;
  j.message = message;
  if (j.timer) clearTimeout(j.timer);
  for (const w of j.waiters.splice(0)) w(j);
  for (const f of e.onDone) f(j);
  // Keep a bounded history of finished jobs.
  if (e.jobs.size > e.keep) {
    for (const [id, x] of e.jobs) {
      if (e.jobs.size <= e.keep) break;
      if (x.status !== 'queued' && x.status !== 'running') e.jobs.delete(id);
    }
  }
}

/** Resolves when the job is finished, or rejects with ETIMEDOUT after `ms` (0 = no limit). */
export function waitJob(j: Job, ms: number): Promise<Job> {
  if (j.status !== 'queued' && j.status !== 'running') return Promise.resolve(j);
  return new Promise((resolve, reject) => {
    const t = ms > 0 ? setTimeout(() => {
      const i = j.waiters.indexOf(done);
      if (i >= 0) j.waiters.splice(i, 1);
      reject(new JobError(ETIMEDOUT, `job ${j.id} still ${j.status} after ${ms} ms`));
    }, ms) : undefined;
    const done = (x: Job): void => { if (t) clearTimeout(t); resolve(x); };
    j.waiters.push(done);
  });
}

/** Busy fraction of a device over the last `windowMs`, for utilization telemetry (resets the tally). */
export function takeBusy(e: Engine, dev: number, windowMs: number): number {
  let ms = e.busyMs.get(dev) ?? 0;
  const r = e.running.get(dev);
  if (r) ms = windowMs; // running now: the whole window was busy
  e.busyMs.set(dev, 0);
  return Math.min(1, ms / windowMs);
}
