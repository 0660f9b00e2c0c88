// genl/: netlink and generic netlink messages, ACKs and dumps, the nlctrl family, a family server
// and a client library, over real AF_NETLINK sockets or an in-process hub.
export * from './consts';
export * from './message';
export * from './ack';
export * from './family';
export * from './registry';
export * from './server';
export * from './nlctrl';
export * from './serve';
export * from './client';
export * from './inproc';
export {
  openSocket, parsePort, nativeStatus, sendEach, type NlSocket, type Batch, type OpenOptions,
} from './socket';
export * as ynl from './ynl';
export * from './sweep';
export * from './result';
export * from './clients';
export * from './subscriptions';
