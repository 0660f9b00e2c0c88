// The daemon: emulated devices from a configuration, served over netlink as the accel and drm-ras
// families next to nlctrl, with durable RAS state when given a state directory.
import { type ServerBinding, type ServerOptions, type SocketSource, addFamily, createGenlServer, familiesOf, onClientGone, serve } from '../genl';
import type { Batch, NlSocket } from '../genl/socket';
import { type Clock, realClock } from './clock';
import { type Config, DEFAULT_CONFIG_YAML, parseConfig } from './config';
import { accelFamily } from './families/accel';
import { drmRasFamily } from './families/drm-ras';
import { devlinkFamily } from './families/devlink';
import { type GrpcService, startGrpc } from './formats/grpc';
import { formatSupport, maskOf } from './formats/support';
import { jobHandlers, wireJobEvents } from './families/jobs';
import { type BoMaps, closeBoMaps, newBoMaps } from './bomap';
import { type Engine, newEngine, releaseClient, stopEngine, takeBusy } from './jobs';
import { type Persistence, closePersistence, openPersistence, syncPersistence } from './persist';
import { type Runtime, createRuntime, startTicking, stopRuntime } from './runtime';

export interface DaemonOptions {
  port: number;
  /** YAML configuration text; the embedded default (two devices) when absent. */
  config?: string;
  /** Overrides the configuration's seed. */
  seed?: number;
  /** Where durable RAS state lives; none means in memory only. */
  stateDir?: string;
  /** Run the telemetry/simulation tick (default true). */
  tick?: boolean;
  clock?: Clock;
  server?: ServerOptions;
  /** Serve the gRPC RAS service on this address (host:port; port 0 picks one). */
  grpc?: string;
  /** Open the socket yourself (tests: the in-process hub). */
  open?: (onBatch: (b: Batch) => void) => NlSocket;
  /** Which ports still exist, with a custom `open` and no socket table (the hub's hubAlive). */
  alive?: (ports: Set<number>) => Set<number> | undefined;
  /** The socket table of a custom `open` (the hub's hubSockets): tells clients apart. */
  sockets?: SocketSource;
  /** Compute worker threads (default: the cores available; 0 runs jobs on the main thread). */
  computeThreads?: number;
  /** false: no mapped BOs (bo-map answers EOPNOTSUPP), as when the shm addon is not built. */
  shm?: boolean;
  /** Busy polling of the netlink socket, in µs (genl/socket.ts busyPollUs; 0 or absent: none). */
  busyPollUs?: number;
}

export interface Daemon {
  cfg: Config;
  rt: Runtime;
  engine: Engine;
  /** Mapped BOs: the socket that hands their memfds over (device/bomap.ts). */
  maps: BoMaps;
  served: ServerBinding;
  persistence: Persistence | undefined;
  /** The gRPC service, when asked for: `ready` gives the endpoint. */
  grpc?: GrpcService;
  /** The ready line: families, ids, port. */
  ready: string;
  close(): void;
}

/** Start everything. Throws ConfigError for a bad configuration, and EADDRINUSE when the port is taken. */
export function startDaemon(o: DaemonOptions): Daemon {
  const cfg = parseConfig(o.config ?? DEFAULT_CONFIG_YAML);
  if (o.seed !== undefined) cfg.emulator.seed = o.seed;
  const rt = createRuntime(cfg, o.clock ?? realClock);
  // Configured format subsets: the runtime adds the configured devices in order.
  const devs = [...rt.emu.devices.values()];
  cfg.devices.forEach((c, i) => { if (c.formats && devs[i]) formatSupport(rt).subset.set(devs[i], maskOf(c.formats)); });
  const persistence = o.stateDir ? openPersistence(rt.emu, o.stateDir) : undefined;
  const adminGid = cfg.adminGroup?.gid;
  // Root, or the configured admin group (unknown credentials, -1, are never admin).
  const isAdmin = adminGid === undefined ? undefined : (x: { uid: number; gid: number }) => x.uid === 0 || (x.uid >= 0 && x.gid === adminGid);
  // ACKs follow each client socket's options (sock_diag's CAP_ACK, the wrap shim's EXT_ACK); the
  // configuration only overrides: cap-ack: true caps every error ACK, ext-ack: false drops all TLVs.
  const ack = { ...(cfg.ack.capAck ? { capAck: true } : {}), ...(cfg.ack.extAck ? {} : { extAck: false }) };
  const srv = createGenlServer({ ack, ...(isAdmin ? { isAdmin } : {}), ...o.server });
  let served: ServerBinding;
  try {
    served = serve(srv, { port: o.port, open: o.open, alive: o.alive, sockets: o.sockets, busyPollUs: o.busyPollUs });
  } catch (e) {
    if (persistence) closePersistence(rt.emu, persistence);
    stopRuntime(rt);
    throw e;
  }
  const s = { srv, rt };
  const engine = newEngine(rt.emu, { threads: o.computeThreads, ...(o.shm === false ? { shm: null } : {}) });
  const maps = newBoMaps(engine);
  const accel = addFamily(srv, accelFamily(s, jobHandlers(s, engine, maps), engine.shm ? [] : ['bo-map']));
  addFamily(srv, drmRasFamily(s));
  addFamily(srv, devlinkFamily(s));
  wireJobEvents(s, accel, engine);
  rt.busySource = (dev, dtMs) => takeBusy(engine, dev, dtMs);
  // Buffer objects and queued jobs belong to their client (socket): freed when it is dropped (its
  // socket closed, or its port changed hands; see genl/clients.ts).
  onClientGone(srv, (c) => releaseClient(engine, c.id));
  if (o.tick !== false) {
    startTicking(rt);
    if (persistence) {
      // Background errors are made durable once per tick; injections are synced before their ACK.
      const t = setInterval(() => syncPersistence(persistence), cfg.tickMs);
      t.unref();
      rt.emu.timers.add(t as unknown as NodeJS.Timeout);
    }
  }
  const hex = (n: number) => `0x${n.toString(16)}`;
  const fams = familiesOf(srv).map((f) => `${f.name} ${hex(f.id!)}`).join(', ');
  const ready = `accel daemon ready: NETLINK_USERSOCK port ${hex(o.port)}, families ${fams}, ` +
    `${rt.emu.devices.size === 1 ? '1 device' : `${rt.emu.devices.size} devices`} (${[...rt.emu.devices.values()].map((d) => d.name).join(' ')})` +
    (served.socket.credentials ? '' : '; no sender credentials, admin ops refused') +
    (engine.shm || o.shm === false ? '' : '; no shm addon, bo-map left out') +
    (o.busyPollUs ? `; busy polling ${o.busyPollUs} µs` : '');
  const d: Daemon = {
    cfg, rt, served, persistence, ready, engine, maps,
    close() {
      d.grpc?.close();
      closeBoMaps(maps);
      void stopEngine(engine);
      served.close();
      stopRuntime(rt);
      if (persistence) closePersistence(rt.emu, persistence);
    },
  };
  if (o.grpc !== undefined) {
    // Its package is loaded only now (device/formats/grpc.ts); a daemon that cannot have it stops whole.
    try { d.grpc = startGrpc(rt, o.grpc); } catch (e) { d.close(); throw new GrpcError(o.grpc, e); }
  }
  return d;
}

/** The gRPC service could not start (its package missing or broken): nothing of the daemon is left running. */
export class GrpcError extends Error {
  constructor(readonly address: string, cause: unknown) {
    // The first line: a missing module's message goes on with its require stack.
    super(`cannot serve gRPC on ${address}: ${String((cause as Error)?.message ?? cause).split('\n')[0]}`, { cause });
  }
}

