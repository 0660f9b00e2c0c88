// Who a datagram comes from: a client is a SOCKET, not a port number. Port ids are recycled (a
// process's first socket gets its pid as its port, and anyone may bind a free number), so every
// per-client resource (buffer objects, jobs, dumps, queued replies, unicast subscriptions, limits)
// hangs off a SocketClient object, and the table below decides when a port's datagrams stop being that
// client's:
//
//  - identity: the kernel's sock_diag view of the port (inode and cookie, genl/sockdiag.ts), taken
//    at first sight, plus the SCM_CREDENTIALS uid and pid of the datagram;
//  - a datagram with the uid and pid the client was last seen with is the client's (no check);
//  - any other (first sight, another pid or uid) is checked: the kernel's table says which socket
//    holds the port now, and /proc/<sender pid>/fd whether the sender holds that socket. A sender
//    that does not hold it sent from a socket that closed before the datagram was read: the
//    datagram is served detached (nothing created, nothing answered) and the port's client, the
//    successor's, keeps what it has;
//  - a successor on a recycled port is found by its inode/cookie differing, checked when the pid
//    or uid changes, before a handler touches client resources (ctx.owner()), by the server's
//    flush right before it sends anything to a client seen in an earlier callback (genl/outbox.ts
//    recheck), and by the periodic sweep.
//
// Dropping a client runs the onGone hooks, which free what it held. The window this leaves is
// described in docs/transport.md ("Client identity").
import * as fs from 'fs';
import { type NetlinkSocket, type SocketTable, sameSocket } from './sockdiag';
import { MAX_RECVMSG_LEN } from './sockopt';

export interface SocketClient {
  /** Unique for the server's lifetime, never reused: the key resources are filed under. */
  readonly id: number;
  readonly port: number;
  /** SCM_CREDENTIALS of the datagram that made it (-1 when the transport cannot tell). */
  readonly uid: number;
  readonly gid: number;
  pid: number;
  /** The socket as the kernel listed it when first checked; undefined while no table was readable. */
  sock: NetlinkSocket | undefined;
  /**
   * The table was readable at first sight and did not list the port: the socket had closed before
   * the daemon read its first datagram. Such a client is never filed under the port (the same
   * process's next socket may get it: the kernel gives a process its pid as port again), and its
   * datagram runs detached (genl/dispatch.ts).
   */
  closedAtFirstSight: boolean;
  /** Dropped: its port went away or changed hands. Resources found under it are stale. */
  gone: boolean;
  /** NETLINK_CAP_ACK as sock_diag reported it (undefined: unknown). */
  capAck: boolean | undefined;
  /** NETLINK_EXT_ACK as the client's in-band control message said (undefined: not said). */
  extAck: boolean | undefined;
  /**
   * The largest datagram the client said it reads (genl/sockopt.ts ACCELNL_OPT_MAX_RECVMSG_LEN);
   * 0: not said. Dump datagrams are filled up to it, capped (maxRecvLen); an error that echoes the
   * request and would not fit in it goes capped instead (genl/outcome.ts ackFor).
   */
  recvLen: number;
  /** Answers to its requests may share datagrams (ACCELNL_OPT_JOIN_ANSWERS; genl/outbox.ts pushSpan). */
  joinAnswers: boolean;
}

/** The kernel's max_recvmsg_len for `c`: the length it said it reads, capped at 32448 (0: not said). */
export const maxRecvLen = (c: SocketClient): number => Math.min(c.recvLen, MAX_RECVMSG_LEN);

/** The kernel's current table of sockets on the server's protocol, or undefined when unreadable. */
export type SocketSource = () => SocketTable | undefined;

export interface ClientTable {
  readonly byPort: Map<number, SocketClient>;
  nextId: number;
  source: SocketSource | undefined;
  /** The table for this event-loop turn: undefined = not taken yet, null = unreadable. */
  turn: SocketTable | null | undefined;
  /** Called once per dropped client, to free what it holds. */
  readonly onGone: ((c: SocketClient) => void)[];
  /** sock_diag dumps taken (for stats). */
  queries: number;
  /** Whether process `pid` holds the socket with inode `inode` (undefined: cannot tell). */
  holds?: (pid: number, inode: number) => boolean | undefined;
  /** Datagrams found to come from a socket that had closed (served detached, answered to nobody). */
  stale: number;
  /**
   * Shown every table read (undefined: unreadable), in the order read: the outbox settles with it
   * what its checked sends delivered before (genl/outbox.ts settleWith).
   */
  onTable?: (tab: SocketTable | undefined) => void;
}

/** /proc/PID/fd: whether that process holds socket `inode` (undefined when it cannot be read). */
export function procHolds(pid: number, inode: number): boolean | undefined {
  let fds: string[];
  try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch { return undefined; }
  const want = `socket:[${inode}]`;
  for (const fd of fds) {
    try { if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === want) return true; } catch { /* closed meanwhile */ }
  }
  return false;
}

export function newClientTable(source?: SocketSource): ClientTable {
  return { byPort: new Map(), nextId: 1, source, turn: undefined, onGone: [], queries: 0, stale: 0 };
}

/**
 * The kernel's table for this callback: one query per callback (a whole received batch, a pump, an
 * emulator tick) however many ports are checked. It is forgotten as soon as the callback returns
 * (a microtask), so nothing that runs later can act on a table older than its own callback.
 */
function table(t: ClientTable): SocketTable | undefined {
  if (!t.source) return undefined;
  if (t.turn === undefined) {
    t.turn = read(t) ?? null;
    queueMicrotask(() => { t.turn = undefined; });
  }
  return t.turn ?? undefined;
}

/**
 * The socket on `port` now, by this turn's table. A port missing from a dump is asked about once
 * more: the kernel walks its socket hash in several passes for a long dump, and a socket can be
 * left out while others come and go. Missing twice is missing.
 */
function holder(t: ClientTable, port: number): NetlinkSocket | undefined {
  const tab = table(t);
  const s = tab?.get(port);
  if (s || !tab || !t.source) return s;
  const again = read(t);
  if (!again) return undefined;
  t.turn = again;  // this turn's table from now on: it is the newer one
  return again.get(port);
}

/**
 * A table read now, whatever this turn has (it becomes this turn's: it is the newest): for the
 * outbox, to settle what its checked sends delivered (genl/outbox.ts settleSends).
 */
export function freshTable(t: ClientTable): SocketTable | undefined {
  if (!t.source) return undefined;
  const tab = read(t);
  if (tab && t.turn !== undefined) t.turn = tab;
  return tab;
}

/** One query of the source; every table read goes through here, and is shown to onTable. */
function read(t: ClientTable): SocketTable | undefined {
  t.queries++;
  const tab = t.source!();
  t.onTable?.(tab);
  return tab;
}

/** Forget this turn's table (the next check queries again): after something was seen to change. */
export function staleTable(t: ClientTable): void {
  if (t.turn !== undefined) t.turn = undefined;
}

function create(t: ClientTable, port: number, uid: number, gid: number, pid: number): SocketClient {
  const tab = table(t);
  const sock = tab && holder(t, port);
  // The sending process does not hold the socket on the port: the datagram is a closed socket's,
  // read after another process bound its port. Nothing is filed under the port for it.
  if (sock && pid >= 0 && t.holds?.(pid, sock.inode) === false) return staleSender(t, port, uid, gid, pid);
  const closed = !!tab && !sock;
  const c: SocketClient = {
    id: t.nextId++, port, uid, gid, pid, sock, gone: closed, closedAtFirstSight: closed,
    capAck: sock?.flags === undefined ? undefined : (sock.flags & CAP_ACK_FLAG) !== 0, extAck: undefined, recvLen: 0, joinAnswers: false,
  };
  if (!closed) t.byPort.set(port, c);
  return c;
}

/** NDIAG_FLAG_CAP_ACK. */
const CAP_ACK_FLAG = 0x20;

/**
 * The client a datagram from `port` with these credentials belongs to: the known one when the uid
 * and pid are the ones it was last seen with (no check: the common case costs nothing); otherwise
 * the kernel's table and /proc/<pid>/fd decide. When the socket on the port is still the known
 * client's, a sender that does not hold it sent the datagram from a closed socket that had the
 * port before (read late): it is served detached, and the known client keeps its resources. A
 * sender that does hold it shares the socket (a child, a passed descriptor). When the port changed
 * hands, the old client is dropped and the new one is checked the same way at creation.
 */
export function clientOf(t: ClientTable, port: number, uid: number, gid: number, pid: number): SocketClient {
  const c = t.byPort.get(port);
  if (c && c.uid === uid && (c.pid === pid || pid < 0)) return c;
  if (c && present(t, c)) {
    if (pid >= 0 && c.sock && t.holds?.(pid, c.sock.inode) === false) return staleSender(t, port, uid, gid, pid);
    if (c.uid === uid) { c.pid = pid; return c; } // a child or a thread group sharing the socket
    drop(t, c); // another user's process on the same socket: a client of its own, as a new socket would be
  }
  return create(t, port, uid, gid, pid);
}

/**
 * Whether `c` is still the socket that holds its port, by the kernel's table for this turn. A
 * client found gone or replaced is dropped. Unknown (no table) counts as present.
 */
export function present(t: ClientTable, c: SocketClient): boolean {
  if (c.gone) return false;
  const tab = table(t);
  if (!tab) return true;
  const s = holder(t, c.port);
  if (!s) { drop(t, c); return false; }
  if (!c.sock) {
    c.sock = s; // the first readable table since it was seen: adopt it
    return true;
  }
  if (!sameSocket(c.sock, s)) { drop(t, c); return false; }
  c.sock = s; // flags may change (NETLINK_CAP_ACK set later)
  if (s.flags !== undefined) c.capAck = (s.flags & CAP_ACK_FLAG) !== 0;
  return true;
}

/**
 * The client that now owns a request from `c`'s port with these credentials: `c` when it is still
 * the socket on the port, else its successor (new, empty).
 */
export function verified(t: ClientTable, c: SocketClient, senderPid = -1): SocketClient {
  if (present(t, c)) return c;
  const tab = table(t);
  const now = tab && holder(t, c.port);
  // Nobody holds the port: the socket that sent this datagram has closed, and an answer could only
  // reach whoever binds the port next. Or the process that sent it does not hold the socket now on
  // the port: the datagram is the closed socket's, read late. Either way it is served detached.
  if ((tab && !now) || (now && senderPid >= 0 && t.holds?.(senderPid, now.inode) === false)) return detached(t, c);
  return clientOf(t, c.port, c.uid, c.gid, senderPid >= 0 ? senderPid : c.pid);
}

/**
 * A stand-in for a client whose socket had closed when its datagram was read: the request runs
 * (as the kernel runs what a socket sent before it closed) on no resources, and nothing is answered.
 */
export function detached(t: ClientTable, c: SocketClient): SocketClient {
  return staleSender(t, c.port, c.uid, c.gid, c.pid);
}

function staleSender(t: ClientTable, port: number, uid: number, gid: number, pid: number): SocketClient {
  t.stale++;
  return {
    id: t.nextId++, port, uid, gid, pid, sock: undefined, gone: true, closedAtFirstSight: false,
    capAck: undefined, extAck: undefined, recvLen: 0, joinAnswers: false,
  };
}

/** Drop a client: it is gone, its hooks free what it held. Idempotent. */
export function drop(t: ClientTable, c: SocketClient): void {
  if (c.gone) return;
  c.gone = true;
  if (t.byPort.get(c.port) === c) t.byPort.delete(c.port);
  for (const f of t.onGone) f(c);
}

/** A send to the port failed with ECONNREFUSED: nobody holds it now. */
export function portClosed(t: ClientTable, port: number): void {
  const c = t.byPort.get(port);
  if (c) drop(t, c);
}

/** Check every client against a fresh table (the periodic sweep). Returns how many were dropped. */
export function sweepClients(t: ClientTable): number {
  staleTable(t);
  let n = 0;
  for (const c of [...t.byPort.values()]) if (!present(t, c)) n++;
  return n;
}
