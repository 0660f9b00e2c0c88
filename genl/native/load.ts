// Finds and loads the native addons (built on `npm install` by genl/native/build.js):
// accelnl_sock (netlink sockets) and accelnl_shm (mapped BO memory, in shm/).
// Search order: $ACCELNL_NATIVE / $ACCELNL_SHM (exact file), then places relative to this file only: its own
// build/ dir (run from source), genl/native/build/ of the package when this file is bundled into
// dist/ (the CLI and the library), and the .node copied beside a bundle. Never the cwd: a process
// started elsewhere would silently lose credentials (and so admin ops) or load a stranger's build.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** Opaque socket handle (a Node-API external). */
export type NativeHandle = { readonly __nativeHandle: unique symbol };

/** The addon's functions; see nlsock.c for the contract of each. */
export interface Native {
  open(protocol: number, port: number, groups: number, passcred: number): NativeHandle;
  localPort(h: NativeHandle): number;
  /** Returns the number of slots (datagrams per wake-up). */
  startRecv(h: NativeHandle, buf: Uint8Array, slot: number, meta: Int32Array,
    cb: (count: number, overrun: number, err: number) => void): number;
  stopRecv(h: NativeHandle): void;
  close(h: NativeHandle): void;
  ref(h: NativeHandle, on: number): void;
  send(h: NativeHandle, data: Uint8Array, offset: number, length: number, port: number, groups: number): number;
  sendMany(h: NativeHandle, data: Uint8Array, spans: Int32Array, count: number, results: Int32Array): number;
  /**
   * sendMany after a sock_diag read of `protocol`'s sockets in the same call: unicast span i with
   * inodes[i] != 0 is sent only if its port's socket has that inode, else results[i] = -ESTALE.
   * With `after`, read again once sent: after[i] = the inode on the port of a checked, delivered
   * span then (0: none), inodes[i] for the others (an addon built before `after` leaves it as is).
   * Absent from addons built before it.
   */
  sendManyHeld?(h: NativeHandle, data: Uint8Array, spans: Int32Array, count: number, results: Int32Array,
    inodes: Int32Array, protocol: number, after?: Int32Array): number;
  /**
   * After each batch, keep reading for up to `usec` µs (0..constants.MAX_BUSY_US) before sleeping
   * again: 0, or -EINVAL out of range. Absent from addons built before it.
   */
  busyPoll?(h: NativeHandle, usec: number): number;
  /** Batches read while busy polling. Absent from addons built before it. */
  busyPolled?(h: NativeHandle): number;
  setInt(h: NativeHandle, level: number, name: number, value: number): number;
  getInt(h: NativeHandle, level: number, name: number): number;
  /**
   * A blocking request/dump round trip on a per-process socket of `protocol` (e.g. sock_diag):
   * every reply datagram up to NLMSG_DONE or the first NLMSG_ERROR for the request's seq.
   * Throws (code ETIMEDOUT after 1 s of silence).
   */
  dumpSync(protocol: number, request: Uint8Array): Buffer;
  constants: Record<string, number>;
}

/** The shared-memory addon's functions; see shm/shm.cc for the contract of each. */
export interface Shm {
  /** A new sealed memfd of `size` bytes (its size can never change) and its mapping. */
  create(size: number): { fd: number; mem: SharedArrayBuffer };
  /** Map a BO's memfd; throws EINVAL unless it is exactly `size` bytes and sealed against shrinking. */
  map(fd: number, size: number): SharedArrayBuffer;
  /**
   * Drop the memfd behind a buffer from create() or map() now (its range becomes fresh anonymous
   * memory until the buffer is collected): 0, or -EINVAL for a buffer the addon did not map.
   */
  release(mem: SharedArrayBuffer): number;
  /** Give a memfd's pages back (a hole over [0, size), size kept): 0 or -errno. */
  punch(fd: number, size: number): number;
  /** F_GET_SEALS, or -errno. */
  seals(fd: number): number;
  /** One byte with `fd` attached (SCM_RIGHTS), non-blocking: 0 or -errno. */
  sendFd(sock: number, fd: number): number;
  /** A listening Unix stream socket bound to exactly `name` (leading NUL: abstract). Throws. */
  listen(name: string): number;
  /** A non-blocking Unix stream socket connected to exactly `name`. Throws. */
  connect(name: string): number;
  /** Bytes sent (at most 256), or -errno. */
  write(fd: number, data: Uint8Array): number;
  /** The descriptor that came with the next byte; -EAGAIN, -ENOMSG (none came), -ECONNRESET. */
  recvFd(sock: number): number;
  /** The uid at the other end of a Unix socket (SO_PEERCRED), or -errno. */
  peerUid(sock: number): number;
  close(fd: number): number;
}

export const ADDON_FILE = 'accelnl_sock.node';
export const SHM_FILE = 'accelnl_shm.node';
const PLATFORM = `${process.platform}-${process.arch}`;

export interface NativeStatus {
  native: Native | null;
  /** The file that loaded, or null. */
  file: string | null;
  /** Why nothing loaded (every path tried), or null. */
  error: string | null;
}

export interface ShmStatus { shm: Shm | null; file: string | null; error: string | null }

let cached: NativeStatus | undefined;
let cachedShm: ShmStatus | undefined;

/**
 * Where an addon may be: `build` is its build directory under genl/native ('' or 'shm/'), and
 * `prebuilt` its name under prebuilds/<platform>-<arch>/.
 */
function candidates(file: string, env: string | undefined, build: string, prebuilt: string): string[] {
  if (env) return [path.resolve(env)];  // explicit: no silent fallback to another build
  return [
    path.join(__dirname, build, 'build/Release', file),                  // genl/native/load.ts
    path.join(__dirname, '../genl/native', build, 'build/Release', file), // bundled into dist/
    path.join(__dirname, 'native', build, 'build/Release', file),        // bundled into genl/
    path.join(__dirname, file),                                          // copied beside a bundle
    // The package's prebuilt copy, when the install step did not build one (see bin/build.js).
    path.join(__dirname, '../prebuilds', PLATFORM, prebuilt),            // bundled into dist/
    path.join(__dirname, '../../prebuilds', PLATFORM, prebuilt),         // genl/native/load.ts
  ];
}

/**
 * The first of `files` that loads, or every reason none did. `flags`: dlopen's. RTLD_NOW binds
 * every symbol at load, so an addon that cannot run here fails to load (and the next is tried)
 * instead of failing at its first call. The socket addon does without it: it calls Node-API 8 and
 * libuv's poll and handle functions (uv_poll_*, uv_close, uv_ref...), which every Node it supports
 * (>= 20) exports, and a libc too old for it fails at load either way (symbol versions are checked
 * then). A Node lacking one of them would stop at the first call instead. Eager binding cost
 * every command 0.7-0.8 ms.
 */
function dlopenFirst<T>(files: string[], flags: number): { exports: T; file: string } | { error: string } {
  const tried: string[] = [];
  for (const file of files) {
    if (!fs.existsSync(file)) { tried.push(`${file}: missing`); continue; }
    try {
      const mod = { exports: {} as T };
      // dlopen rather than require: bundlers and jest's module registry leave it alone.
      process.dlopen(mod, file, flags);
      return { exports: mod.exports, file };
    } catch (e) {
      tried.push(`${file}: ${(e as Error).message}`);
    }
  }
  return { error: tried.join('; ') };
}

/** Loads the socket addon once; never throws. */
export function loadNative(): NativeStatus {
  if (cached) return cached;
  const r = dlopenFirst<Native>(candidates(ADDON_FILE, process.env.ACCELNL_NATIVE, '', ADDON_FILE), os.constants.dlopen.RTLD_LAZY);
  return (cached = 'file' in r ? { native: r.exports, file: r.file, error: null }
    : { native: null, file: null, error: `${ADDON_FILE} not loaded (${r.error})` });
}

/**
 * The prebuilt shm addon's name: it is built against V8's API, so a prebuild serves only the
 * Node ABI it was made for (process.versions.modules).
 */
export const SHM_PREBUILT = `node-abi${process.versions.modules}/${SHM_FILE}`;

/** Loads the shared-memory addon once; never throws. */
export function loadShm(): ShmStatus {
  if (cachedShm) return cachedShm;
  // RTLD_NOW: the shm addon uses V8's C++ API, which differs between Node versions.
  const r = dlopenFirst<Shm>(candidates(SHM_FILE, process.env.ACCELNL_SHM, 'shm', SHM_PREBUILT), os.constants.dlopen.RTLD_NOW);
  return (cachedShm = 'file' in r ? { shm: r.exports, file: r.file, error: null }
    : { shm: null, file: null, error: `${SHM_FILE} not loaded (${r.error})` });
}
