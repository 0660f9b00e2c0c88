// The outbox: everything the server sends, and what waits to be sent. It owns the output buffer
// (replies, ACKs and dump chunks are written into it by dispatch and dumps, then handed over as
// spans with pushSpan), the staging buffer of notifications (written once, copied per destination
// at release), the per-port queues of datagrams that met a full receive buffer (with their bounds,
// ENOBUFS/overrun accounting and NLMSG_OVERRUN), and the last identity check before a send.
//
// Every span is filed with the client it is for, never only its port: a flush that sends anything
// to a client seen in an earlier callback checks every destination against the kernel's table taken
// right before the send (in the native sendManyHeld when the socket has it). What it sent stays
// unproven until a later look at the table (the next flush's check, or one taken for it within
// SETTLE_MS) finds the same socket on the port; a datagram whose port changed hands meanwhile may
// have reached the next socket, and is counted (racedSends) and logged, one line each (raceLine).
// docs/transport.md "Raced sends" says why the window cannot be closed, only reported.
//
// Buffer ownership: `out` and `ev` are reused after every flush. A span is valid until the flush
// that sends it; whatever must outlive it (a queued datagram) is an owned copy.
import { type Writer, ensure, newWriter, putRaw, resetWriter } from '../attrs';
import { EAGAIN, ECONNREFUSED, ENOBUFS } from '../attrs/errno';
import { NLMSG, NLMSG_GOODSIZE } from './consts';
import { type ClientTable, type SocketClient, freshTable, maxRecvLen, portClosed, present, staleTable, verified } from './clients';
import type { SocketTable } from './sockdiag';
import type { Counters } from './counters';
import { ownedCopy } from './owned';

/** The part of a socket the server needs (genl/socket.ts NlSocket and the in-process hub both fit). */
export interface ServerSocket {
  readonly port: number;
  sendMany(data: Uint8Array, spans: Int32Array, count?: number, results?: Int32Array): number;
  /**
   * sendMany that first checks, in the same native call, which socket holds each port, and with
   * `after` says which holds it once sent (genl/socket.ts).
   */
  sendManyHeld?(data: Uint8Array, spans: Int32Array, count: number, results: Int32Array, inodes: Int32Array, after?: Int32Array): number;
  /** Busy polling after each batch, in µs (0 or absent: none), and the batches it read (genl/socket.ts). */
  readonly busyPollUs?: number;
  busyPolled?(): number;
}

/** The server options the outbox reads (the server's own options object: changes apply at once). */
export interface OutboxLimits {
  maxBacklog: number;
  maxBacklogBytes: number;
  maxBacklogTotal: number;
  stallMs: number;
  batchEvents: boolean;
  /** Where warning lines go (the server's `log` option; default stderr). */
  log: (line: string) => void;
}

export interface Outbox {
  socket: ServerSocket | undefined;
  readonly clients: ClientTable;
  readonly counters: Counters;
  readonly opts: OutboxLimits;
  /** Ask for a pump at `at` (ms) or earlier (retries, shrinking buffers). */
  readonly wake: (at: number) => void;
  /** A port's queue was released after stallMs without progress: its client's dump ends too. */
  readonly onStall: (c: SocketClient) => void;
  out: Writer;
  spans: Int32Array;
  nspans: number;
  /** Per span, the client it is meant for (undefined: a multicast group send). */
  spanClients: (SocketClient | undefined)[];
  results: Int32Array;
  /** Per span, the inode its client's socket must have for sendManyHeld (0: unchecked). */
  inodes: Int32Array;
  /**
   * Per span, 1 when it answers a datagram read in this callback (reply, ACK or error): its client
   * was taken by uid and pid without a check, so a check that finds another socket on the port asks
   * who sent the datagram before dropping it (answerOwner).
   */
  asked: Uint8Array;
  /**
   * Datagrams delivered by checked sends and not yet proven to have reached their socket: each is
   * settled by the next table that lists its port (the socket itself; or another: suspect, then
   * raced unless its socket's CLOSING proves it read it, provenRead).
   */
  unproven: Unproven[];
  /** When a table is taken to settle them, or suspects are reported, if nothing else did (0: not due). */
  settleAt: number;
  /**
   * Some span goes to a client seen in an earlier callback (a dump chunk, a late async answer, a
   * unicast event): the flush checks every span's client against a table taken just before it sends.
   */
  later: boolean;
  /**
   * The client table's source is the kernel's sock_diag for the socket's own protocol, so the
   * socket's sendManyHeld can do the last check (serve() sets it through useKernelSockets).
   */
  heldSends: boolean;
  /** Datagrams that met a full receive buffer, per port, retried later in order. */
  backlog: Map<number, Backlog>;
  /** Bytes queued in all backlogs. */
  backlogBytes: number;
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
}

export function newOutbox(o: Pick<Outbox, 'clients' | 'counters' | 'opts' | 'wake' | 'onStall'>): Outbox {
  const ob: Outbox = {
    ...o, socket: undefined, out: newWriter(1 << 16), spans: new Int32Array(4 * 256), nspans: 0, spanClients: [],
    results: new Int32Array(256), inodes: new Int32Array(256), asked: new Uint8Array(256), unproven: [], settleAt: 0, later: false, heldSends: false,
    backlog: new Map(), backlogBytes: 0, ev: newWriter(1 << 16), staged: [], openFor: new Map(), lastGroup: new Map(), bigAt: 0,
  };
  o.clients.onTable = (tab) => settleWith(ob, tab);  // every table read settles what is unproven
  return ob;
}

/** The buffer replies, ACKs and dump chunks are written into; valid until the next flush. */
export const outWriter = (ob: Outbox): Writer => ob.out;

/** The buffer notifications are staged in (stage(), then release() at the flush). */
export const eventWriter = (ob: Outbox): Writer => ob.ev;

/** A client was dropped: its queued datagrams go (a successor on the port gets none of them). */
export function forgetQueue(ob: Outbox, c: SocketClient): void {
  if (ob.backlog.get(c.port)?.client === c) unqueue(ob, c.port);
}

/** Nobody holds `port` any more (a send was refused): its client is dropped, with what it held. */
export function portGone(ob: Outbox, port: number): void {
  portClosed(ob.clients, port);
  unqueue(ob, port);
}

/** Stop sending (the socket closed): staged and queued datagrams are dropped. */
export function closeOutbox(ob: Outbox): void {
  settleSends(ob, true);
  ob.socket = undefined;
  ob.backlog.clear();
  ob.backlogBytes = 0;
}

/** Queue sizes for the stats snapshot, and one port's. */
export function queueStats(ob: Outbox): { ports: number; datagrams: number; bytes: number } {
  let datagrams = 0;
  for (const b of ob.backlog.values()) datagrams += b.q.length;
  return { ports: ob.backlog.size, datagrams, bytes: ob.backlogBytes };
}

export function portQueue(ob: Outbox, port: number): { queued: number; queuedBytes: number; owed: boolean } {
  const b = ob.backlog.get(port);
  return { queued: b?.q.length ?? 0, queuedBytes: b?.bytes ?? 0, owed: !!b };
}

/** Sizes of the two buffers (for the stats snapshot: a storm grows them, a quiet second shrinks them). */
export const bufferBytes = (ob: Outbox): { out: number; events: number; eventsStaged: number } =>
  ({ out: ob.out.buf.length, events: ob.ev.buf.length, eventsStaged: ob.ev.len });

/**
 * Retry the queues that are due, each only after its client was checked against a table taken now
 * (one query for all of them). Returns when the next retry is due (Infinity: none).
 */
export function retryQueues(ob: Outbox): number {
  const now = Date.now();
  let next = Infinity;
  let looked = false;
  const sent: [SocketClient, Uint8Array][] = [];
  for (const [port, b] of ob.backlog) {
    if (b.retryAt > now) { next = Math.min(next, b.retryAt); continue; }
    // Queued datagrams are for the socket they were queued for, which may have closed since an
    // earlier callback: checked against a table taken now (one query for all the due queues).
    if (!looked) { staleTable(ob.clients); looked = true; }
    if (!present(ob.clients, b.client)) { if (ob.backlog.get(port) === b) unqueue(ob, port); continue; }
    if (retry(ob, port, b, sent)) { b.delay = 1; b.since = now; } else b.delay = Math.min(b.delay * 2, 100);
    if (ob.backlog.get(port) !== b) continue; // drained or gone
    if (now - b.since >= ob.opts.stallMs) {
      // It has taken nothing for stallMs: free what it holds; later messages queue afresh, bounded.
      ob.counters.stalled++;
      ob.counters.dropped += b.q.length;
      unqueue(ob, port);
      ob.onStall(b.client);
      continue;
    }
    b.retryAt = now + b.delay;
    next = Math.min(next, b.retryAt);
  }
  for (const [c, d] of sent) if (c.sock) addUnproven(ob, c, c.sock.inode, datagramKind(d, 0));
  return next;
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

/** A datagram of notifications being assembled: its destination, its messages ([offset, length]* in ev). */
export interface Staged { port: number; groups: number; client: SocketClient | undefined; msgs: number[]; bytes: number }

/**
 * Queue the bytes [at, out.len) as one datagram to client `c` on its port. Notifications staged
 * before it go first, as they happened first. `later`: `c` was seen in an earlier callback (a dump
 * chunk, an async answer), so the flush checks that its socket still holds the port.
 */
export function pushSpan(ob: Outbox, at: number, c: SocketClient, later: boolean): void {
  const len = ob.out.len - at;
  if (len === 0) return;
  if (ob.staged.length) release(ob);
  if (!later && c.joinAnswers && joins(ob, at, len, c)) return;
  addSpan(ob, at, len, c.port, 0, c);
  if (later) ob.later = true;
  else ob.asked[ob.nspans - 1] = 1;
}

/**
 * An answer for a client that asked for joined answers (ACCELNL_OPT_JOIN_ANSWERS) extends the last
 * span when that one is an answer to the same client read in this callback, ends where this one
 * starts, and both fit the client's read length (at least NLMSG_GOODSIZE, as events do).
 */
function joins(ob: Outbox, at: number, len: number, c: SocketClient): boolean {
  const i = ob.nspans - 1;
  if (i < 0 || ob.spanClients[i] !== c || !ob.asked[i]) return false;
  const prevLen = ob.spans[i * 4 + 1];
  if (ob.spans[i * 4] + prevLen !== at || prevLen + len > Math.max(NLMSG_GOODSIZE, maxRecvLen(c))) return false;
  ob.spans[i * 4 + 1] = prevLen + len;
  return true;
}

export function addSpan(ob: Outbox, at: number, len: number, port: number, groups: number, c: SocketClient | undefined): void {
  if (ob.nspans * 4 + 4 > ob.spans.length) {
    const s = new Int32Array(ob.spans.length * 2);
    s.set(ob.spans);
    ob.spans = s;
    ob.results = new Int32Array(ob.spans.length / 4);
    ob.inodes = new Int32Array(ob.spans.length / 4);
    const a = new Uint8Array(ob.spans.length / 4);
    a.set(ob.asked);
    ob.asked = a;
  }
  ob.asked[ob.nspans] = 0;
  const i = ob.nspans++ * 4;
  ob.spans[i] = at;
  ob.spans[i + 1] = len;
  ob.spans[i + 2] = port | 0;
  ob.spans[i + 3] = groups | 0;
  ob.spanClients[i >> 2] = c;
}

/** Send everything queued. Full buffers are retried later; a vanished port ends its dumps and subscriptions. */
export function flushOutbox(ob: Outbox): void {
  if (ob.staged.length && ob.socket) release(ob);
  else unstage(ob);
  if (ob.nspans > 0 && ob.socket) {
    // Anything for a client seen in an earlier callback, or a callback that looked at the table
    // (a socket may have closed while the batch was handled): every span is checked against a
    // table taken now, in the native send itself when the socket can (sendManyHeld), else just
    // before it. Otherwise only clients already dropped are skipped (no query).
    const check = ob.later || ob.clients.turn !== undefined;
    const held = check && canHold(ob);
    recheck(ob, check && !held);
    if (ob.backlog.size) divert(ob);
    // One sendMany for everything. It never delivers a datagram to a port after an earlier one to
    // that port failed, so a reader draining its socket meanwhile cannot get them out of order:
    // the failed one and those after it join the port's queue, in order.
    send(ob, held, check);
  }
  ob.nspans = 0;
  ob.later = false;
  truncate(ob.spanClients, 0);
  ob.out = shrunk(ob, ob.out);
  resetWriter(ob.out);
}

/**
 * A storm to many destinations grows the buffers (each destination gets its copy). Keep them while
 * storms use them; give the memory back a second after the last flush that needed it.
 */
function shrunk(ob: Outbox, w: Writer): Writer {
  if (w.buf.length <= BIG) return w;
  const now = Date.now();
  if (w.len >= w.buf.length / 4) {
    ob.bigAt = now;
    ob.wake(now + 1100); // a flush then, to shrink even if the daemon goes quiet
    return w;
  }
  return now - ob.bigAt > 1000 ? newWriter(1 << 16) : w;
}

const BIG = 4 << 20;

/** What sendManyHeld reports for a span whose port another socket, or nobody, holds (Linux ESTALE). */
const ESTALE = 116;

/**
 * One sendMany of the queued spans; full ports get a queue, vanished ones are forgotten. `checked`:
 * every span's client was checked against a table taken just before (by sendManyHeld itself when
 * `held`); what it delivers stays unproven until a later table (settleWith).
 */
function send(ob: Outbox, held: boolean, checked: boolean): void {
  const out = ob.out.buf;
  if (held) {
    for (let i = 0; i < ob.nspans; i++) ob.inodes[i] = ob.spanClients[i]?.sock?.inode ?? 0;
    ob.socket!.sendManyHeld!(out, ob.spans, ob.nspans, ob.results, ob.inodes);
    provenByHeld(ob);
  } else ob.socket!.sendMany(out, ob.spans, ob.nspans, ob.results);
  if (checked) sentUnproven(ob);
  let stale = 0;
  for (let i = 0; i < ob.nspans; i++) {
    const r = ob.results[i];
    if (r === 0) continue;
    if (r === -ESTALE) { stale++; continue; }
    const port = ob.spans[i * 4 + 2] >>> 0;
    const groups = ob.spans[i * 4 + 3];
    if (groups) continue; // USERSOCK group sends report ECONNREFUSED after delivering
    ob.counters.sendFailures++;
    const c = ob.spanClients[i]!;
    if (r === -ECONNREFUSED) portGone(ob, port);
    else if (r === -EAGAIN || r === -ENOBUFS) {
      const off = ob.spans[i * 4];
      enqueue(ob, c, ownedCopy(out, off, off + ob.spans[i * 4 + 1]));
    }
  }
  if (stale) resendHeld(ob);
}

/** Whether this flush's last check can be the socket's own (every unicast client's inode known). */
function canHold(ob: Outbox): boolean {
  if (!ob.heldSends || !ob.socket?.sendManyHeld) return false;
  for (let i = 0; i < ob.nspans; i++) {
    const c = ob.spanClients[i];
    if (c && !c.gone && !c.sock) return false;
  }
  return true;
}

/**
 * sendManyHeld left out spans whose port another socket holds, or nobody (-ESTALE). Their clients
 * are asked about again (a port can be missing from one dump: docs/transport.md); the ones still
 * there get their spans sent, in order, the others are dropped with what they held.
 */
function resendHeld(ob: Outbox): void {
  staleTable(ob.clients);
  let k = 0;
  for (let i = 0; i < ob.nspans; i++) {
    if (ob.results[i] !== -ESTALE) continue;
    const c = ob.spanClients[i];
    const to = c && (present(ob.clients, c) ? c : answerOwner(ob, i, c));
    if (to) moveSpan(ob, i, k++, to);
  }
  ob.nspans = k;
  truncate(ob.spanClients, k);
  if (k) send(ob, false, true);
}

/**
 * How long a checked send's datagrams may stay unproven before a table is taken for them alone
 * (a stream of checked flushes proves each one's by the next one's check, at no extra cost).
 */
export const SETTLE_MS = 20;

/**
 * A datagram a checked send delivered to `port` for the socket with `inode`, not yet proven; `uid`
 * and `pid` are its client's when sent. `missed`: a table did not list the port. `other`: a table
 * listed another socket on it (0: not seen); it is reported as raced at `reportAt` unless proven
 * before.
 */
export interface Unproven {
  port: number; inode: number; uid: number; pid: number; kind: DatagramKind; missed: boolean; other: number; reportAt: number;
}

/** This flush's delivered, checked spans are unproven until a later table lists their sockets. */
function sentUnproven(ob: Outbox): void {
  for (let i = 0; i < ob.nspans; i++) {
    const c = ob.spanClients[i];
    if (!c?.sock || ob.results[i] !== 0 || ob.spans[i * 4 + 3] !== 0) continue;
    addUnproven(ob, c, c.sock.inode, datagramKind(ob.out.buf, ob.spans[i * 4]));
  }
}

function addUnproven(ob: Outbox, c: SocketClient, inode: number, kind: DatagramKind): void {
  ob.unproven.push({ port: c.port, inode, uid: c.uid, pid: c.pid, kind, missed: false, other: 0, reportAt: 0 });
  settleBy(ob, Date.now() + SETTLE_MS);
}

/** Make sure the pump settles (or reports) by `at`. */
function settleBy(ob: Outbox, at: number): void {
  if (ob.settleAt && ob.settleAt <= at) return;
  ob.settleAt = at;
  ob.wake(at);
}

/**
 * The socket with `inode` on `port` said, closing, that it read the answer to every request it
 * sent (ACCELNL_OPT_CLOSING with its inode, genl/sockopt.ts), from process `pid` of user `uid` (the
 * kernel's credentials of that message): the replies, ACKs and dump chunks sent to that socket
 * for that same process and user, still unproven, reached it. The word of another process proves
 * nothing (inodes are public in /proc/net/netlink, and whoever took the port could name the one
 * before it), nor does it cover events (the socket never asked for them).
 */
export function provenRead(ob: Outbox, port: number, inode: number, uid: number, pid: number): void {
  if (!ob.unproven.length || pid < 0) return;
  const read = (u: Unproven) => u.port === port && u.inode === inode && u.uid === uid && u.pid === pid && (u.kind === 'reply' || u.kind === 'dump chunk');
  if (!ob.unproven.some(read)) return;
  ob.unproven = ob.unproven.filter((u) => !read(u));
  if (!ob.unproven.length) ob.settleAt = 0;
}

/**
 * sendManyHeld found, just before it sent, the socket with inodes[i] on span i's port (every span
 * it did not answer ESTALE): that socket held the port since any earlier send to it, which proves
 * those datagrams. A netlink socket keeps its port from bind to close, and its inode is not reused
 * while it exists.
 */
function provenByHeld(ob: Outbox): void {
  if (!ob.unproven.length) return;
  const seen = new Map<number, number>();
  for (let i = 0; i < ob.nspans; i++) {
    if (ob.inodes[i] !== 0 && ob.results[i] !== -ESTALE && ob.spans[i * 4 + 3] === 0) seen.set(ob.spans[i * 4 + 2] >>> 0, ob.inodes[i] >>> 0);
  }
  if (seen.size) ob.unproven = ob.unproven.filter((u) => seen.get(u.port) !== u.inode);
}

/**
 * A table of the kernel's, read after every unproven datagram was sent (genl/clients.ts calls this
 * for each one it reads): the same socket on the port proves a datagram; another socket means the
 * port changed hands after the check: the datagram may have reached it. That one is a suspect,
 * reported (counted and logged) SETTLE_MS later unless its socket's CLOSING, already in the
 * server's receive queue when the other socket could bind the port, proves it read it meanwhile
 * (provenRead): a process that closes a client and opens the next gets the same port. None in two
 * tables running (a socket can be left out of one dump), or no table, is counted as unproven:
 * whoever read it has closed.
 */
export function settleWith(ob: Outbox, tab: SocketTable | undefined): void {
  if (!ob.unproven.length) return;
  let k = 0;
  for (const u of ob.unproven) {
    if (u.other) { ob.unproven[k++] = u; continue; }
    const s = tab?.get(u.port);
    if (s && s.inode === u.inode) continue;
    if (s) {
      u.other = s.inode;
      u.reportAt = Date.now() + SETTLE_MS;
      settleBy(ob, u.reportAt);
      ob.unproven[k++] = u;
      continue;
    }
    // Nobody holds the port (twice running), or no table: the socket most likely read it and
    // closed. A socket that bound the port meanwhile and closed again is gone too: counted only.
    if (!tab || u.missed) { ob.counters.unprovenSends++; continue; }
    u.missed = true;
    ob.unproven[k++] = u;
  }
  truncate(ob.unproven, k);
  if (!k) ob.settleAt = 0;
}

/**
 * Settle what is unproven now (a table is read for it, twice when a port is missing) and report
 * the suspects whose time came, if due (`force`: all of it, whether due or not: before the server
 * stops). Called by the pump.
 */
export function settleSends(ob: Outbox, force = false): void {
  if (!ob.unproven.length) { ob.settleAt = 0; return; }
  const now = Date.now();
  if (!force && now < ob.settleAt) { ob.wake(ob.settleAt); return; }
  ob.settleAt = 0;
  const open = (): boolean => ob.unproven.some((u) => !u.other);
  for (let n = 0; n < 2 && open(); n++) freshTable(ob.clients);
  if (open()) settleWith(ob, undefined);  // no source to ask: cannot be proven
  let k = 0;
  for (const u of ob.unproven) {
    if (force || u.reportAt <= now) reportRaced(ob, u, u.other);
    else { ob.unproven[k++] = u; settleBy(ob, u.reportAt); }
  }
  truncate(ob.unproven, k);
}

/** Count and log one datagram that may have reached the socket that took its port (raceLine). */
function reportRaced(ob: Outbox, u: Unproven, now: number | undefined): void {
  ob.counters.racedSends++;
  ob.opts.log(raceLine(u.port, u.inode, now, u.kind));
}

/** What a datagram the server sends is, by its first message (for raceLine). */
export type DatagramKind = 'reply' | 'dump chunk' | 'event' | 'overrun notice';

export function datagramKind(buf: Uint8Array, at: number): DatagramKind {
  const type = buf[at + 4] | (buf[at + 5] << 8);
  const flags = buf[at + 6] | (buf[at + 7] << 8);
  if (type === NLMSG.OVERRUN) return 'overrun notice';
  if (type === NLMSG.DONE || (flags & NLM_F_MULTI)) return 'dump chunk';
  // Notifications carry nlmsg_pid 0; replies, ACKs and errors the requester's port.
  if (!(buf[at + 12] | buf[at + 13] | buf[at + 14] | buf[at + 15])) return 'event';
  return 'reply';
}

const NLM_F_MULTI = 0x2;

/**
 * The line logged for each raced datagram (docs/transport.md "Client identity"); fixed format:
 *   accelnl: raced send: port 0x%08x socket inode N changed hands during the send (now inode M | now no socket);
 *   <a reply|a dump chunk|an event|an overrun notice> for it may have reached the next socket
 * (one line; "now no socket" is not logged since unprovenSends: kept in the format for readers).
 */
export function raceLine(port: number, inode: number, now: number | undefined, kind: DatagramKind): string {
  return `accelnl: raced send: port 0x${(port >>> 0).toString(16).padStart(8, '0')} socket inode ${inode >>> 0} ` +
    `changed hands during the send (${now ? `now inode ${now >>> 0}` : 'now no socket'}); ` +
    `${kind === 'event' || kind === 'overrun notice' ? 'an' : 'a'} ${kind} for it may have reached the next socket`;
}

/**
 * Drop the spans whose client is gone. With `fresh`, first take the kernel's table anew (one query
 * for the whole flush) and check every span's client against it: what would go to a socket that
 * closed, or whose port another socket holds now, is dropped and its client freed. The window left
 * is the time between this query and the sendMany just after it (docs/transport.md).
 */
function recheck(ob: Outbox, fresh: boolean): void {
  if (fresh) staleTable(ob.clients);
  let k = 0;
  for (let i = 0; i < ob.nspans; i++) {
    const c = ob.spanClients[i];
    const to = !c || (!c.gone && (!fresh || present(ob.clients, c))) ? c : fresh ? answerOwner(ob, i, c) : undefined;
    if (c && !to) continue;
    moveSpan(ob, i, k++, to);
  }
  ob.nspans = k;
  truncate(ob.spanClients, k);
}

/** Span i moves to slot k (k <= i), for client `c`. */
function moveSpan(ob: Outbox, i: number, k: number, c: SocketClient | undefined): void {
  if (k !== i) {
    ob.spans.copyWithin(k * 4, i * 4, i * 4 + 4);
    ob.asked[k] = ob.asked[i];
  }
  ob.spanClients[k] = c;
}

/**
 * Who gets span i, whose client `c` a check found gone or replaced. A dump chunk, late answer or
 * event is that socket's alone: nobody. An answer to a datagram read in this callback belongs to
 * whoever sent the datagram, which the fast path (same uid and pid, no check) took for `c`: when
 * the sending process holds the socket now on the port (it closed its socket and opened another,
 * which got the same port), the datagram was that socket's, and so is the answer. Otherwise (the
 * port is free, or the sender does not hold its socket) nobody.
 */
function answerOwner(ob: Outbox, i: number, c: SocketClient): SocketClient | undefined {
  if (!ob.asked[i] || c.pid < 0) return undefined;
  const n = verified(ob.clients, c, c.pid);
  return n.gone ? undefined : n;
}

/** Spans for ports that already have a queue join it instead of overtaking it. */
function divert(ob: Outbox): void {
  let k = 0;
  for (let i = 0; i < ob.nspans; i++) {
    const port = ob.spans[i * 4 + 2] >>> 0;
    const c = ob.spanClients[i];
    if (c && ob.backlog.has(port)) {
      const off = ob.spans[i * 4];
      enqueue(ob, c, ownedCopy(ob.out.buf, off, off + ob.spans[i * 4 + 1]));
      continue;
    }
    moveSpan(ob, i, k++, c);
  }
  ob.nspans = k;
  truncate(ob.spanClients, k);
}

/** Queue a datagram for a full port, dropping its oldest beyond the bounds (the port is owed an OVERRUN). */
function enqueue(ob: Outbox, c: SocketClient, d: Uint8Array): void {
  const port = c.port;
  let b = ob.backlog.get(port);
  const now = Date.now();
  if (b && b.client !== c) { unqueue(ob, port); b = undefined; } // another socket's queue: both cannot be live
  if (!b) ob.backlog.set(port, (b = { client: c, q: [], bytes: 0, dropped: 0, lostReplies: false, delay: 1, retryAt: now + 1, since: now }));
  b.q.push(d);
  b.bytes += d.length;
  ob.backlogBytes += d.length;
  const o = ob.opts;
  while (b.q.length && (b.q.length > o.maxBacklog || b.bytes > o.maxBacklogBytes || ob.backlogBytes > o.maxBacklogTotal)) {
    // Events go first (nlmsg_pid 0): the RAS log keeps them for the client to read back. A reply
    // or dump chunk goes only when nothing else is left, and the client is told so.
    let i = b.q.findIndex(isEvent);
    if (i < 0) { i = 0; b.lostReplies = true; }
    const x = b.q.splice(i, 1)[0];
    b.bytes -= x.length;
    ob.backlogBytes -= x.length;
    b.dropped++;
    ob.counters.dropped++;
  }
  ob.wake(b.retryAt);
}

const isEvent = (d: Uint8Array): boolean => d.length >= 16 && !(d[12] | d[13] | d[14] | d[15]);

function unqueue(ob: Outbox, port: number): void {
  const b = ob.backlog.get(port);
  if (!b) return;
  ob.backlogBytes -= b.bytes;
  ob.backlog.delete(port);
}

/**
 * Send a port's queue in order until it is full again, and what it is owed (NLMSG_OVERRUN): after
 * the queue when only events were lost (the client reads them back from the log once it has the
 * rest), but first when replies were lost, as the kernel reports ENOBUFS before the data still
 * queued: an ACK still queued must not settle a request whose reply is gone before the client
 * knows replies were lost. True on progress.
 */
function retry(ob: Outbox, port: number, b: Backlog, sent: [SocketClient, Uint8Array][]): boolean {
  let progress = false;
  for (;;) {
    const notice = b.dropped > 0 && (b.lostReplies || !b.q.length);
    const d = notice ? overrunMessage(port, b.dropped, b.lostReplies) : b.q.length ? b.q[0] : undefined;
    if (!d) { unqueue(ob, port); return true; }
    putRaw(ob.out, d);
    // Not pushSpan: staged notifications are newer than the queue, they go at the next flush.
    addSpan(ob, 0, d.length, port, 0, b.client);
    const r = sendNow(ob);
    if (r === -EAGAIN || r === -ENOBUFS) return progress;
    if (r === -ECONNREFUSED) { portGone(ob, port); return true; }
    progress = true;
    sent.push([b.client, d]);
    if (notice) {
      b.dropped = 0;
      b.lostReplies = false;
      ob.counters.overruns++;
    } else {
      b.q.shift();
      b.bytes -= d.length;
      ob.backlogBytes -= d.length;
    }
  }
}

/**
 * NLMSG_OVERRUN (type 4) to a port that lost queued messages: "data lost", as the kernel's
 * netlink_overrun() tells a socket with ENOBUFS. Payload: u32 count dropped, u32 flags (bit 0:
 * replies, ACKs or dump chunks were among them, so requests in flight will not be answered).
 */
export const OVERRUN_LOST_REPLIES = 1;

export function overrunMessage(port: number, dropped: number, lostReplies: boolean): Uint8Array {
  const b = new Uint8Array(24);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 24, true);
  dv.setUint16(4, NLMSG.OVERRUN, true);
  dv.setUint32(12, port >>> 0, true);
  dv.setUint32(16, Math.min(dropped, 0xffffffff), true);
  dv.setUint32(20, lostReplies ? OVERRUN_LOST_REPLIES : 0, true);
  return b;
}

function sendNow(ob: Outbox): number {
  const s = ob.socket!;
  s.sendMany(ob.out.buf, ob.spans, ob.nspans, ob.results);
  const r = ob.results[0];
  ob.nspans = 0;
  truncate(ob.spanClients, 0);
  resetWriter(ob.out);
  return r;
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
export function stage(ob: Outbox, at: number, famId: number, c: SocketClient | undefined, groups: number): void {
  const port = c ? c.port : 0;
  const key = groups ? 0x100000000 + (groups >>> 0) : port >>> 0;
  const len = ob.ev.dv.getUint32(at, true);
  let d = ob.opts.batchEvents ? ob.openFor.get(key) : undefined;
  if (groups) {
    if (ob.lastGroup.get(famId) !== key) d = undefined;
    ob.lastGroup.set(famId, key);
  }
  if (d && (d.bytes + len > NLMSG_GOODSIZE || d.client !== c)) d = undefined;
  if (!d) {
    d = { port, groups, client: c, msgs: [], bytes: 0 };
    ob.staged.push(d);
    ob.openFor.set(key, d);
  }
  d.msgs.push(at, len);
  d.bytes += len;
}

/** Copy the staged datagrams into the output and queue them, in order. */
function release(ob: Outbox): void {
  const out = ob.out;
  const ev = ob.ev.buf;
  for (const d of ob.staged) {
    const start = ensure(out, d.bytes);
    let p = start;
    for (let i = 0; i < d.msgs.length; i += 2) {
      out.buf.set(ev.subarray(d.msgs[i], d.msgs[i] + d.msgs[i + 1]), p);
      p += d.msgs[i + 1];
    }
    out.len = p;
    addSpan(ob, start, p - start, d.port, d.groups, d.client);
    if (d.client) ob.later = true; // a unicast event: its subscriber was checked when it happened
  }
  unstage(ob);
}

function unstage(ob: Outbox): void {
  // After every batch, and mostly with nothing staged: Map#clear allocates a new table even when
  // empty, and a length store goes through the runtime (together 5 % of the daemon's time under
  // sequential requests, measured with perf).
  truncate(ob.staged, 0);
  if (ob.openFor.size) ob.openFor.clear();
  if (ob.lastGroup.size) ob.lastGroup.clear();
  ob.ev = shrunk(ob, ob.ev);
  resetWriter(ob.ev);
}

/** a.length = k for k <= a.length, by pops: a store to length is a runtime call, a pop is inlined. */
function truncate(a: unknown[], k: number): void {
  while (a.length > k) a.pop();
}
