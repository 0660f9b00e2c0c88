// Finding sockets that went away. A netlink peer that closes its socket says nothing; the kernel
// only tells a sender with ECONNREFUSED. So the server also looks, every so often, at every client
// it knows (genl/clients.ts) against the kernel's socket table, and drops those whose socket is
// gone or whose port another socket holds now; dropping frees what they held.
import * as fs from 'fs';
import { type SocketClient, drop, sweepClients } from './clients';
import { type Server, clientTableOf } from './server';

/** Port ids bound on `protocol` right now, or undefined when /proc/net/netlink cannot be read. */
export function boundPorts(protocol: number): Set<number> | undefined {
  let text: string;
  try { text = fs.readFileSync('/proc/net/netlink', 'utf8'); } catch { return undefined; }
  const out = new Set<number>();
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 2 && Number(f[1]) === protocol) out.add(Number(f[2]) >>> 0);
  }
  return out;
}

export interface Sweeper {
  timer: NodeJS.Timeout;
  /** Run one sweep now (tests). */
  run(): void;
  stop(): void;
}

/**
 * Every `everyMs` (default 1 s), drop the clients whose socket is gone. The server's socket table
 * decides (sock_diag); `alive`, when given, decides by port instead (a transport without one).
 */
export function startSweeper(srv: Server, o: { everyMs?: number; alive?: (ports: Set<number>) => Set<number> | undefined } = {}): Sweeper {
  const run = (): void => {
    const t = clientTableOf(srv);
    if (!t.byPort.size) return;
    if (!o.alive) { sweepClients(t); return; }
    const bound = o.alive(new Set(t.byPort.keys()));
    if (!bound) return;
    for (const c of [...t.byPort.values()] as SocketClient[]) if (!bound.has(c.port)) drop(t, c);
  };
  const timer = setInterval(run, o.everyMs ?? 1000);
  timer.unref();
  return { timer, run, stop: () => clearInterval(timer) };
}
