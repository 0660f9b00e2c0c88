// In-process transport for tests: a "kernel" that routes datagrams between sockets by port id and
// to multicast groups, with USERSOCK's quirks (ECONNREFUSED after a group send, groups 1..32).
import { ECONNREFUSED, EINVAL, EPERM } from '../attrs/errno';
import type { SocketTable } from './sockdiag';
import { type Batch, type NlSocket, type OpenOptions, sendEach } from './socket';

export interface Hub {
  sockets: Map<number, HubSocket>;
  /** Group number → member ports. */
  groups: Map<number, Set<number>>;
  nextPort: number;
  /** Each socket's "inode": a new number per socket, so a rebound port is told apart. */
  nextInode: number;
}

interface HubSocket extends NlSocket {
  uid: number;
  inode: number;
  deliver(data: Uint8Array, from: number, groups: number, uid: number): void;
}

export const newHub = (): Hub => ({ sockets: new Map(), groups: new Map(), nextPort: 1000, nextInode: 1 });

/** The hub's socket table, shaped as sock_diag's (genl/sockdiag.ts), for the server's client table. */
export const hubSockets = (hub: Hub) => (): SocketTable =>
  new Map([...hub.sockets].map(([port, s]) => [port, { port, inode: s.inode, cookie: BigInt(s.inode), flags: 0, dstPort: 0, groups: 0 }]));

/** The hub's answer to "which of these ports exist", for the server's sweeper. */
export const hubAlive = (hub: Hub) => (ports: Set<number>): Set<number> =>
  new Set([...ports].filter((p) => hub.sockets.has(p)));

export interface InprocOptions extends Pick<OpenOptions, 'port' | 'onBatch'> {
  /** Credentials this socket presents; 0 (root) by default. */
  uid?: number;
}

/** Open a socket on the hub. Delivery is asynchronous (next macrotask), like a real socket. */
export function openInproc(hub: Hub, o: InprocOptions): NlSocket {
  const port = o.port ?? hub.nextPort++;
  if (hub.sockets.has(port)) {
    const e = new Error(`bind: EADDRINUSE (port ${port})`) as Error & { code: string };
    e.code = 'EADDRINUSE';
    throw e;
  }
  const uid = o.uid ?? 0;
  let closed = false;
  const queue: { data: Uint8Array; from: number; groups: number; uid: number }[] = [];
  let pending = false;
  const drain = (): void => {
    pending = false;
    if (closed) return;
    const items = queue.splice(0);
    const batch: Batch = {
      count: items.length,
      data: (i) => Buffer.from(items[i].data.buffer, items[i].data.byteOffset, items[i].data.byteLength),
      port: (i) => items[i].from, groups: (i) => items[i].groups, uid: (i) => items[i].uid,
      gid: (i) => items[i].uid, pid: () => process.pid, truncated: () => 0,
    };
    o.onBatch(batch);
  };
  const send = (data: Uint8Array, to: number, groups = 0): number => {
    if (closed) return -EINVAL;
    const copy = data.slice();
    if (groups) {
      for (let g = 1; g <= 32; g++) {
        if (!(groups & (1 << (g - 1)))) continue;
        for (const p of hub.groups.get(g) ?? []) if (p !== port) hub.sockets.get(p)?.deliver(copy, port, 1 << (g - 1), uid);
      }
      if (to === 0) return -ECONNREFUSED; // USERSOCK has no kernel socket at port 0
    }
    const dst = hub.sockets.get(to >>> 0);
    if (!dst) return -ECONNREFUSED;
    dst.deliver(copy, port, 0, uid);
    return 0;
  };
  const sock: HubSocket = {
    port, backend: 'native', credentials: true, uid, inode: hub.nextInode++,
    deliver(data, from, groups, fromUid) {
      queue.push({ data, from, groups, uid: fromUid });
      if (!pending) { pending = true; setImmediate(drain); }
    },
    send,
    sendMany: (data, spans, count = spans.length / 4, results) => sendEach(send, data, spans, count, results),
    addMembership(g) {
      if (g < 1 || g > 32) throw Object.assign(new Error('setsockopt: EINVAL'), { code: 'EINVAL', errno: -EINVAL });
      if (uid !== 0) throw Object.assign(new Error('setsockopt: EPERM'), { code: 'EPERM', errno: -EPERM });
      let s = hub.groups.get(g);
      if (!s) hub.groups.set(g, (s = new Set()));
      s.add(port);
    },
    dropMembership(g) { hub.groups.get(g)?.delete(port); },
    setOption: () => 0,
    close() {
      closed = true;
      hub.sockets.delete(port);
      for (const s of hub.groups.values()) s.delete(port);
    },
    ref() {}, unref() {},
  };
  hub.sockets.set(port, sock);
  return sock;
}
