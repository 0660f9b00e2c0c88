// Putting a server on the air: nlctrl registered, its notifications wired, a socket bound.
import { type Family } from './family';
import { ctrlNotifier, nlctrlFamily } from './nlctrl';
import { GENL_ID_CTRL } from './consts';
import { register, unregister } from './registry';
import { type Server, type ServerOptions, attach, createServer, flush, receiveBatch } from './server';
import { type SocketSource, procHolds } from './clients';
import { querySockets } from './sockdiag';
import { type Batch, type NlSocket, NETLINK_USERSOCK, openSocket } from './socket';
import { type Sweeper, startSweeper } from './sweep';

/** A server bound to its socket (what serve() returns). */
export interface ServerBinding {
  srv: Server;
  socket: NlSocket;
  /** Drops the clients whose socket went away (see sweep.ts). */
  sweeper: Sweeper;
  close(): void;
}

/** A server with nlctrl (id 0x10) and its notify group, ready for more families. */
export function createGenlServer(o: ServerOptions = {}): Server {
  const srv = createServer(o);
  const ctrl = register(srv.registry, nlctrlFamily(srv));
  srv.registry.listeners.push(ctrlNotifier(srv, ctrl));
  return srv;
}

/**
 * Bind `srv` to a socket: the real NETLINK_USERSOCK port by default, or what `open` returns (the
 * in-process hub). Throws on EADDRINUSE, so a second daemon on the same port refuses to start.
 */
export function serve(srv: Server, o: {
  port: number;
  open?: (onBatch: (b: Batch) => void) => NlSocket;
  /** Which of these ports still exist, for a custom `open` without a socket table. */
  alive?: (ports: Set<number>) => Set<number> | undefined;
  /** The transport's socket table (the hub's hubSockets); default sock_diag for real sockets. */
  sockets?: SocketSource;
}): ServerBinding {
  const onBatch = (b: Batch): void => receiveBatch(srv, b);
  const socket = o.open ? o.open(onBatch) : openSocket({
    protocol: NETLINK_USERSOCK, port: o.port, credentials: true, onBatch, rcvbuf: 4 << 20, sndbuf: 4 << 20,
    onError: (e) => { process.emitWarning(`netlink socket: ${e.message}`); },
  });
  attach(srv, socket);
  // Clients are told apart by the kernel's socket table (sock_diag), unless the transport is not
  // the kernel's (the in-process hub brings its own table, or `alive`).
  if (o.sockets) srv.clients.source = o.sockets;
  else if (!o.open && !srv.clients.source) {
    srv.clients.source = () => querySockets(NETLINK_USERSOCK)?.table;
    srv.clients.holds = procHolds; // the kernel's sockets: /proc/PID/fd tells who holds one
    srv.heldSends = true;          // and the socket's sendManyHeld can check them as it sends
  }
  const sweeper = startSweeper(srv, { alive: o.alive ?? (o.open && !srv.clients.source ? () => undefined : undefined) });
  return {
    srv, socket, sweeper,
    close() {
      // A clean shutdown says so, as the kernel does when a module unloads: DELFAMILY (and
      // DELMCAST_GRP) on nlctrl's notify group for every family but nlctrl, sent before the socket goes.
      for (const f of [...srv.registry.byId.values()]) if (f.id !== GENL_ID_CTRL) unregister(srv.registry, f);
      flush(srv);
      sweeper.stop(); socket.close(); srv.socket = undefined; srv.dumps.clear(); srv.backlog.clear(); srv.backlogBytes = 0;
    },
  };
}

export function addFamily(srv: Server, fam: Family): Family {
  return register(srv.registry, fam);
}
