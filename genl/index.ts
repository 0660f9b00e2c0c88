// genl/: netlink and generic netlink messages, ACKs and dumps, the nlctrl family, a family server
// and a client library, over real AF_NETLINK sockets or an in-process hub.
export * from './consts';
export * from './message';
export * from './ack';
export * from './family';
export * from './registry';
// The server's public face: every export of server.ts but ServerCore and coreOf (its parts, for
// the server modules only), so that a Server is opaque to other layers and tests.
export {
  type Counters, type ServerSocket, OVERRUN_LOST_REPLIES, receive, receiveBatch, notify, notifyClients, type Fill,
  type ServerOptions, type Server, createServer, attach, detach, socketOf, useKernelSockets, useSocketTable,
  hasSocketTable, registryOf, type MutableOptions, setServerOptions, clientPresent, flush, isAdmin,
  subscriptionsOf, familiesOf, clientAt, onClientGone, portState, ACCELNL_MSG_SOCKOPT, goneAway, pump, abortDumps,
  type ServerStats, serverStats,
} from './server';
export * from './nlctrl';
export * from './serve';
export * from './client';
export * from './explain';
export * from './inproc';
export {
  openSocket, parsePort, nativeStatus, MAX_BUSY_POLL_US, REBUILD, sendEach, type NlSocket, type Batch, type OpenOptions,
} from './socket';
export * as ynl from './ynl';
export * from './sweep';
export * from './result';
export * from './clients';
export * from './subscriptions';
