// Putting a server on the air: nlctrl registered, its notifications wired, a socket bound.
import { type Family } from './family';
import { ctrlNotifier, nlctrlFamily } from './nlctrl';
import { GENL_ID_CTRL } from './consts';
import { familiesIn, onFamilyChange, register, unregister } from './registry';
import {
  type Server, type ServerOptions, attach, createServer, detach, flush, hasSocketTable, receiveBatch, registryOf, useKernelSockets,
  useSocketTable,
} from './server';
import type { SocketSource } from './clients';
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
  const ctrl = register(registryOf(srv), nlctrlFamily(srv));
  onFamilyChange(registryOf(srv), ctrlNotifier(srv, ctrl));
  return srv;
}

/**
 * Bind `srv` to a socket: the real NETLINK_USERSOCK port by default, or what `open` returns (the
 * in-process hub). Throws on EADDRINUSE, so a second daemon on the same port refuses to start.
 */
/**
 * The longest datagram the server reads whole; a longer one gets EMSGSIZE. Any datagram a client
 * with the default send buffer can send fits (net.core.wmem_default 212992 allows 212960 bytes),
 * so a bulk write can be one datagram of several attributes (an attribute holds < 64 KiB). Each of
 * the 64 receive slots is this long, but only the pages a datagram writes become resident.
 */
export const SERVER_MAX_MESSAGE = 256 << 10;

export function serve(srv: Server, o: {
  port: number;
  open?: (onBatch: (b: Batch) => void) => NlSocket;
  /** Which of these ports still exist, for a custom `open` without a socket table. */
  alive?: (ports: Set<number>) => Set<number> | undefined;
  /** The transport's socket table (the hub's hubSockets); default sock_diag for real sockets. */
  sockets?: SocketSource;
  /** The real socket's busy polling, in µs (OpenOptions.busyPollUs; 0 or absent: none). */
  busyPollUs?: number;
}): ServerBinding {
  const onBatch = (b: Batch): void => receiveBatch(srv, b);
  const socket = o.open ? o.open(onBatch) : openSocket({
    protocol: NETLINK_USERSOCK, port: o.port, credentials: true, onBatch, rcvbuf: 4 << 20, sndbuf: 4 << 20, maxMessage: SERVER_MAX_MESSAGE,
    busyPollUs: o.busyPollUs,
    onError: (e) => { process.emitWarning(`netlink socket: ${e.message}`); },
  });
  attach(srv, socket);
  // Clients are told apart by the kernel's socket table (sock_diag), unless the transport is not
  // the kernel's (the in-process hub brings its own table, or `alive`).
  if (o.sockets) useSocketTable(srv, o.sockets);
  else if (!o.open && !hasSocketTable(srv)) {
    // The kernel's sockets: /proc/PID/fd tells who holds one, and the socket's sendManyHeld checks
    // them as it sends.
    useKernelSockets(srv, () => querySockets(NETLINK_USERSOCK)?.table);
  }
  const sweeper = startSweeper(srv, { alive: o.alive ?? (o.open && !hasSocketTable(srv) ? () => undefined : undefined) });
  return {
    srv, socket, sweeper,
    close() {
      // A clean shutdown says so, as the kernel does when a module unloads: DELFAMILY (and
      // DELMCAST_GRP) on nlctrl's notify group for every family but nlctrl, sent before the socket goes.
      const reg = registryOf(srv);
      for (const f of familiesIn(reg)) if (f.id !== GENL_ID_CTRL) unregister(reg, f);
      flush(srv);
      sweeper.stop(); socket.close(); detach(srv);
    },
  };
}

export function addFamily(srv: Server, fam: Family): Family {
  return register(registryOf(srv), fam);
}
