// Socket layer: one small API over AF_NETLINK datagram sockets, with two backends.
//  - 'native': genl/native addon. Kernel-attested sender credentials (SCM_CREDENTIALS), one
//    callback per wake-up for a whole batch, synchronous send results, sendmmsg.
//  - 'npm': the `netlink` package's RawNetlinkSocket. No credentials (uid/gid/pid = -1);
//    sends complete asynchronously, so their errors arrive via onSendError.
// See docs/transport.md.
import { constants as osConstants } from 'os';
import { errnoName } from '../attrs/errno';
import { loadNative, type Native, type NativeHandle } from './native/load';

export const NETLINK_USERSOCK = 2;
export const NETLINK_GENERIC = 16;
/** USERSOCK has 32 multicast groups (1..32). */
export const MAX_GROUPS = 32;

/** Linux socket option numbers (stable ABI), for NlSocket.setOption. */
export const SockOpt = {
  SOL_SOCKET: 1, SOL_NETLINK: 270,
  SO_SNDBUF: 7, SO_RCVBUF: 8, SO_PASSCRED: 16, SO_SNDBUFFORCE: 32, SO_RCVBUFFORCE: 33,
  NETLINK_ADD_MEMBERSHIP: 1, NETLINK_DROP_MEMBERSHIP: 2, NETLINK_NO_ENOBUFS: 5,
  NETLINK_CAP_ACK: 10, NETLINK_EXT_ACK: 11,
} as const;

export type Backend = 'native' | 'npm';

/**
 * The datagrams of one wake-up. Views from data(i) alias a reused receive buffer: they are valid
 * only during the onBatch call (copy them to keep them). uid/gid/pid are -1 when unknown.
 */
export interface Batch {
  readonly count: number;
  data(i: number): Buffer;
  /** Sender port id (u32); 0 is the kernel. Never trust nlmsg_pid in the payload instead. */
  port(i: number): number;
  /** Destination group bitmask (1 << (g-1)) for a multicast, else 0. */
  groups(i: number): number;
  uid(i: number): number;
  gid(i: number): number;
  pid(i: number): number;
  /** 0 if whole; otherwise the datagram's real length (data(i) holds only the first part). */
  truncated(i: number): number;
  /**
   * Native backend: the whole receive area, datagram i being its `length(i)` bytes at `offset(i)`:
   * the same bytes as data(i), as short-lived, for a reader that keeps one view over the area
   * instead of making one per datagram. The area stays the same object for the socket's life.
   */
  readonly area?: Buffer;
  offset?(i: number): number;
  length?(i: number): number;
}

export interface NlError extends Error { code: string; errno: number; syscall?: string }

export interface OpenOptions {
  protocol: number;
  /** Port id to bind; 0 or absent = kernel autobind. */
  port?: number;
  /** Groups bitmask to bind (needs CAP_NET_ADMIN on USERSOCK); prefer addMembership. */
  groups?: number;
  rcvbuf?: number;
  sndbuf?: number;
  /** Ask for SCM_CREDENTIALS. Only the native backend can; check NlSocket.credentials. */
  credentials?: boolean;
  /** Default: 'native' when the addon loaded, else 'npm'. */
  backend?: Backend;
  /** Native: datagrams drained per wake-up (default 64). */
  batch?: number;
  /** Native: bytes kept per datagram (default 65536); longer ones are reported truncated. */
  maxMessage?: number;
  /**
   * Native only: after each batch, keep reading for up to this many µs (at most 1000) before the
   * event loop sleeps again, so that a client in a request loop is answered without a wake-up of
   * this process. It spends CPU while it waits; 0 (the default) never does. See docs/transport.md.
   */
  busyPollUs?: number;
  onBatch(batch: Batch): void;
  /** Socket-level failures. Default: throw (i.e. uncaught). */
  onError?(err: NlError): void;
  /** The kernel dropped datagrams for us (recv ENOBUFS). Default: onError with code ENOBUFS. */
  onOverrun?(): void;
  /** npm backend only: a send failed after send() returned 0. Default: onError. */
  onSendError?(errno: number, port: number, groups: number): void;
}

export interface NlSocket {
  readonly port: number;
  /**
   * The longest datagram a read takes whole (undefined: unknown). A client tells a userspace server
   * (genl/client.ts tellRecvLen), as the kernel learns it from recvmsg.
   */
  readonly recvLen?: number;
  readonly backend: Backend;
  /** True when uid/gid/pid in batches are kernel-attested. */
  readonly credentials: boolean;
  /**
   * 0 or -errno (never throws for EAGAIN, ENOBUFS, ECONNREFUSED...). A group send on USERSOCK
   * returns -ECONNREFUSED after delivering to the group: callers treat that as success.
   */
  send(data: Uint8Array, port: number, groups?: number): number;
  /**
   * Sends count datagrams described by spans[4i..4i+3] = offset, length, port, groups within data.
   * Returns how many succeeded; results[i] (if given) = 0 or -errno. Once a unicast send to a port
   * fails, later spans to that port are not tried (same errno): the caller queues them, in order.
   */
  sendMany(data: Uint8Array, spans: Int32Array, count?: number, results?: Int32Array): number;
  /**
   * sendMany, but a unicast span i with inodes[i] != 0 goes out only if the socket bound to its
   * port has that inode by a sock_diag table read in the same native call, just before the send;
   * otherwise results[i] = -ESTALE. With `after`, the table is read again once sent: after[i] is
   * the inode on span i's port then for a checked span that was delivered (0: none, asked twice),
   * inodes[i] for the others; after[i] != inodes[i] means the port changed hands during the send.
   * Native backend only (the addon's sendManyHeld).
   */
  sendManyHeld?(data: Uint8Array, spans: Int32Array, count: number, results: Int32Array, inodes: Int32Array, after?: Int32Array): number;
  /** Throws NlError (EPERM without CAP_NET_ADMIN on USERSOCK, EINVAL for g > 32). */
  addMembership(group: number): void;
  dropMembership(group: number): void;
  /** Integer setsockopt: 0 or -errno (-EOPNOTSUPP on the npm backend). */
  setOption(level: number, name: number, value: number): number;
  /** Native backend: busy polling after each batch, in µs (OpenOptions.busyPollUs; 0: none). */
  readonly busyPollUs?: number;
  /** Native backend: batches read while busy polling (busyPollUs). */
  busyPolled?(): number;
  close(): void;
  ref(): void;
  unref(): void;
}

/**
 * sendMany for backends without sendmmsg: one send per span, with the same rule as the native
 * one: after a unicast send to a port fails, later spans to that port get its errno, untried.
 */
export function sendEach(send: (d: Uint8Array, port: number, groups: number) => number, data: Uint8Array,
  spans: Int32Array, count: number, results?: Int32Array): number {
  let ok = 0;
  let held: Map<number, number> | undefined; // port → the errno it failed with
  for (let i = 0; i < count; i++) {
    const off = spans[4 * i];
    const port = spans[4 * i + 2] >>> 0;
    const groups = spans[4 * i + 3];
    const r = (!groups && held?.get(port)) || send(data.subarray(off, off + spans[4 * i + 1]), port, groups);
    if (results) results[i] = r;
    if (r === 0) ok++;
    else if (!groups) (held ??= new Map()).set(port, r);
  }
  return ok;
}

export function nlError(errno: number, syscall: string, message?: string): NlError {
  const code = errnoName(errno);
  const err = new Error(message ?? `${syscall}: ${code}`) as NlError;
  err.code = code;
  err.errno = -Math.abs(errno);
  err.syscall = syscall;
  return err;
}

const E = osConstants.errno;

/** Whether the native backend is usable, and why not. */
/** Whether the native addon loaded (and from where, or why not), and whether it can busy poll. */
export function nativeStatus(): { loaded: boolean; file: string | null; error: string | null; busyPoll: boolean } {
  const s = loadNative();
  return { loaded: s.native !== null, file: s.file, error: s.error, busyPoll: typeof s.native?.busyPoll === 'function' };
}

/** How to rebuild the addon, installed or in a checkout. */
export const REBUILD = 'npm rebuild accelnl, or node genl/native/build.js in a checkout';

/** The longest busy poll after a batch, in µs (the addon's MAX_BUSY_US). */
export const MAX_BUSY_POLL_US = 1000;

/**
 * A netlink port id written as decimal or 0x-hex, 1..0xffffffff; throws a clear Error otherwise.
 * `where` names the source in the message (e.g. "in SOME_ENV_VAR").
 */
export function parsePort(raw: string | number, where = ''): number {
  const s = String(raw).trim();
  const n = /^[0-9]+$/.test(s) ? Number(s) : /^0x[0-9a-f]+$/i.test(s) ? parseInt(s.slice(2), 16) : NaN;
  if (!(n >= 1 && n <= 0xffffffff)) {
    throw new Error(`invalid netlink port ${JSON.stringify(String(raw))}${where ? ` ${where}` : ''}: ` +
      'expected a decimal or 0x-hex number from 1 to 0xffffffff');
  }
  return n;
}

export function openSocket(opts: OpenOptions): NlSocket {
  const native = loadNative().native;
  const backend = opts.backend ?? (native ? 'native' : 'npm');
  if (backend === 'native' && !native) throw new Error(`native socket backend unavailable: ${loadNative().error}`);
  checkBusyPoll(opts.busyPollUs, backend, native);
  try {
    return backend === 'native' ? openNative(native!, opts) : openNpm(opts);
  } catch (e) {
    const err = asNlError(e);
    if (err.code === 'EADDRINUSE') {
      const p = opts.port ?? 0;
      err.message = `netlink port ${p} (0x${p.toString(16)}) is already in use on protocol ${opts.protocol} (EADDRINUSE)`;
    }
    throw err;
  }
}

/** Refuses a busy poll the socket could not do, before any socket is opened (or a port bound). */
function checkBusyPoll(us: number | undefined, backend: Backend, native: Native | null): void {
  if (us === undefined) return;
  if (!(Number.isInteger(us) && us >= 0 && us <= MAX_BUSY_POLL_US)) {
    throw new RangeError(`busy polling takes a whole number of µs from 0 to ${MAX_BUSY_POLL_US} (got ${typeof us === 'number' ? us : JSON.stringify(us)})`);
  }
  if (us === 0) return;
  if (backend !== 'native') throw new Error('busy polling needs the native socket backend');
  if (typeof native?.busyPoll !== 'function') throw new Error(`busy polling needs a newer socket addon: rebuild it (${REBUILD})`);
}

function defaultOnError(err: NlError): void {
  throw err;
}

function reportOverrun(opts: OpenOptions): void {
  if (opts.onOverrun) opts.onOverrun();
  else (opts.onError ?? defaultOnError)(nlError(E.ENOBUFS, 'recvmsg', 'netlink receive overrun: datagrams dropped'));
}

function openNative(nat: Native, opts: OpenOptions): NlSocket {
  const STRIDE = nat.constants.META_STRIDE;
  let h: NativeHandle;
  try {
    h = nat.open(opts.protocol, opts.port ?? 0, opts.groups ?? 0, opts.credentials ? 1 : 0);
  } catch (e) {
    throw asNlError(e);
  }
  const setBuf = (force: number, plain: number, size: number) => {
    // FORCE ignores net.core.[rw]mem_max but needs CAP_NET_ADMIN; fall back to the capped one.
    if (nat.setInt(h, SockOpt.SOL_SOCKET, force, size) !== 0) nat.setInt(h, SockOpt.SOL_SOCKET, plain, size);
  };
  if (opts.rcvbuf) setBuf(SockOpt.SO_RCVBUFFORCE, SockOpt.SO_RCVBUF, opts.rcvbuf);
  if (opts.sndbuf) setBuf(SockOpt.SO_SNDBUFFORCE, SockOpt.SO_SNDBUF, opts.sndbuf);

  const slot = opts.maxMessage ?? 65536;
  const slots = opts.batch ?? 64;
  // allocUnsafeSlow: its own ArrayBuffer (not the shared pool); pages are touched only as used.
  const buf = Buffer.allocUnsafeSlow(slot * slots);
  const meta = new Int32Array(slots * STRIDE);
  const at = (i: number, f: number) => meta[i * STRIDE + f];
  const batch: Batch & { count: number } = {
    count: 0,
    data(i) {
      if (!(i >= 0 && i < batch.count)) throw new RangeError(`datagram ${i} not in this batch`);
      return buf.subarray(at(i, 0), at(i, 0) + at(i, 1));
    },
    port: (i) => at(i, 2) >>> 0,
    groups: (i) => at(i, 3) >>> 0,
    uid: (i) => at(i, 4),
    gid: (i) => at(i, 5),
    pid: (i) => at(i, 6),
    truncated: (i) => (at(i, 7) > at(i, 1) ? at(i, 7) : 0),
    area: buf,
    offset: (i) => at(i, 0),
    length: (i) => at(i, 1),
  };
  const onError = opts.onError ?? defaultOnError;
  let closed = false;
  const onReadable = (count: number, overrun: number, err: number) => {
    if (overrun) reportOverrun(opts);
    if (count > 0 && !closed) {
      batch.count = count;
      try { opts.onBatch(batch); } finally { batch.count = 0; }
    }
    if (err && !closed) onError(nlError(err, 'recvmmsg'));
  };
  try {
    nat.startRecv(h, buf, slot, meta, onReadable);
    if (opts.busyPollUs) nat.busyPoll!(h, opts.busyPollUs);  // checked by checkBusyPoll
  } catch (e) {
    nat.close(h);
    throw e;
  }
  const one = new Int32Array(1);
  return {
    port: nat.localPort(h),
    backend: 'native',
    credentials: !!opts.credentials,
    recvLen: slot,
    send: (data, port, groups = 0) => nat.send(h, data, 0, data.length, port >>> 0, groups >>> 0),
    sendMany(data, spans, count = spans.length >> 2, results) {
      const res = results ?? (count <= 1 ? one : new Int32Array(count));
      return nat.sendMany(h, data, spans, count, res);
    },
    ...(typeof nat.sendManyHeld === 'function' && {
      sendManyHeld: (data: Uint8Array, spans: Int32Array, count: number, results: Int32Array, inodes: Int32Array, after?: Int32Array) =>
        nat.sendManyHeld!(h, data, spans, count, results, inodes, opts.protocol, after),
    }),
    addMembership: (g) => membership(nat, h, SockOpt.NETLINK_ADD_MEMBERSHIP, g),
    dropMembership: (g) => membership(nat, h, SockOpt.NETLINK_DROP_MEMBERSHIP, g),
    setOption: (level, name, value) => (closed ? -E.EBADF : nat.setInt(h, level, name, value)),
    busyPollUs: opts.busyPollUs ?? 0,
    busyPolled: () => nat.busyPolled?.(h) ?? 0,
    close() { closed = true; nat.close(h); },
    ref: () => nat.ref(h, 1),
    unref: () => nat.ref(h, 0),
  };
}

function membership(nat: Native, h: NativeHandle, opt: number, group: number): void {
  const r = nat.setInt(h, SockOpt.SOL_NETLINK, opt, group);
  if (r !== 0) {
    const what = opt === SockOpt.NETLINK_ADD_MEMBERSHIP ? 'add' : 'drop';
    throw nlError(r, 'setsockopt', `${what} membership of group ${group}: ${errnoName(r)}`);
  }
}

/** Normalises an error from either backend (npm's errno is positive, ours negative). */
function asNlError(e: unknown): NlError {
  const err = e as Partial<NlError> & Error;
  if (typeof err?.code === 'string' && typeof err.errno === 'number') {
    err.errno = -Math.abs(err.errno);
    return err as NlError;
  }
  return err as NlError;
}

type NpmRaw = import('netlink').RawNetlinkSocket;

function openNpm(opts: OpenOptions): NlSocket {
  // Required lazily: the package loads its own addon, which a bundle cannot always reach.
  const { RawNetlinkSocket } = require('netlink') as typeof import('netlink');
  let raw: NpmRaw;
  try {
    raw = new RawNetlinkSocket(opts.protocol, {
      localPort: opts.port ?? 0,  // 0: kernel autobind (the package's own default guesses ports)
      localGroups: opts.groups ?? 0,
      recvBufferSize: opts.rcvbuf ?? 0,
      sendBufferSize: opts.sndbuf ?? 0,
    });
  } catch (e) {
    throw asNlError(e);
  }
  const onError = opts.onError ?? defaultOnError;
  let closed = false;
  raw.on('message', (msg, rinfo) => deliver(msg, rinfo.port, rinfo.groups, 0));
  raw.on('truncatedMessage', (msg, rinfo) => deliver(msg, rinfo.port, rinfo.groups, rinfo.truncated ?? 0));
  raw.on('error', (e) => {
    const err = asNlError(e);
    if (err.code === 'ENOBUFS') reportOverrun(opts);
    else onError(err);
  });
  function deliver(msg: Buffer, port: number, groups: number, truncated: number) {
    if (closed) return;
    const batch: Batch = {
      count: 1,
      data: () => msg, port: () => port >>> 0, groups: () => groups >>> 0,
      uid: () => -1, gid: () => -1, pid: () => -1, truncated: () => truncated,
    };
    opts.onBatch(batch);
  }
  const send = (data: Uint8Array, port: number, groups = 0): number => {
    if (closed) return -E.EBADF;
    raw.send(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { port: port >>> 0, groups: groups >>> 0 },
      (e) => {
        if (!e || closed) return;
        const err = asNlError(e);
        if (groups && err.code === 'ECONNREFUSED') return;  // delivered to the group; see send()
        if (opts.onSendError) opts.onSendError(err.errno, port >>> 0, groups >>> 0);
        else onError(err);
      });
    return 0;
  };
  return {
    port: raw.address().port >>> 0,
    backend: 'npm',
    credentials: false,
    recvLen: 65536, // the package peeks each datagram's length and reads it whole: any length
    send,
    sendMany: (data, spans, count = spans.length >> 2, results) => sendEach(send, data, spans, count, results),
    addMembership: (g) => npmCall(() => raw.addMembership(g)),
    dropMembership: (g) => npmCall(() => raw.dropMembership(g)),
    setOption: () => -E.EOPNOTSUPP,
    close() { if (!closed) { closed = true; raw.close(); } },
    ref: () => raw.ref(),
    unref: () => raw.unref(),
  };
}

function npmCall(fn: () => void): void {
  try { fn(); } catch (e) { throw asNlError(e); }
}
