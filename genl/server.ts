// The family server: netlink_rcv_skb() + genl_rcv_msg() semantics over any socket-like transport.
// The work is split by what each part owns (docs/architecture.md, "The server core"):
//
//   genl/dispatch.ts   parse, policy, permissions, handler, reply and ACK, per received batch
//   genl/dumps.ts      dumps in progress, one per socket, a few datagrams per turn
//   genl/notify.ts     notifications: multicast plus a unicast copy per subscriber and format
//   genl/outbox.ts     the output buffer, per-port queues, overrun, the last identity check, sendMany
//   genl/clients.ts    which socket a datagram comes from (a client is a socket, not a port)
//   genl/subscriptions.ts  unicast subscriptions and their formats
//   genl/core.ts       the Server handle and ServerCore, the parts behind it (types, imported by all)
//
// This file holds them together: a Server is opaque to other layers and tests, which use the
// functions below and the serverStats() snapshot, never its fields.
import { newExtack } from '../attrs';
import type { AckOptions } from './ack';
import { NLMSG_GOODSIZE } from './consts';
import { type ClientTable, type SocketClient, type SocketSource, clientOf, newClientTable, present, procHolds, verified } from './clients';
import { type Counters, newCounters } from './counters';
import { type Dumps, type Server, type ServerCore, type ServerOptions, type ServerParts, coreOf } from './core';
import { pumpDumps } from './dumps';
import type { Credentials, Family, Peer } from './family';
import {
  type ServerSocket, bufferBytes, closeOutbox, flushOutbox, forgetQueue, newOutbox, portGone, portQueue,
  queueStats, retryQueues, settleSends,
} from './outbox';
import { type Registry, familiesIn, newRegistry } from './registry';
import { kick, kickAt, newSchedule } from './schedule';
import { type Subscriptions, forgetClient, newSubscriptions, subscriberCounts } from './subscriptions';
import { ACCELNL_MSG_SOCKOPT } from './sockopt';

export type { Counters } from './counters';
export type { ServerSocket } from './outbox';
export { OVERRUN_LOST_REPLIES } from './outbox';
export { receive, receiveBatch } from './dispatch';
export { notify, notifyClients, type Fill } from './notify';

export type { Server, ServerOptions } from './core';

export function createServer(o: ServerOptions = {}): Server {
  const opts: ServerCore['opts'] = {
    ack: o.ack ?? {}, dumpChunk: o.dumpChunk ?? NLMSG_GOODSIZE,
    isAdmin: o.isAdmin ?? ((s) => s.uid === 0), maxBacklog: o.maxBacklog ?? 1024, batchEvents: o.batchEvents ?? true,
    maxBacklogBytes: o.maxBacklogBytes ?? 1 << 20, maxBacklogTotal: o.maxBacklogTotal ?? 64 << 20,
    stallMs: o.stallMs ?? 30000, maxDumps: o.maxDumps ?? 4096, log: o.log ?? writeStderr,
  };
  const clients = newClientTable(o.sockets);
  const counters = newCounters();
  const dumps: Dumps = new Map();
  let srv: ServerCore | undefined;
  const sched = newSchedule(() => pump(srv!));
  srv = {
    registry: o.registry ?? newRegistry(), opts, clients, dumps, counters, sched,
    outbox: newOutbox({ clients, counters, opts, wake: (at) => kickAt(sched, at), onStall: (c) => { dumps.delete(c.id); } }),
    subs: newSubscriptions(), ext: newExtack(), rx: {}, encodeErrors: {}, encodeWarned: new Set(),
  } as ServerParts as ServerCore;
  const s = srv;
  clients.onGone.push((c) => clientGone(s, c));
  return s;
}

const writeStderr = (line: string): void => { process.stderr.write(`${line}\n`); };

/** A client was dropped: its dump, its queued datagrams and its unicast subscriptions go with it. */
function clientGone(srv: ServerCore, c: SocketClient): void {
  srv.dumps.delete(c.id);
  forgetQueue(srv.outbox, c);
  forgetClient(srv.subs, c);
}

/** Serve `srv` on a socket: handles each batch, then flushes once. */
export function attach(srv: Server, socket: ServerSocket): void {
  coreOf(srv).outbox.socket = socket;
}

/** Stop serving: nothing more is sent; dumps and queues are dropped (the socket is the caller's to close). */
export function detach(srv: Server): void {
  const core = coreOf(srv);
  closeOutbox(core.outbox);
  core.dumps.clear();
}

/** The socket `srv` is attached to, if any. */
export const socketOf = (srv: Server): ServerSocket | undefined => coreOf(srv).outbox.socket;

/**
 * Tell clients apart by the kernel's table of sockets (`source`), and let the sender's
 * /proc/PID/fd and the socket's own last check (sendManyHeld) decide too: for a server on a real
 * kernel socket of the same protocol as `source` lists.
 */
export function useKernelSockets(srv: Server, source: SocketSource): void {
  const core = coreOf(srv);
  core.clients.source = source;
  core.clients.holds = procHolds;
  core.outbox.heldSends = true;
}

/** Tell clients apart by another table (the in-process hub's), unless one is set already. */
export function useSocketTable(srv: Server, source: SocketSource): void {
  coreOf(srv).clients.source = source;
}

/** Whether the server tells clients apart by a socket table. */
export const hasSocketTable = (srv: Server): boolean => !!coreOf(srv).clients.source;

/** The server's table of clients, for genl/sweep.ts. */
export const clientTableOf = (srv: Server): ClientTable => coreOf(srv).clients;

/** The server's registry of families (genl/registry.ts functions register and unregister). */
export const registryOf = (srv: Server): Registry => coreOf(srv).registry;

/** Options that may change while the server runs (tests and the daemon's configuration reload). */
export type MutableOptions = Pick<ServerOptions, 'ack' | 'maxBacklog' | 'maxBacklogBytes' | 'maxBacklogTotal' | 'stallMs' | 'maxDumps' | 'batchEvents'>;

/** Change options; returns the previous values of those given (to restore them). */
export function setServerOptions(srv: Server, o: MutableOptions): MutableOptions {
  const before: MutableOptions = {};
  const opts = coreOf(srv).opts as Record<string, unknown>;
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    (before as Record<string, unknown>)[k] = opts[k];
    opts[k] = k === 'ack' ? { ...(v as Partial<AckOptions>) } : v;
  }
  return before;
}

/** Whether `c` is still the socket on its port, by the kernel's table now (a gone client is dropped). */
export const clientPresent = (srv: Server, c: SocketClient): boolean => present(coreOf(srv).clients, c);

/** Flush what the handlers queued (replies, ACKs, dump chunks, staged notifications). */
export function flush(srv: Server): void {
  flushOutbox(coreOf(srv).outbox);
}

/** Whether `who` may run admin ops on this server (uid 0, or what it was configured with). */
export const isAdmin = (srv: Server, who: Credentials): boolean => coreOf(srv).opts.isAdmin(who);

/** The server's unicast subscriptions, for the functions of genl/subscriptions.ts. */
export const subscriptionsOf = (srv: Server): Subscriptions => coreOf(srv).subs;

/** The families this server serves, in id order. */
export const familiesOf = (srv: Server): Family[] => familiesIn(coreOf(srv).registry);

/** The client datagrams from `peer` are served as (made on first sight): for tests and tools. */
export function clientAt(srv: Server, peer: Peer): SocketClient {
  const t = coreOf(srv).clients;
  return verified(t, clientOf(t, peer.port, peer.uid, peer.gid, peer.pid));
}

/** Run `f` when a client is dropped (its socket closed or its port changed hands): free what it holds. */
export function onClientGone(srv: Server, f: (c: SocketClient) => void): void {
  coreOf(srv).clients.onGone.push(f);
}

/**
 * What the server holds for the client on `port` now: whether it knows a client there, whether a
 * dump runs, the datagrams and bytes queued, and whether the port has a queue at all (it may be
 * empty and still owe an NLMSG_OVERRUN).
 */
export function portState(srv: Server, port: number): { client: boolean; dump: boolean; queued: number; queuedBytes: number; owed: boolean } {
  const core = coreOf(srv);
  const c = core.clients.byPort.get(port);
  return { client: !!c, dump: !!c && core.dumps.has(c.id), ...portQueue(core.outbox, port) };
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

/** Nobody holds `port` any more (a send was refused): its client is dropped, with what it held. */
export function goneAway(srv: Server, port: number): void {
  portGone(coreOf(srv).outbox, port);
}

/**
 * Retry queues, then advance each running dump by a few chunks, so no client can starve the others.
 * Runs on its own from a timer; exported so tests and the fuzzer can drive dumps synchronously.
 */
export function pump(srv: Server): void {
  const core = coreOf(srv);
  if (!core.outbox.socket) return;
  flushOutbox(core.outbox);
  settleSends(core.outbox);
  const next = retryQueues(core.outbox);
  const more = pumpDumps(srv);
  flushOutbox(core.outbox);
  if (more) kick(core.sched);
  if (next < Infinity) kickAt(core.sched, next);
}

/** Drop every dump in progress (the fuzzer's way to end a run that cannot drain). */
export function abortDumps(srv: Server): void {
  coreOf(srv).dumps.clear();
}

/**
 * A snapshot of what the server holds and has done: counters, plus dumps, queues, subscribers,
 * clients and buffers now. Plain data, copied: changing it changes nothing.
 */
export interface ServerStats extends Counters {
  dumpsRunning: number;
  backlogPorts: number;
  backlogDatagrams: number;
  backlogBytes: number;
  /** Unicast subscribers per group id. */
  subscribers: Record<number, number>;
  clients: number;
  /** sock_diag tables read (genl/clients.ts). */
  socketQueries: number;
  /** Datagrams found to come from a socket that had closed (served detached). */
  staleDatagrams: number;
  encodeErrors: Record<string, number>;
  /** Sizes of the output and staging buffers, and bytes staged but not sent. */
  outBufferBytes: number;
  eventBufferBytes: number;
  eventBytesStaged: number;
  /** The socket's busy polling in µs (0: none), and the batches it read while polling. */
  busyPollUs: number;
  busyPolled: number;
}

export function serverStats(srv: Server): ServerStats {
  const core = coreOf(srv);
  const q = queueStats(core.outbox);
  const b = bufferBytes(core.outbox);
  return {
    ...core.counters, rejected: { ...core.counters.rejected }, dumpsRunning: core.dumps.size, backlogPorts: q.ports,
    backlogDatagrams: q.datagrams, backlogBytes: q.bytes,
    subscribers: subscriberCounts(core.subs), encodeErrors: { ...core.encodeErrors },
    clients: core.clients.byPort.size, socketQueries: core.clients.queries, staleDatagrams: core.clients.stale,
    outBufferBytes: b.out, eventBufferBytes: b.events, eventBytesStaged: b.eventsStaged,
    busyPollUs: core.outbox.socket?.busyPollUs ?? 0, busyPolled: core.outbox.socket?.busyPolled?.() ?? 0,
  };
}
