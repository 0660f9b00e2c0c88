// Mapped BOs (bo-map), the daemon's side: the Unix socket that hands a shared BO's memfd to its
// owner. Netlink cannot carry a file descriptor, so bo-map answers with a one-time token and the
// name of this socket; the client writes the token there and gets the descriptor (SCM_RIGHTS).
//
// Who may map what: the token goes only to the BO's owner (the bo-map reply is unicast to the
// socket that owns the BO), it is 16 random bytes, it is good once and for 10 s, and it names
// one BO, for a process of the user who asked (or root). The socket's name is random per daemon (abstract namespace, so no file and no stale
// path), so no one can bind it before the daemon and collect tokens. The memfd is sealed against
// shrinking and growing: the owner cannot truncate it under the daemon (SIGBUS). Whoever holds
// the token can map that one BO, as whoever holds a DRM mmap offset and the open file can.
import { randomBytes } from 'crypto';
import * as net from 'net';
import { type Bo, type Engine, JobError, countDown, shareBo } from './jobs';
import { EADDRINUSE } from '../attrs/errno';

/** How long a token may wait for its fetch, and how many may wait per BO (the oldest goes first). */
export const TOKEN_MS = 10_000;
export const TOKENS_PER_BO = 64;
export const TOKEN_LEN = 16;
/**
 * A fetch is one short exchange: each connection is closed FETCH_MS after it was accepted, whatever
 * arrives meanwhile. At most FETCHES_PER_UID are open per uid (root aside), and MAX_FETCHES in all,
 * so one user's idle or dripping connections cannot keep anyone else from fetching.
 */
export const FETCH_MS = 1000;
export const FETCHES_PER_UID = 16;
export const MAX_FETCHES = 1024;

/** An unfetched token: its BO, until when, and the uid that asked (the only one, with root, that may fetch). */
interface Offer { bo: Bo; expires: number; uid: number }

export interface BoMaps {
  readonly e: Engine;
  /** The socket's abstract name, as map-path gives it ('@' for the leading NUL). */
  readonly path: string;
  server: net.Server | undefined;
  /** Unfetched offers by token (hex), oldest first. */
  readonly offers: Map<string, Offer>;
  /** The unfetched tokens of each BO (by BO id), oldest first: at most TOKENS_PER_BO. */
  readonly byBo: Map<number, string[]>;
  /** Map-socket connections open now, per peer uid. */
  readonly fetching: Map<number, number>;
  /** Descriptors handed over, fetches refused, and connections turned away (over a uid's share), since start. */
  sent: number;
  refused: number;
  turnedAway: number;
}

export const newBoMaps = (e: Engine): BoMaps => ({
  e, path: `@accelnl-bo-${randomBytes(8).toString('hex')}`, server: undefined, offers: new Map(), byBo: new Map(), fetching: new Map(), sent: 0, refused: 0, turnedAway: 0,
});

/**
 * Share BO `b` (device/jobs.ts shareBo) and offer its memfd once, to a process of user `uid` (the
 * owner's; root may fetch too): the socket's name and the token that fetches it. Throws JobError
 * (EOPNOTSUPP, EBUSY, EMFILE, ENOMEM from shareBo; EADDRINUSE when the socket cannot be opened).
 * Tokens are bounded per BO, not per daemon, so one client asking again and again never keeps
 * another from mapping.
 */
export function offerMap(m: BoMaps, b: Bo, uid: number): { path: string; token: Uint8Array } {
  shareBo(m.e, b);
  const now = Date.now();
  for (const [k, o] of m.offers) {
    if (o.expires > now) break; // offers are kept in the order made, so the rest are younger
    forget(m, k);
  }
  listen(m);
  const token = randomBytes(TOKEN_LEN);
  const key = token.toString('hex');
  let mine = m.byBo.get(b.id);
  if (!mine) m.byBo.set(b.id, (mine = []));
  if (mine.length >= TOKENS_PER_BO) forget(m, mine[0]);
  mine.push(key);
  m.offers.set(key, { bo: b, expires: now + TOKEN_MS, uid });
  return { path: m.path, token };
}

/** Drop an offer (fetched, expired, or pushed out by a newer one for its BO). */
function forget(m: BoMaps, key: string): void {
  const o = m.offers.get(key);
  if (!o) return;
  m.offers.delete(key);
  const mine = m.byBo.get(o.bo.id);
  const i = mine ? mine.indexOf(key) : -1;
  if (i >= 0) mine!.splice(i, 1);
  if (mine && !mine.length) m.byBo.delete(o.bo.id);
}

/** Stop listening; unfetched tokens are void. */
export function closeBoMaps(m: BoMaps): void {
  m.server?.close();
  m.server = undefined;
  m.offers.clear();
  m.byBo.clear();
}

// Started on the first offer, so a daemon that never maps a BO never opens it.
function listen(m: BoMaps): void {
  if (m.server) return;
  let fd: number;
  try {
    fd = m.e.shm!.listen(`\0${m.path.slice(1)}`);
  } catch (e) {
    throw new JobError(EADDRINUSE, `cannot open the map socket ${m.path}: ${(e as Error).message}`);
  }
  const server = net.createServer((c) => answer(m, c));
  server.maxConnections = MAX_FETCHES;
  server.on('error', () => { /* accept failures: that fetch fails, the next may not */ });
  server.listen({ fd });
  server.unref();
  m.server = server;
}

/**
 * One fetch: read the token (the first TOKEN_LEN bytes, nothing more), send the descriptor or a
 * refusal byte, close. Reading stops at the token: bytes after it are never read, and the
 * connection is destroyed once the answer is out, or FETCH_MS after it was accepted. Never throws.
 */
function answer(m: BoMaps, c: net.Socket): void {
  // Node does not expose an accepted socket's descriptor; SO_PEERCRED and SCM_RIGHTS need it. The
  // handle's fd is there on Linux in every Node we support; without it, the fetch is turned away.
  const fd = (c as unknown as { _handle?: { fd?: number } })._handle?.fd;
  const uid = fd !== undefined && fd >= 0 ? m.e.shm!.peerUid(fd) : -1;
  const open = m.fetching.get(uid) ?? 0;
  if (uid < 0 || (uid !== 0 && open >= FETCHES_PER_UID)) {
    m.turnedAway++;
    c.destroy();
    return;
  }
  m.fetching.set(uid, open + 1);
  const deadline = setTimeout(() => c.destroy(), FETCH_MS);
  deadline.unref();
  c.on('close', () => {
    clearTimeout(deadline);
    countDown(m.fetching, uid, 1);
  });
  let got = Buffer.alloc(0);
  c.on('error', () => c.destroy());
  c.on('data', (d) => {
    got = Buffer.concat([got, d]);
    if (got.length < TOKEN_LEN) return;
    c.pause();
    c.removeAllListeners('data');
    const key = got.length === TOKEN_LEN ? got.toString('hex') : '';
    const o = m.offers.get(key);
    forget(m, key);
    const b = o && o.expires > Date.now() && (uid === o.uid || uid === 0) && m.e.bos.get(o.bo.id) === o.bo ? o.bo : undefined;
    if (b?.fd !== undefined && m.e.shm!.sendFd(fd!, b.fd) === 0) {
      m.sent++;
      c.destroy();
    } else {
      m.refused++;
      c.end(Buffer.from([1]), () => c.destroy()); // a byte without a descriptor: refused
    }
  });
}
