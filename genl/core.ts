// What a Server is: the opaque handle other layers and tests hold, and the parts the server modules
// share behind it (genl/server.ts ties them together; dispatch, dumps and notify work on them).
// It imports only types, so the server modules import it instead of server.ts (which imports them):
// no import cycle.
import type { Extack, View } from '../attrs';
import type { AckOptions } from './ack';
import type { ClientTable, SocketClient, SocketSource } from './clients';
import type { Counters } from './counters';
import type { Credentials, DumpCtx, DumpHalf } from './family';
import type { Outbox } from './outbox';
import type { Registry } from './registry';
import type { DumpResult } from './result';
import type { Schedule } from './schedule';
import type { Subscriptions } from './subscriptions';

export interface ServerOptions {
  /**
   * Overrides of the ACK shape for every socket. Without them each client is answered as its
   * socket asked: capped when sock_diag shows NETLINK_CAP_ACK, extack TLVs unless its in-band
   * control message said NETLINK_EXT_ACK = 0 (docs/transport.md "ACK shape per client socket").
   */
  ack?: Partial<AckOptions>;
  /** Dump datagram size: the kernel's first chunk on a fresh socket is NLMSG_GOODSIZE (3776). */
  dumpChunk?: number;
  /**
   * Who may run admin ops, and see what a family shows admins only, by the credentials the kernel
   * attested: a request's sender, or a subscribed client's (uid and gid as its first datagram
   * carried them; a family's audience asks for each unicast copy of an event). Only `uid` and
   * `gid` are given. Default: uid 0. Unknown credentials (-1) are never admin.
   */
  isAdmin?: (who: Credentials) => boolean;
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
  /**
   * Where the server writes warning lines, one per call, without the newline (default: stderr).
   * Today: one line per raced send (genl/outbox.ts raceLine).
   */
  log?: (line: string) => void;
}

declare const SERVER: unique symbol;

/**
 * A family server, as other layers and tests see it: an opaque handle with no fields. Its parts
 * belong to the modules above; use the functions of this file (and serverStats for what it holds).
 * `npx tsc` proves that nothing else reads them: only the server modules see ServerCore.
 */
export interface Server {
  readonly [SERVER]: 'genl server';
}

/**
 * What a Server holds: for the server modules only (dispatch, dumps, notify, serve, nlctrl...),
 * through coreOf. Not exported from genl/index.ts.
 */
export interface ServerCore extends Server {
  readonly registry: Registry;
  readonly opts: Required<Omit<ServerOptions, 'registry' | 'sockets'>>;
  /** Clients (sockets) by port; dropping one frees what it holds (dumps, queue, subscriptions, hooks). */
  readonly clients: ClientTable;
  /** Everything sent and waiting to be sent, with the socket (genl/outbox.ts). */
  readonly outbox: Outbox;
  /** Dumps in progress, by client id (genl/dumps.ts). */
  readonly dumps: Dumps;
  /** Unicast subscribers per group id and their formats (genl/subscriptions.ts). */
  readonly subs: Subscriptions;
  /** Dispatch's extack for the message being handled (cleared per message). */
  readonly ext: Extack;
  /** Dispatch's view over the socket's receive area (Batch.area), made once per area. */
  readonly rx: { area?: View };
  /** Notification encoders that threw, by "family/format" (genl/notify.ts), and those warned about. */
  readonly encodeErrors: Record<string, number>;
  readonly encodeWarned: Set<string>;
  readonly counters: Counters;
  readonly sched: Schedule;
}

/** What createServer fills in (all of ServerCore but the brand, which exists only for the type checker). */
export type ServerParts = Omit<ServerCore, typeof SERVER>;

/** The parts of `srv`: for the server modules only (see ServerCore). */
export const coreOf = (srv: Server): ServerCore => srv as ServerCore;

/** A dump in progress (genl/dumps.ts). */
export interface DumpState {
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

/** Dumps in progress, by client id (one per socket). */
export type Dumps = Map<number, DumpState>;
