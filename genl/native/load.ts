// Finds and loads the accelnl_sock addon (built on `npm install` by genl/native/build.js).
// Search order: $ACCELNL_NATIVE (exact file), then places relative to this file only: its own
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

export const ADDON_FILE = 'accelnl_sock.node';
const PLATFORM = `${process.platform}-${process.arch}`;

export interface NativeStatus {
  native: Native | null;
  /** The file that loaded, or null. */
  file: string | null;
  /** Why nothing loaded (every path tried), or null. */
  error: string | null;
}

let cached: NativeStatus | undefined;

function candidates(): string[] {
  const env = process.env.ACCELNL_NATIVE;
  if (env) return [path.resolve(env)];  // explicit: no silent fallback to another build
  return [
    path.join(__dirname, 'build/Release', ADDON_FILE),                   // genl/native/load.ts
    path.join(__dirname, '../genl/native/build/Release', ADDON_FILE),    // bundled into dist/
    path.join(__dirname, 'native/build/Release', ADDON_FILE),            // bundled into genl/
    path.join(__dirname, ADDON_FILE),                                    // copied beside a bundle
    // The package's prebuilt copy, when the install step did not build one (see bin/build.js).
    path.join(__dirname, '../prebuilds', PLATFORM, ADDON_FILE),          // bundled into dist/
    path.join(__dirname, '../../prebuilds', PLATFORM, ADDON_FILE),       // genl/native/load.ts
  ];
}

/** Loads the addon once; never throws. */
export function loadNative(): NativeStatus {
  if (cached) return cached;
  const tried: string[] = [];
  for (const file of candidates()) {
    if (!fs.existsSync(file)) { tried.push(`${file}: missing`); continue; }
    try {
      const mod = { exports: {} as Native };
      // dlopen rather than require: bundlers and jest's module registry leave it alone.
      process.dlopen(mod, file, os.constants.dlopen.RTLD_NOW);
      return (cached = { native: mod.exports, file, error: null });
    } catch (e) {
      tried.push(`${file}: ${(e as Error).message}`);
    }
  }
  return (cached = { native: null, file: null, error: `accelnl_sock.node not loaded (${tried.join('; ')})` });
}
