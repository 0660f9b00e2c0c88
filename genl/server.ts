// The family server: netlink_rcv_skb() + genl_rcv_msg() semantics over any NlSocket-like transport.
// Each wake-up's datagrams are handled in order and every reply, ACK and dump chunk is written into
// one output buffer, then sent with one sendMany.
import {
  type Extack, type View, type Writer, NL_VALIDATE, clearExtack, ensure, newExtack, newWriter, resetWriter, trim,
  validate, view,
} from '../attrs';
import { EAGAIN, EBUSY, ECONNREFUSED, EINVAL, EMSGSIZE, ENOBUFS, ENOENT, EOPNOTSUPP, EPERM, errnoName } from '../attrs/errno';
import { type AckOptions, DEFAULT_ACK_OPTIONS, writeAck, writeDone } from './ack';
import { GENL_HDRLEN, GENL_OP, NLMSG, NLMSG_GOODSIZE, NLMSG_HDRLEN, NLM_F } from './consts';
import { type SocketClient, type ClientTable, type SocketSource, clientOf, detached, newClientTable, portClosed, present, staleTable, verified } from './clients';
import type { DoCtx, DoHalf, DumpCtx, DumpHalf, Family, Op, Peer, Sender } from './family';
import { genlStart, msgAddFlags, msgEnd } from './message';
import { ownedCopy } from './owned';
import { type DumpResult, type Result, isResult, wireStatus } from './result';
import { NATIVE_FORMAT, type Subscriptions, forgetClient, newSubscriptions, subscribe, subscriberCounts, subscribersOf, unsubscribe } from './subscriptions';
import { ACCELNL_MSG_SOCKOPT, applySockopt, parseSockopt } from './sockopt';
import { type Registry, newRegistry } from './registry';

/** The part of a socket the server needs (genl/socket.ts NlSocket and the in-process hub both fit). */
export interface ServerSocket {
  readonly port: number;
  sendMany(data: Uint8Array, spans: Int32Array, count?: number, results?: Int32Array): number;
  /** sendMany that first checks, in the same native call, which socket holds each port (genl/socket.ts). */
  sendManyHeld?(data: Uint8Array, spans: Int32Array, count: number, results: Int32Array, inodes: Int32Array): number;
}

export interface ServerOptions {
  /**
   * Overrides of the ACK shape for every socket. Without them each client is answered as its
   * socket asked: capped when sock_diag shows NETLINK_CAP_ACK, extack TLVs unless its in-band
   * control message said NETLINK_EXT_ACK = 0 (docs/transport.md "ACK shape per client socket").
   */
  ack?: Partial<AckOptions>;
  /** Dump datagram size: the kernel's first chunk on a fresh socket is NLMSG_GOODSIZE (3776). */
  dumpChunk?: number;
  /** Who may run admin ops. Default: uid 0. Unknown credentials (-1) are never admin. */
  isAdmin?: (s: Sender) => boolean;
  /** Most datagrams queued for one port whose buffer is full before the oldest are dropped. */
  maxBacklog?: number;
  /** Most bytes queued for one port (default 1 MiB), and for all ports together (default 64 MiB). */
  maxBacklogBytes?: number;
  maxBacklogTotal?: number;
  /**
   * A port that accepts nothing for this long (default 30 s) loses its queue and its dump: a client
   * that stopped reading cannot hold server memory forever. Its subscriptions stay.
   */
  stallMs?: number;
  /** Dumps in progress across all ports (default 4096); more get EBUSY. One per port is the kernel's rule. */
  maxDumps?: number;
  /**
   * Put consecutive notifications for one destination in one datagram (default on). The kernel
   * sends one notification per datagram; every netlink client reads several messages per datagram.
   */
  batchEvents?: boolean;
  registry?: Registry;
  /** The kernel's table of sockets on the server's protocol (sock_diag): tells clients apart. */
  sockets?: SocketSource;
}

interface DumpState {
  client: SocketClient;
  ctx: DumpCtx;
  half: DumpHalf;
  /** 'more' while the handler has more; otherwise what DONE will carry. */
  status: DumpResult;
  gen: number;
  intr: boolean;
  limit: number;
  /** Offset of the open message and of the current chunk in the output writer. */
  msgAt: number;
  chunkAt: number;
}

export interface Counters {
  datagrams: number;
  messages: number;
  errors: number;
  /** Datagrams longer than the socket's maxMessage (answered EMSGSIZE when they asked for an answer). */
  truncated: number;
  /** Datagrams with bytes after the last whole message (nlmsg_len < 16 or past the end): ignored, as the kernel does. */
  malformed: number;
  dumps: number;
  sendFailures: number;
  /** Datagrams dropped from a full port's queue; the port is then sent NLMSG_OVERRUN. */
  dropped: number;
  /** NLMSG_OVERRUN markers delivered (each tells a client it missed messages). */
  overruns: number;
  /** Ports whose queue and dump were released after stallMs without progress. */
  stalled: number;
  /** Errors answered (NLMSG_ERROR or a failing NLMSG_DONE), by errno name. */
  rejected: Record<string, number>;
  /** Notifications a subscriber missed because its format's encoder threw (it got NLMSG_OVERRUN). */
  encodeFailed: number;
}

/** Messages waiting for one port whose receive buffer is full, oldest first. */
export interface Backlog {
  /** The socket the queued datagrams are for: they never go to another on the port. */
  client: SocketClient;
  q: Uint8Array[];
  bytes: number;
  /** Dropped since the port last took something: owed an NLMSG_OVERRUN. */
  dropped: number;
  /** Some of those were replies, ACKs or dump chunks (not only events, which the log keeps). */
  lostReplies: boolean;
  /** Retry backoff (ms), next retry time, and when the port last made progress. */
  delay: number;
  retryAt: number;
  since: number;
}

export interface Server {
  registry: Registry;
  opts: Required<Omit<ServerOptions, 'registry' | 'sockets'>>;
  /** Clients (sockets) by port; dropping one frees what it holds (dumps, queue, subscriptions, hooks). */
  clients: ClientTable;
  socket: ServerSocket | undefined;
  out: Writer;
  spans: Int32Array;
  nspans: number;
  /** Per span, the client it is meant for (undefined: a multicast group send). */
  spanClients: (SocketClient | undefined)[];
  /**
   * Some span goes to a client seen in an earlier callback (a dump chunk, a late async answer, a
   * unicast event): the flush checks every span's client against a table taken just before it sends.
   */
  later: boolean;
  results: Int32Array;
  /** Per span, the inode its client's socket must have for sendManyHeld (0: unchecked). */
  inodes: Int32Array;
  /**
   * The client table's source is the kernel's sock_diag for the socket's own protocol, so the
   * socket's sendManyHeld can do the last check (serve() sets it).
   */
  heldSends: boolean;
  ext: Extack;
  /** Dumps in progress, by client id (one per socket). */
  dumps: Map<number, DumpState>;
  /** Datagrams that met a full receive buffer, per port, retried later in order. */
  backlog: Map<number, Backlog>;
  /** Bytes queued in all backlogs. */
  backlogBytes: number;
  /** Unicast subscribers per group id and their formats, for clients that may not join USERSOCK groups. */
  subs: Subscriptions;
  /** Notification encoders that threw, by "family/format". */
  encodeErrors: Record<string, number>;
  encodeWarned: Set<string>;
  /** Notifications since the last send, each written once, then copied per destination (release). */
  ev: Writer;
  /** Datagrams of staged notifications, in the order of their first message (the order they go out). */
  staged: Staged[];
  /** Per destination (port, or 2^32 + groups), its datagram still open for more notifications. */
  openFor: Map<number, Staged>;
  /** Per family id, the destination of its last multicast notification. */
  lastGroup: Map<number, number>;
  /** When a flush last needed a big (> 4 MiB) buffer. */
  bigAt: number;
  counters: Counters;
  timer: NodeJS.Timeout | undefined;
  timerAt: number;
  scheduled: boolean;
}

export function createServer(o: ServerOptions = {}): Server {
  const srv: Server = {
    registry: o.registry ?? newRegistry(), clients: newClientTable(o.sockets),
    opts: {
      ack: o.ack ?? {}, dumpChunk: o.dumpChunk ?? NLMSG_GOODSIZE,
      isAdmin: o.isAdmin ?? ((s) => s.uid === 0), maxBacklog: o.maxBacklog ?? 1024, batchEvents: o.batchEvents ?? true,
      maxBacklogBytes: o.maxBacklogBytes ?? 1 << 20, maxBacklogTotal: o.maxBacklogTotal ?? 64 << 20,
      stallMs: o.stallMs ?? 30000, maxDumps: o.maxDumps ?? 4096,
    },
    socket: undefined, out: newWriter(1 << 16), spans: new Int32Array(4 * 256), nspans: 0, spanClients: [], later: false,
    results: new Int32Array(256), inodes: new Int32Array(256), heldSends: false, ext: newExtack(), dumps: new Map(), backlog: new Map(), backlogBytes: 0,
    subs: newSubscriptions(), encodeErrors: {}, encodeWarned: new Set(), ev: newWriter(1 << 16), staged: [], openFor: new Map(), lastGroup: new Map(), bigAt: 0, timer: undefined, timerAt: 0, scheduled: false,
    counters: {
      datagrams: 0, messages: 0, errors: 0, truncated: 0, malformed: 0, dumps: 0, sendFailures: 0, dropped: 0,
      overruns: 0, stalled: 0, rejected: {}, encodeFailed: 0,
    },
  };
  srv.clients.onGone.push((c) => clientGone(srv, c));
  return srv;
}

/** A client was dropped: its dump, its queued datagrams and its unicast subscriptions go with it. */
function clientGone(srv: Server, c: SocketClient): void {
  srv.dumps.delete(c.id);
  if (srv.backlog.get(c.port)?.client === c) unqueue(srv, c.port);
  forgetClient(srv.subs, c);
}

/** A datagram of notifications being assembled: its destination, its messages ([offset, length]* in ev). */
export interface Staged { port: number; groups: number; client: SocketClient | undefined; msgs: number[]; bytes: number }

/**
 * Queue the bytes [at, out.len) as one datagram to client `c` on its port. Notifications staged
 * before it go first, as they happened first. `later`: `c` was seen in an earlier callback (a dump
 * chunk, an async answer), so the flush checks that its socket still holds the port.
 */
function pushSpan(srv: Server, at: number, c: SocketClient, later: boolean): void {
  const len = srv.out.len - at;
  if (len === 0) return;
  if (srv.staged.length) release(srv);
  addSpan(srv, at, len, c.port, 0, c);
  if (later) srv.later = true;
}

function addSpan(srv: Server, at: number, len: number, port: number, groups: number, c: SocketClient | undefined): void {
  if (srv.nspans * 4 + 4 > srv.spans.length) {
    const s = new Int32Array(srv.spans.length * 2);
    s.set(srv.spans);
    srv.spans = s;
    srv.results = new Int32Array(srv.spans.length / 4);
    srv.inodes = new Int32Array(srv.spans.length / 4);
  }
  const i = srv.nspans++ * 4;
  srv.spans[i] = at;
  srv.spans[i + 1] = len;
  srv.spans[i + 2] = port | 0;
  srv.spans[i + 3] = groups | 0;
  srv.spanClients[i >> 2] = c;
}

/** Send everything queued. Full buffers are retried later; a vanished port ends its dumps and subscriptions. */
export function flush(srv: Server): void {
  if (srv.staged.length && srv.socket) release(srv);
  else unstage(srv);
  if (srv.nspans > 0 && srv.socket) {
    // Anything for a client seen in an earlier callback, or a callback that looked at the table
    // (a socket may have closed while the batch was handled): every span is checked against a
    // table taken now, in the native send itself when the socket can (sendManyHeld), else just
    // before it. Otherwise only clients already dropped are skipped (no query).
    const check = srv.later || srv.clients.turn !== undefined;
    const held = check && canHold(srv);
    recheck(srv, check && !held);
    if (srv.backlog.size) divert(srv);
    // One sendMany for everything. It never delivers a datagram to a port after an earlier one to
    // that port failed, so a reader draining its socket meanwhile cannot get them out of order:
    // the failed one and those after it join the port's queue, in order.
    send(srv, held);
  }
  srv.nspans = 0;
  srv.later = false;
  srv.spanClients.length = 0;
  srv.out = shrunk(srv, srv.out);
  resetWriter(srv.out);
}

/**
 * A storm to many destinations grows the buffers (each destination gets its copy). Keep them while
 * storms use them; give the memory back a second after the last flush that needed it.
 */
function shrunk(srv: Server, w: Writer): Writer {
  if (w.buf.length <= BIG) return w;
  const now = Date.now();
  if (w.len >= w.buf.length / 4) {
    srv.bigAt = now;
    kickAt(srv, now + 1100); // a flush then, to shrink even if the daemon goes quiet
    return w;
  }
  return now - srv.bigAt > 1000 ? newWriter(1 << 16) : w;
}

const BIG = 4 << 20;

/** What sendManyHeld reports for a span whose port another socket, or nobody, holds (Linux ESTALE). */
const ESTALE = 116;

/** One sendMany of the queued spans; full ports get a queue, vanished ones are forgotten. */
function send(srv: Server, held: boolean): void {
  const out = srv.out.buf;
  if (held) {
    for (let i = 0; i < srv.nspans; i++) srv.inodes[i] = srv.spanClients[i]?.sock?.inode ?? 0;
    srv.socket!.sendManyHeld!(out, srv.spans, srv.nspans, srv.results, srv.inodes);
  } else srv.socket!.sendMany(out, srv.spans, srv.nspans, srv.results);
  let stale = 0;
  for (let i = 0; i < srv.nspans; i++) {
    const r = srv.results[i];
    if (r === 0) continue;
    if (r === -ESTALE) { stale++; continue; }
    const port = srv.spans[i * 4 + 2] >>> 0;
    const groups = srv.spans[i * 4 + 3];
    if (groups) continue; // USERSOCK group sends report ECONNREFUSED after delivering
    srv.counters.sendFailures++;
    const c = srv.spanClients[i]!;
    if (r === -ECONNREFUSED) goneAway(srv, port);
    else if (r === -EAGAIN || r === -ENOBUFS) {
      const off = srv.spans[i * 4];
      enqueue(srv, c, ownedCopy(out, off, off + srv.spans[i * 4 + 1]));
    }
  }
  if (stale) resendHeld(srv);
}

/** Whether this flush's last check can be the socket's own (every unicast client's inode known). */
function canHold(srv: Server): boolean {
  if (!srv.heldSends || !srv.socket?.sendManyHeld) return false;
  for (let i = 0; i < srv.nspans; i++) {
    const c = srv.spanClients[i];
    if (c && !c.gone && !c.sock) return false;
  }
  return true;
}

/**
 * sendManyHeld left out spans whose port another socket holds, or nobody (-ESTALE). Their clients
 * are asked about again (a port can be missing from one dump: docs/transport.md); the ones still
 * there get their spans sent, in order, the others are dropped with what they held.
 */
function resendHeld(srv: Server): void {
  staleTable(srv.clients);
  let k = 0;
  for (let i = 0; i < srv.nspans; i++) {
    if (srv.results[i] !== -ESTALE) continue;
    const c = srv.spanClients[i];
    if (!c || !present(srv.clients, c)) continue;
    srv.spans.copyWithin(k * 4, i * 4, i * 4 + 4);
    srv.spanClients[k++] = c;
  }
  srv.nspans = k;
  srv.spanClients.length = k;
  if (k) send(srv, false);
}

/**
 * Drop the spans whose client is gone. With `fresh`, first take the kernel's table anew (one query
 * for the whole flush) and check every span's client against it: what would go to a socket that
 * closed, or whose port another socket holds now, is dropped and its client freed. The window left
 * is the time between this query and the sendMany just after it (docs/transport.md).
 */
function recheck(srv: Server, fresh: boolean): void {
  if (fresh) staleTable(srv.clients);
  let k = 0;
  for (let i = 0; i < srv.nspans; i++) {
    const c = srv.spanClients[i];
    if (c && (c.gone || (fresh && !present(srv.clients, c)))) continue;
    if (k !== i) { srv.spans.copyWithin(k * 4, i * 4, i * 4 + 4); srv.spanClients[k] = c; }
    k++;
  }
  srv.nspans = k;
  srv.spanClients.length = k;
}

/** Spans for ports that already have a queue join it instead of overtaking it. */
function divert(srv: Server): void {
  let k = 0;
  for (let i = 0; i < srv.nspans; i++) {
    const port = srv.spans[i * 4 + 2] >>> 0;
    const c = srv.spanClients[i];
    if (c && srv.backlog.has(port)) {
      const off = srv.spans[i * 4];
      enqueue(srv, c, ownedCopy(srv.out.buf, off, off + srv.spans[i * 4 + 1]));
      continue;
    }
    if (k !== i) { srv.spans.copyWithin(k * 4, i * 4, i * 4 + 4); srv.spanClients[k] = c; }
    k++;
  }
  srv.nspans = k;
  srv.spanClients.length = k;
}

/** Queue a datagram for a full port, dropping its oldest beyond the bounds (the port is owed an OVERRUN). */
function enqueue(srv: Server, c: SocketClient, d: Uint8Array): void {
  const port = c.port;
  let b = srv.backlog.get(port);
  const now = Date.now();
  if (b && b.client !== c) { unqueue(srv, port); b = undefined; } // another socket's queue: both cannot be live
  if (!b) srv.backlog.set(port, (b = { client: c, q: [], bytes: 0, dropped: 0, lostReplies: false, delay: 1, retryAt: now + 1, since: now }));
  b.q.push(d);
  b.bytes += d.length;
  srv.backlogBytes += d.length;
  const o = srv.opts;
  while (b.q.length && (b.q.length > o.maxBacklog || b.bytes > o.maxBacklogBytes || srv.backlogBytes > o.maxBacklogTotal)) {
    // Events go first (nlmsg_pid 0): the RAS log keeps them for the client to read back. A reply
    // or dump chunk goes only when nothing else is left, and the client is told so.
    let i = b.q.findIndex(isEvent);
    if (i < 0) { i = 0; b.lostReplies = true; }
    const x = b.q.splice(i, 1)[0];
    b.bytes -= x.length;
    srv.backlogBytes -= x.length;
    b.dropped++;
    srv.counters.dropped++;
  }
  kickAt(srv, b.retryAt);
}

const isEvent = (d: Uint8Array): boolean => d.length >= 16 && !(d[12] | d[13] | d[14] | d[15]);

function unqueue(srv: Server, port: number): void {
  const b = srv.backlog.get(port);
  if (!b) return;
  srv.backlogBytes -= b.bytes;
  srv.backlog.delete(port);
}

/** Whether `who` may run admin ops on this server (uid 0, or what it was configured with). */
export const isAdmin = (srv: Server, who: Sender): boolean => srv.opts.isAdmin(who);

/** The server's unicast subscriptions, for the functions of genl/subscriptions.ts. */
export const subscriptionsOf = (srv: Server): Subscriptions => srv.subs;

/** The families this server serves, in id order. */
export const familiesOf = (srv: Server): Family[] => [...srv.registry.byId.values()].sort((a, b) => a.id! - b.id!);

/** The client datagrams from `peer` are served as (made on first sight): for tests and tools. */
export const clientAt = (srv: Server, peer: Peer): SocketClient =>
  verified(srv.clients, clientOf(srv.clients, peer.port, peer.uid, peer.gid, peer.pid));

/** Run `f` when a client is dropped (its socket closed or its port changed hands): free what it holds. */
export function onClientGone(srv: Server, f: (c: SocketClient) => void): void {
  srv.clients.onGone.push(f);
}

/** What the server holds for the client on `port` now: whether a dump runs, datagrams queued. */
export function portState(srv: Server, port: number): { client: boolean; dump: boolean; queued: number } {
  const c = srv.clients.byPort.get(port);
  return { client: !!c, dump: !!c && srv.dumps.has(c.id), queued: srv.backlog.get(port)?.q.length ?? 0 };
}

/** The ACK shape `c`'s socket asked for (NETLINK_CAP_ACK, NETLINK_EXT_ACK), under the overrides. */
export function ackFor(srv: Server, c: SocketClient): AckOptions {
  const o = srv.opts.ack;
  return {
    extAck: o.extAck ?? c.extAck ?? DEFAULT_ACK_OPTIONS.extAck,
    capAck: o.capAck ?? c.capAck ?? DEFAULT_ACK_OPTIONS.capAck,
  };
}

/**
 * ACCELNL_MSG_SOCKOPT (0x0f): the `accel wrap` shim tells the daemon a socket option the kernel
 * does not show in sock_diag. A control type below NLMSG_MIN_TYPE, which the kernel skips; payload
 * u32 optname, u32 value (genl/sockopt.ts). NETLINK_EXT_ACK (11) is recorded per client;
 * NETLINK_ADD/DROP_MEMBERSHIP (1/2), sent when the kernel refused the program's own join (only
 * CAP_NET_ADMIN may receive USERSOCK multicast), subscribe the client to a registered group by
 * unicast, like a family's subscribe op.
 */
export { ACCELNL_MSG_SOCKOPT };

function sockopt(srv: Server, v: View, at: number, len: number, c: SocketClient): void {
  const o = parseSockopt(v, at, len);
  if (!o) return;
  applySockopt(o, {
    setExtAck: (on) => { c.extAck = on; },
    join: (g) => {
      if (!groupRegistered(srv, g)) return false;
      subscribe(srv.subs, c, g);
      return true;
    },
    leave: (g) => { unsubscribe(srv.subs, c, g); },
  });
}

/** Whether a family on this server has multicast group `g` (the ids nlctrl hands out). */
function groupRegistered(srv: Server, g: number): boolean {
  for (const fam of srv.registry.byId.values()) if (fam.mcgrps?.some((x) => x.id === g)) return true;
  return false;
}

/** Nobody holds `port` any more (a send was refused): its client is dropped, with what it held. */
export function goneAway(srv: Server, port: number): void {
  portClosed(srv.clients, port);
  unqueue(srv, port);
}

/** Schedule background work (backlog retries, dump continuation). */
function kick(srv: Server, delay = 0): void {
  if (delay === 0) {
    if (srv.scheduled) return;
    srv.scheduled = true;
    setImmediate(() => { srv.scheduled = false; pump(srv); });
  } else kickAt(srv, Date.now() + delay);
}

/** Run pump() at `at` (ms) or earlier. */
function kickAt(srv: Server, at: number): void {
  if (srv.timer && srv.timerAt <= at) return;
  if (srv.timer) clearTimeout(srv.timer);
  srv.timerAt = at;
  srv.timer = setTimeout(() => { srv.timer = undefined; pump(srv); }, Math.max(0, at - Date.now()));
  srv.timer.unref?.();
}

/** Dump datagrams produced per running dump per event-loop turn. */
const DUMP_BURST = 8;

/**
 * Retry backlogs, then advance each running dump by a few chunks, so no client can starve the others.
 * Runs on its own from a timer; exported so tests and the fuzzer can drive dumps synchronously.
 */
export function pump(srv: Server): void {
  if (!srv.socket) return;
  flush(srv);
  const now = Date.now();
  let next = Infinity;
  let looked = false;
  for (const [port, b] of srv.backlog) {
    if (b.retryAt > now) { next = Math.min(next, b.retryAt); continue; }
    // Queued datagrams are for the socket they were queued for, which may have closed since an
    // earlier callback: checked against a table taken now (one query for all the due queues).
    if (!looked) { staleTable(srv.clients); looked = true; }
    if (!present(srv.clients, b.client)) { if (srv.backlog.get(port) === b) unqueue(srv, port); continue; }
    if (retry(srv, port, b)) { b.delay = 1; b.since = now; } else b.delay = Math.min(b.delay * 2, 100);
    if (srv.backlog.get(port) !== b) continue; // drained or gone
    if (now - b.since >= srv.opts.stallMs) {
      // It has taken nothing for stallMs: free what it holds; later messages queue afresh, bounded.
      srv.counters.stalled++;
      srv.counters.dropped += b.q.length;
      unqueue(srv, port);
      srv.dumps.delete(b.client.id);
      continue;
    }
    b.retryAt = now + b.delay;
    next = Math.min(next, b.retryAt);
  }
  let more = false;
  for (const [id, d] of srv.dumps) {
    if (srv.backlog.has(d.client.port)) continue;
    if (!present(srv.clients, d.client)) continue; // its socket went: dropping the client ended the dump
    // A few chunks per dump per turn: fewer event-loop turns and sends, still fair to other ports.
    let finished = false;
    for (let i = 0; i < DUMP_BURST && !finished; i++) finished = dumpChunk(srv, d);
    if (finished) srv.dumps.delete(id);
    else more = true;
  }
  flush(srv);
  if (more) kick(srv);
  if (next < Infinity) kickAt(srv, next);
}

/** Send a port's queue in order until it is full again; then what it is owed (NLMSG_OVERRUN). True on progress. */
function retry(srv: Server, port: number, b: Backlog): boolean {
  let progress = false;
  for (;;) {
    const d = b.q.length ? b.q[0] : b.dropped ? overrunMessage(port, b.dropped, b.lostReplies) : undefined;
    if (!d) { unqueue(srv, port); return true; }
    ensureCopy(srv.out, d);
    // Not pushSpan: staged notifications are newer than the queue, they go at the next flush.
    addSpan(srv, 0, d.length, port, 0, b.client);
    const r = sendNow(srv);
    if (r === -EAGAIN || r === -ENOBUFS) return progress;
    if (r === -ECONNREFUSED) { goneAway(srv, port); return true; }
    progress = true;
    if (b.q.length) {
      b.q.shift();
      b.bytes -= d.length;
      srv.backlogBytes -= d.length;
    } else {
      b.dropped = 0;
      b.lostReplies = false;
      srv.counters.overruns++;
    }
  }
}

/**
 * NLMSG_OVERRUN (type 4) to a port that lost queued messages: "data lost", as the kernel's
 * netlink_overrun() tells a socket with ENOBUFS. Payload: u32 count dropped, u32 flags (bit 0:
 * replies, ACKs or dump chunks were among them, so requests in flight will not be answered).
 */
export const OVERRUN_LOST_REPLIES = 1;

function overrunMessage(port: number, dropped: number, lostReplies: boolean): Uint8Array {
  const b = new Uint8Array(24);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 24, true);
  dv.setUint16(4, NLMSG.OVERRUN, true);
  dv.setUint32(12, port >>> 0, true);
  dv.setUint32(16, Math.min(dropped, 0xffffffff), true);
  dv.setUint32(20, lostReplies ? OVERRUN_LOST_REPLIES : 0, true);
  return b;
}

/** Append a whole message to the batch; the writer grows the one way attrs/writer.ts does. */
function ensureCopy(w: Writer, d: Uint8Array): void {
  const at = ensure(w, d.length);
  w.buf.set(d, at);
  w.len = at + d.length;
}

function sendNow(srv: Server): number {
  const s = srv.socket!;
  s.sendMany(srv.out.buf, srv.spans, srv.nspans, srv.results);
  const r = srv.results[0];
  srv.nspans = 0;
  srv.spanClients.length = 0;
  resetWriter(srv.out);
  return r;
}

/** Handle one received datagram from `peer`. Replies are queued; call flush() after a batch. */
export function receive(srv: Server, data: Uint8Array, peer: Peer): void {
  srv.counters.datagrams++;
  const sender: Sender = { port: peer.port, uid: peer.uid, gid: peer.gid, pid: peer.pid,
    client: clientOf(srv.clients, peer.port, peer.uid, peer.gid, peer.pid) };
  // First seen with its port already unbound: the socket closed before its datagram was read.
  if (sender.client.closedAtFirstSight) sender.client = detached(srv.clients, sender.client);
  const v = view(data);
  const end = data.length;
  let at = 0;
  while (end - at >= NLMSG_HDRLEN) {
    const len = v.dv.getUint32(at, true);
    if (len < NLMSG_HDRLEN || len > end - at) break;
    srv.counters.messages++;
    handleMessage(srv, v, at, len, sender);
    at += Math.min((len + 3) & ~3, end - at);
  }
  if (at < end) srv.counters.malformed++;
}

function reject(srv: Server, err: number): void {
  const name = errnoName(err);
  srv.counters.rejected[name] = (srv.counters.rejected[name] ?? 0) + 1;
}

/**
 * What dispatching one message came to: a handler's result, or "answered later" (a dump that
 * runs on, an async handler that ACKs when it settles). Internal to the server, never an errno.
 */
type Outcome = Result | { readonly kind: 'dump' } | { readonly kind: 'async' } | { readonly kind: 'nobody' };
const ANSWER_NOBODY: Outcome = { kind: 'nobody' };
const LATER_DUMP: Outcome = { kind: 'dump' };
const LATER_ASYNC: Outcome = { kind: 'async' };
const failed = (errno: number): Result => ({ kind: 'error', errno });

/** A handler's return value, checked: anything but a Result is a handler bug, answered EINVAL. */
function checked<T extends DumpResult>(r: unknown, ext: Extack, allowed: readonly string[]): T | Result {
  if (isResult(r) && allowed.includes(r.kind)) return r as T;
  ext.msg = `internal error: handler returned ${typeof r === 'object' ? JSON.stringify(r) : String(r)}`.slice(0, 79);
  return failed(EINVAL);
}

function handleMessage(srv: Server, v: View, at: number, len: number, sender: Sender): void {
  const flags = v.dv.getUint16(at + 6, true);
  const type = v.dv.getUint16(at + 4, true);
  const ext = srv.ext;
  clearExtack(ext);
  let err = 0;
  if (type === ACCELNL_MSG_SOCKOPT) sockopt(srv, v, at, len, (sender.client = verified(srv.clients, sender.client, sender.pid)));
  if ((flags & NLM_F.REQUEST) && type >= NLMSG.MIN_TYPE) {
    let r: Outcome;
    try {
      r = genlRcv(srv, v, at, len, flags, type, sender);
    } catch (e) {
      // A handler bug must never take the server down or leave the client waiting.
      r = failed(EINVAL);
      ext.msg = `internal error: ${(e as Error).message}`.slice(0, 79);
    }
    if (r.kind === 'dump' || r.kind === 'async' || r.kind === 'nobody') return;
    err = wireStatus(r);
  }
  if (err) { srv.counters.errors++; reject(srv, err); }
  if (err || (flags & NLM_F.ACK)) {
    const w = srv.out;
    const start = w.len;
    // An error's shape depends on the socket's options: make sure they are this socket's (a
    // successor on a recycled port has its own). A success ACK is the same for every socket.
    if (err) sender.client = verified(srv.clients, sender.client, sender.pid);
    if (sender.client.gone) return; // a closed socket's datagram, read late: nobody to answer
    writeAck(w, v, at, err, ext, sender.port, ackFor(srv, sender.client));
    pushSpan(srv, start, sender.client, false);
  }
}

function findOp(fam: Family, cmd: number): Op | undefined {
  for (const op of fam.ops) if (op.cmd === cmd) return op;
  return undefined;
}

function genlRcv(srv: Server, v: View, at: number, len: number, flags: number, type: number, sender: Sender): Outcome {
  const ext = srv.ext;
  const fam = srv.registry.byId.get(type);
  if (!fam) return failed(ENOENT);
  const hdrlen = NLMSG_HDRLEN + GENL_HDRLEN + (((fam.hdrsize ?? 0) + 3) & ~3);
  if (len < hdrlen) return failed(EINVAL);
  const cmd = v.buf[at + NLMSG_HDRLEN];
  if (cmd >= (fam.resvStartOp ?? 0)) {
    if (v.dv.getUint16(at + NLMSG_HDRLEN + 2, true)) {
      ext.msg = 'genlmsghdr.reserved field is not 0';
      return failed(EINVAL);
    }
    let f = flags;
    if ((f & NLM_F.DUMP) === NLM_F.DUMP) f &= ~NLM_F.DUMP;
    if (f & ~(NLM_F.REQUEST | NLM_F.ACK | NLM_F.ECHO)) {
      ext.msg = 'ambiguous or reserved bits set in nlmsg_flags';
      return failed(EINVAL);
    }
  }
  const isDump = (flags & NLM_F.DUMP) === NLM_F.DUMP;
  const op = findOp(fam, cmd);
  const half = isDump ? op?.dump : op?.do;
  if (!op || !half) return failed(EOPNOTSUPP);
  if ((op.perm ?? 0) & (GENL_OP.ADMIN_PERM | GENL_OP.UNS_ADMIN_PERM) && !srv.opts.isAdmin(sender)) return failed(EPERM);
  if (isDump) return startDump(srv, v, at, len, hdrlen, fam, op, half as DumpHalf, sender);

  const maxattr = half.policy ? (half.maxattr ?? half.policy.maxtype) : 0;
  const tb = new Int32Array(maxattr + 1).fill(-1);
  if (half.policy && maxattr) {
    const err = validate(v, at + hdrlen, at + len, maxattr, half.policy,
      half.liberal ? NL_VALIDATE.LIBERAL : NL_VALIDATE.STRICT, ext, tb);
    if (err) return failed(-err);
  }
  let replyAt = -1;
  let inLater = false; // set once the handler has returned a promise: its replies come later
  const replyPort = sender.port;
  const ctx: DoCtx = {
    family: fam, cmd, req: v, at, seq: v.dv.getUint32(at + 8, true), flags, sender, attrs: tb, ext,
    owner: () => (sender.client = verified(srv.clients, sender.client, sender.pid)),
    reply(rcmd = cmd, rflags = 0) {
      replyAt = srv.out.len;
      genlStart(srv.out, fam.id!, rflags, ctx.seq, replyPort, rcmd, fam.version);
      return srv.out;
    },
    end() {
      if (replyAt < 0) return;
      if (sender.client.gone) { trim(srv.out, replyAt); replyAt = -1; return; } // nobody to answer
      msgEnd(srv.out, replyAt);
      // Written while the request's callback runs, or later by an async handler.
      pushSpan(srv, replyAt, sender.client, inLater);
      replyAt = -1;
    },
  };
  const r = (half as DoHalf).handler(ctx);
  if (!(r instanceof Promise)) {
    if (replyAt >= 0) trim(srv.out, replyAt); // a reply started but not ended is dropped
    return checked<Result>(r, ext, DO_KINDS);
  }
  // Async handler: it outlives this receive callback, so from here on it works on its own copy of
  // the request (the receive buffer is reused by the next wake-up), with offsets moved to match.
  // The ACK echoes that copy: it answers this request, whatever arrived since.
  inLater = true;
  const copy = view(ownedCopy(v.buf, at, at + len));
  const ext2 = newExtack();
  Object.assign(ext2, ext);
  if (ext2.badAttr >= 0) ext2.badAttr -= at;
  if (ext2.missNest >= 0) ext2.missNest -= at;
  for (let i = 0; i < tb.length; i++) if (tb[i] >= 0) tb[i] -= at; // in place: ctx.attrs matches ctx.req
  ctx.req = copy; ctx.at = 0; ctx.ext = ext2;
  r.then((x) => wireStatus(checked<Result>(x, ext2, DO_KINDS)),
    (e: Error) => { ext2.msg = `internal error: ${e?.message}`.slice(0, 79); return -EINVAL; })
    .then((e) => {
      if (replyAt >= 0) trim(srv.out, replyAt);
      // Answered later: only to the socket that asked, never to a successor on its port (the
      // flush checks the client against a table taken right before it sends).
      if (sender.client.gone) { flush(srv); return; }
      if (e) { srv.counters.errors++; reject(srv, e); }
      if (e || (flags & NLM_F.ACK)) {
        const start = srv.out.len;
        writeAck(srv.out, copy, 0, e, ext2, replyPort, ackFor(srv, sender.client));
        pushSpan(srv, start, sender.client, true);
      }
      flush(srv);
    });
  return LATER_ASYNC;
}

const DO_KINDS = ['done', 'error'] as const;
const DUMP_KINDS = ['done', 'error', 'more'] as const;

function startDump(srv: Server, v: View, at: number, len: number, hdrlen: number, fam: Family, op: Op,
  half: DumpHalf, sender: Sender): Outcome {
  const port = sender.port;
  const client = sender.client = verified(srv.clients, sender.client, sender.pid);
  if (client.gone) return ANSWER_NOBODY; // a closed socket's request, read late: its successor must not get the dump
  if (srv.dumps.has(client.id)) return failed(EBUSY); // one dump per socket at a time, as netlink_dump_start
  if (srv.dumps.size >= srv.opts.maxDumps) {
    srv.ext.msg = 'too many dumps in progress';
    return failed(EBUSY);
  }
  const req = view(ownedCopy(v.buf, at, at + len)); // the dump outlives this receive buffer
  const ext = newExtack();
  const maxattr = half.policy ? (half.maxattr ?? half.policy.maxtype) : 0;
  const tb = new Int32Array(maxattr + 1).fill(-1);
  const seq = v.dv.getUint32(at + 8, true);
  const done = (r: Result): Result => {
    // start() failed: an ordinary NLMSG_ERROR, offsets relative to the request.
    Object.assign(srv.ext, ext);
    if (ext.badAttr >= 0) srv.ext.badAttr = ext.badAttr + at;
    if (ext.missNest >= 0) srv.ext.missNest = ext.missNest + at;
    return r;
  };
  if (half.policy && maxattr) {
    const err = validate(req, hdrlen, len, maxattr, half.policy,
      half.liberal ? NL_VALIDATE.LIBERAL : NL_VALIDATE.STRICT, ext, tb);
    if (err) return done(failed(-err));
  }
  const d: DumpState = {
    client, ctx: undefined as unknown as DumpCtx, half, status: { kind: 'more' }, gen: fam.generation?.() ?? 0, intr: false,
    limit: 0, msgAt: -1, chunkAt: 0,
  };
  d.ctx = {
    family: fam, cmd: op.cmd, req, seq, sender, attrs: tb, ext, state: {}, owner: () => client,
    start(cmd = op.cmd, flags = 0) {
      d.msgAt = srv.out.len;
      genlStart(srv.out, fam.id!, flags, seq, port, cmd, fam.version);
      return srv.out;
    },
    end() {
      const w = srv.out;
      if (d.msgAt < 0) return false;
      if (w.len > d.limit && d.msgAt > d.chunkAt) {
        trim(w, d.msgAt);
        d.msgAt = -1;
        return false;
      }
      msgEnd(w, d.msgAt);
      if (fam.generation && fam.generation() !== d.gen) d.intr = true;
      if (d.intr) msgAddFlags(w, d.msgAt, NLM_F.DUMP_INTR);
      d.msgAt = -1;
      return true;
    },
  };
  if (half.start) {
    const r = checked<Result>(half.start(d.ctx), ext, DO_KINDS);
    if (r.kind === 'error') return done(r);
  }
  srv.counters.dumps++;
  if (!dumpChunk(srv, d)) {
    srv.dumps.set(client.id, d);
    kick(srv);
  }
  return LATER_DUMP;
}

/** Produce one dump datagram (netlink_dump). Returns true when the dump is finished. */
function dumpChunk(srv: Server, d: DumpState): boolean {
  const w = srv.out;
  const port = d.ctx.sender.port;
  d.chunkAt = w.len;
  d.limit = d.chunkAt + srv.opts.dumpChunk;
  if (d.status.kind === 'more') {
    let r: DumpResult;
    try {
      r = checked<DumpResult>(d.half.handler(d.ctx), d.ctx.ext, DUMP_KINDS);
    } catch (e) {
      d.ctx.ext.msg = `internal error: ${(e as Error).message}`.slice(0, 79);
      r = failed(EINVAL);
    }
    if (d.msgAt >= 0) { trim(w, d.msgAt); d.msgAt = -1; }
    if (r.kind === 'error' && r.errno === EMSGSIZE && w.len > d.chunkAt) r = { kind: 'more' };
    if (r.kind === 'more' && w.len === d.chunkAt) r = failed(EMSGSIZE); // no progress: the kernel reports EMSGSIZE too
    d.status = r;
  }
  if (d.status.kind === 'more' || d.limit - w.len < NLMSG_HDRLEN + 4) {
    pushSpan(srv, d.chunkAt, d.client, true);
    return false;
  }
  const status = wireStatus(d.status);
  if (status < 0) { srv.counters.errors++; reject(srv, status); }
  writeDone(w, d.ctx.seq, port, status, d.ctx.ext, d.ctx.req, 0, d.intr ? NLM_F.DUMP_INTR : 0, ackFor(srv, d.client));
  pushSpan(srv, d.chunkAt, d.client, true);
  return true;
}

/**
 * Send a notification to a family's multicast group: kernel multicast (pid 0, seq 0) plus a unicast
 * copy to each subscribed port. `fill` writes the attributes.
 */
export function notify(srv: Server, fam: Family, group: string, cmd: number, fill: Fill, formatted?: (format: number) => Fill): void {
  const g = fam.mcgrps?.find((m) => m.name === group);
  if (!g || g.id === undefined || !srv.socket) return; // nobody can hear a server without a socket
  const multicast = g.id <= 32;
  const subs = subscribersOf(srv.subs, g.id);
  if (!multicast && !subs.size) return;
  let native = -1;
  if (multicast) {
    native = writeNotification(srv, fam, cmd, fill);
    if (native >= 0) stage(srv, native, fam.id!, undefined, 1 << (g.id - 1));
  }
  if (subs.size) {
    // Once per format somebody asked for. An encoder that throws costs only its own subscribers
    // that event: they are told (NLMSG_OVERRUN: read it back from the log), and it is counted.
    const enc = new Map<number, number>(); // format -> offset in ev, or -1 when it failed
    for (const [c, f] of subs) {
      if (c.gone) continue; // (the flush checks the rest against the kernel's table before it sends)
      let at = enc.get(f);
      if (at === undefined) {
        at = f === NATIVE_FORMAT || !formatted
          ? (native >= 0 || multicast ? native : (native = writeNotification(srv, fam, cmd, fill)))
          : writeNotification(srv, fam, cmd, formatted(f), f);
        enc.set(f, at);
      }
      if (at >= 0) stage(srv, at, fam.id!, c, 0);
      else {
        // Counted as a drop and an overrun too, so `accel server show` (stats-get) shows it.
        srv.counters.encodeFailed++; srv.counters.dropped++; srv.counters.overruns++;
        stage(srv, writeLost(srv, c.port), fam.id!, c, 0);
      }
    }
  }
  kick(srv);
}

/** A notification for these clients only, by unicast (the current socket on each port; others skipped). */
export function notifyClients(srv: Server, fam: Family, cmd: number, clients: Iterable<SocketClient>, fill: Fill): void {
  if (!srv.socket) return;
  let at = -2;
  for (const c of clients) {
    if (c.gone) continue; // (the flush checks the rest against the kernel's table before it sends)
    if (at === -2) at = writeNotification(srv, fam, cmd, fill);
    if (at >= 0) stage(srv, at, fam.id!, c, 0);
  }
  kick(srv);
}

/** What writes a notification's attributes. */
export type Fill = (w: Writer) => void;

/**
 * Write a notification message (pid 0, seq 0, flags 0) into the staging buffer; returns its offset,
 * or -1 when `fill` threw (the partial message is dropped, the failure counted per format).
 */
function writeNotification(srv: Server, fam: Family, cmd: number, fill: Fill, format = NATIVE_FORMAT): number {
  const w = srv.ev;
  const start = w.len;
  try {
    const at = genlStart(w, fam.id!, 0, 0, 0, cmd, fam.version);
    fill(w);
    msgEnd(w, at);
    return start;
  } catch (e) {
    trim(w, start);
    const key = `${fam.name}/${format}`;
    srv.encodeErrors[key] = (srv.encodeErrors[key] ?? 0) + 1;
    if (!srv.encodeWarned.has(key)) {
      srv.encodeWarned.add(key);
      process.emitWarning(`${fam.name}: notification encoder for format ${format} failed: ${(e as Error)?.message}`);
    }
    return -1;
  }
}

/** An NLMSG_OVERRUN telling one subscriber it missed one notification, staged like an event. */
function writeLost(srv: Server, port: number): number {
  const start = srv.ev.len;
  ensureCopy(srv.ev, overrunMessage(port, 1, false));
  return start;
}

/**
 * Stage the notification at `at` in ev (ending at ev.len) for a destination. With batchEvents (the
 * default) it joins the destination's open datagram, up to NLMSG_GOODSIZE (which any client that
 * reads kernel dumps can take), so an event storm costs one send per destination per ~4 KiB even
 * when several families' notifications interleave. Order: a port's unicast datagram holds its
 * notifications in the order they happened. A socket may be a member of several groups, so a
 * family that multicasts to another group closes the datagram of the first: each family's
 * notifications reach every member in order. (Notifications of different families, to different
 * groups, may be reordered within one flush.)
 */
function stage(srv: Server, at: number, famId: number, c: SocketClient | undefined, groups: number): void {
  const port = c ? c.port : 0;
  const key = groups ? 0x100000000 + (groups >>> 0) : port >>> 0;
  const len = srv.ev.dv.getUint32(at, true);
  let d = srv.opts.batchEvents ? srv.openFor.get(key) : undefined;
  if (groups) {
    if (srv.lastGroup.get(famId) !== key) d = undefined;
    srv.lastGroup.set(famId, key);
  }
  if (d && (d.bytes + len > NLMSG_GOODSIZE || d.client !== c)) d = undefined;
  if (!d) {
    d = { port, groups, client: c, msgs: [], bytes: 0 };
    srv.staged.push(d);
    srv.openFor.set(key, d);
  }
  d.msgs.push(at, len);
  d.bytes += len;
}

/** Copy the staged datagrams into the output and queue them, in order. */
function release(srv: Server): void {
  const out = srv.out;
  const ev = srv.ev.buf;
  for (const d of srv.staged) {
    const start = ensure(out, d.bytes);
    let p = start;
    for (let i = 0; i < d.msgs.length; i += 2) {
      out.buf.set(ev.subarray(d.msgs[i], d.msgs[i] + d.msgs[i + 1]), p);
      p += d.msgs[i + 1];
    }
    out.len = p;
    addSpan(srv, start, p - start, d.port, d.groups, d.client);
    if (d.client) srv.later = true; // a unicast event: its subscriber was checked when it happened
  }
  unstage(srv);
}

function unstage(srv: Server): void {
  srv.staged.length = 0;
  srv.openFor.clear();
  srv.lastGroup.clear();
  srv.ev = shrunk(srv, srv.ev);
  resetWriter(srv.ev);
}

/** Serve `srv` on a socket: handles each batch, then flushes once. */
export function attach(srv: Server, socket: ServerSocket): void {
  srv.socket = socket;
}

/** Process a batch of datagrams (from genl/socket.ts onBatch) and send the replies. */
export function receiveBatch(srv: Server, batch: {
  count: number; data(i: number): Uint8Array; port(i: number): number; uid(i: number): number;
  gid(i: number): number; pid(i: number): number; truncated(i: number): number;
}): void {
  for (let i = 0; i < batch.count; i++) {
    const sender: Peer = { port: batch.port(i), uid: batch.uid(i), gid: batch.gid(i), pid: batch.pid(i) };
    if (batch.truncated(i)) tooLong(srv, batch.data(i), batch.truncated(i), sender);
    else receive(srv, batch.data(i), sender);
  }
  flush(srv);
}

/**
 * A datagram longer than the socket keeps (maxMessage) lost its tail: nothing in it is processed.
 * Its first message, if it asked for an answer, gets EMSGSIZE (header echoed only), so the client
 * does not wait for a timeout.
 */
function tooLong(srv: Server, data: Uint8Array, full: number, sender: Peer): void {
  srv.counters.datagrams++;
  srv.counters.truncated++;
  if (data.length < NLMSG_HDRLEN) return;
  const v = view(data);
  if (!(v.dv.getUint16(6, true) & (NLM_F.REQUEST | NLM_F.ACK))) return;
  clearExtack(srv.ext);
  srv.ext.msg = `message of ${full} bytes exceeds the server's ${data.length}-byte limit`;
  srv.counters.errors++;
  reject(srv, -EMSGSIZE);
  const start = srv.out.len;
  const c = clientOf(srv.clients, sender.port, sender.uid, sender.gid, sender.pid);
  writeAck(srv.out, v, 0, -EMSGSIZE, srv.ext, sender.port, { ...ackFor(srv, c), capAck: true });
  pushSpan(srv, start, c, false);
}

/** A snapshot of what the server holds and has done: counters plus dumps, queues and subscribers now. */
export function serverStats(srv: Server): Counters & {
  dumpsRunning: number; backlogPorts: number; backlogDatagrams: number; backlogBytes: number; subscribers: Record<number, number>;
  clients: number; socketQueries: number; staleDatagrams: number; encodeErrors: Record<string, number>;
} {
  let datagrams = 0;
  for (const b of srv.backlog.values()) datagrams += b.q.length;
  return {
    ...srv.counters, rejected: { ...srv.counters.rejected }, dumpsRunning: srv.dumps.size, backlogPorts: srv.backlog.size,
    backlogDatagrams: datagrams, backlogBytes: srv.backlogBytes,
    subscribers: subscriberCounts(srv.subs), encodeErrors: { ...srv.encodeErrors },
    clients: srv.clients.byPort.size, socketQueries: srv.clients.queries, staleDatagrams: srv.clients.stale,
  };
}
