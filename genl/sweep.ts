// Finding ports that went away. A netlink peer that closes its socket says nothing; the kernel
// only tells a sender with ECONNREFUSED. So the server also looks, every so often, at the ports it
// holds state for (subscriptions, dumps, backlogs, and what families register: buffer objects...)
// and releases those that no longer exist. On real sockets the truth is /proc/net/netlink.
import * as fs from 'fs';
import { type Server, goneAway } from './server';

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

/** Ports a family keeps state for, beyond the server's own (it asks each holder every sweep). */
export type PortHolder = () => Iterable<number>;

export interface Sweeper {
  holders: PortHolder[];
  timer: NodeJS.Timeout;
  /** Run one sweep now (tests). */
  run(): void;
  stop(): void;
}

/**
 * Every `everyMs`, release state of ports that are not bound any more. `alive` decides per port
 * (default: /proc/net/netlink for `protocol`).
 */
export function startSweeper(srv: Server, o: { everyMs?: number; protocol?: number; alive?: (ports: Set<number>) => Set<number> | undefined } = {}): Sweeper {
  const holders: PortHolder[] = [];
  const run = (): void => {
    const wanted = new Set<number>();
    for (const s of srv.subscribers.values()) for (const p of s) wanted.add(p);
    for (const p of srv.dumps.keys()) wanted.add(p);
    for (const p of srv.backlog.keys()) wanted.add(p);
    for (const h of holders) for (const p of h()) wanted.add(p);
    if (!wanted.size) return;
    const bound = o.alive ? o.alive(wanted) : boundPorts(o.protocol ?? 2);
    if (!bound) return;
    for (const p of wanted) if (!bound.has(p)) goneAway(srv, p);
  };
  const timer = setInterval(run, o.everyMs ?? 1000);
  timer.unref();
  return { holders, timer, run, stop: () => clearInterval(timer) };
}
