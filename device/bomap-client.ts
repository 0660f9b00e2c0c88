// Mapped BOs (bo-map), the client's side: one request, then the BO's memory as a Uint8Array that
// the daemon's GEMM engine reads and writes in place. No bo-write, no bo-read, no copy.
//
//   const bytes = await mapBo(ac, handle);
//   new Float32Array(bytes.buffer).set(a);     // the BO holds A now
//
// The mapping stays valid after the BO is destroyed or the daemon is gone, and never faults. A
// destroyed BO's pages went back with it: the mapping reads zeros, and what this process writes
// there afterwards is its own memory (the daemon never gives a mapped BO's memory to another BO).
import { constants } from 'os';
import { EAGAIN } from '../attrs/errno';
import { loadShm } from '../genl/native/load';
import type { AccelClient } from './client-api';
import { TOKENS_PER_BO, TOKEN_MS } from './bomap';
import { CMD } from './gen/accel';

export interface MapOptions {
  /** How long to wait for the daemon to hand over the descriptor (default 5000 ms). */
  timeoutMs?: number;
}

/** Whether this process can map BOs (the shm addon loaded), from which file, and why not. */
export function shmStatus(): { loaded: boolean; file: string | null; error: string | null } {
  const s = loadShm();
  return { loaded: s.shm !== null, file: s.file, error: s.error };
}

/** An error of mapping itself (not of the bo-map request, which rejects with its errno). */
export class MapError extends Error {
  constructor(message: string, readonly code: string) { super(message); }
}

/**
 * Map BO `handle` (one of this client's): its bytes, shared with the daemon. Rejects with the
 * request's errno and extack (ENOENT: not ours; EBUSY: a job uses it; EOPNOTSUPP: the daemon
 * cannot map), or a MapError (the shm addon is missing here, or the fetch failed).
 */
export async function mapBo(ac: AccelClient, handle: number, o: MapOptions = {}): Promise<Uint8Array> {
  const { shm, error } = loadShm();
  if (!shm) throw new MapError(`cannot map BOs in this process: ${error}`, 'EOPNOTSUPP');
  const [r] = await ac.do(CMD.BO_MAP, { boHandle: handle });
  if (!r?.mapPath || !r.mapToken || r.boSize === undefined) throw new MapError('bo-map reply without map-path, map-token or bo-size', 'EPROTO');
  const fd = await fetchFd(r.mapPath, r.mapToken, o.timeoutMs ?? 5000);
  try {
    return new Uint8Array(shm.map(fd, Number(r.boSize)));
  } finally {
    shm.close(fd);
  }
}

/** Write the token to the daemon's map socket and take the descriptor it answers with. */
async function fetchFd(path: string, token: Uint8Array, timeoutMs: number): Promise<number> {
  const shm = loadShm().shm!;
  let sock: number;
  try {
    sock = shm.connect(path.startsWith('@') ? `\0${path.slice(1)}` : path);
  } catch (e) {
    throw new MapError(`cannot reach the daemon's map socket ${path}: ${(e as Error).message}`, (e as NodeJS.ErrnoException).code ?? 'EIO');
  }
  try {
    if (shm.write(sock, token) !== token.length) throw new MapError(`cannot send the map token to ${path}`, 'EIO');
    const start = Date.now();
    // The daemon answers within a turn of its event loop, usually in well under a millisecond:
    // poll, yielding to this process's event loop each time (a daemon in this process must run),
    // then back off to timers after 2 ms.
    for (let wait = 0; ; wait = Date.now() - start < 2 ? 0 : Math.min(wait ? wait * 2 : 1, 50)) {
      const fd = shm.recvFd(sock);
      if (fd >= 0) return fd;
      // A refused token is EACCES; a connection closed unanswered (this user's fetches at their
      // limit, or too slow) is worth another try, so EAGAIN.
      if (fd === -constants.errno.ENOMSG) {
        throw new MapError(`the daemon refused the map token (used, expired after ${TOKEN_MS / 1000} s, pushed out by ${TOKENS_PER_BO} newer bo-maps of the same BO, fetched by another user, or its BO is gone)`, 'EACCES');
      }
      if (fd !== -EAGAIN) {
        throw new MapError(`the daemon's map socket closed without an answer (errno ${-fd}: too many fetches of this user at once, or too slow); try again`, 'EAGAIN');
      }
      if (Date.now() - start >= timeoutMs) throw new MapError(`no answer from the daemon's map socket within ${timeoutMs} ms`, 'ETIMEDOUT');
      await new Promise((res) => (wait ? setTimeout(res, wait) : setImmediate(res)));
    }
  } finally {
    shm.close(sock);
  }
}
