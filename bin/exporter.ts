// accel exporter: Prometheus metrics (bin/metrics.ts, docs/metrics.md). RAS counters, memory
// health, health reporters and device state are re-read only when an event says they changed (a
// subscription to the config and ras groups, loss-free, that follows the daemon across restarts);
// telemetry, which has no events, and the few changes without one (a counter clear) are refreshed
// on a timer. Scrapes read the cache and never touch the daemon. Without a daemon the exporter
// stays up, reports accel_up 0 with no device series, and keeps trying to connect.
import * as http from 'http';
import * as os from 'os';
import { type AccelClient, type AccelEvent, type ConnectionEvent, connectAccel } from '../device/client';
import { type Accel, CMD } from '../device/gen/accel';
import { type Args, OpError, UsageError, keyword, parseU32 } from './args';
import type { Ctx } from './context';
import { plural } from './output';
import { type Dev, type Monotonic, type Stats, buildMetrics, monotonic } from './metrics';

/** HOST:PORT, [V6]:PORT or PORT (127.0.0.1); ":PORT" listens on every address. */
export function parseListen(s: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:]*)):(\d+)$/i.exec(s) ?? /^()()(\d+)$/.exec(s);
  if (!m || Number(m[3]) > 65535) throw new UsageError(`Invalid listen address "${s}": expected HOST:PORT, [ADDR]:PORT or PORT.`);
  const host = m[1] ?? m[2];
  return { host: host === '' && s.startsWith(':') ? undefined : host || '127.0.0.1', port: Number(m[3]) };
}

/** Keeps `devs` current: event-driven re-reads, coalesced per device, and telemetry on a timer. */
function track(c: AccelClient, devs: Map<number, Dev>, stats: Stats, mono: Monotonic) {
  const drop = (i: number): void => {
    const d = devs.get(i);
    if (d) mono.forget(`${d.dev.busAddr ?? d.dev.devIndex}|`);
    devs.delete(i);
  };
  const pending = new Map<number, Set<'dev' | 'ras' | 'health'>>();
  let scheduled = false;
  // A failed request says nothing about the connection (the subscription's watch does): no value.
  const ok = <T>(p: Promise<T>): Promise<T | undefined> => p.then((v) => v, () => undefined);
  const refresh = async (i: number, what: Set<string>): Promise<void> => {
    const d = devs.get(i);
    if (!d) return;
    if (what.has('dev')) { const [a] = (await ok(c.do(CMD.DEV_GET, { devIndex: i }))) ?? []; if (a) d.dev = a; }
    if (what.has('ras')) { const [a] = (await ok(c.do(CMD.RAS_GET, { devIndex: i }))) ?? []; if (a) d.ras = a; }
    if (what.has('health')) { const [a] = (await ok(c.do(CMD.HEALTH_GET, { devIndex: i }))) ?? []; if (a) d.health = a; }
  };
  const want = (i: number, ...what: ('dev' | 'ras' | 'health')[]): void => {
    let s = pending.get(i);
    if (!s) pending.set(i, (s = new Set()));
    for (const w of what) s.add(w);
    if (scheduled) return;
    scheduled = true;
    setImmediate(async () => {
      scheduled = false;
      const batch = [...pending];
      pending.clear();
      for (const [i, w] of batch) await refresh(i, w);
    });
  };
  const all = async (): Promise<void> => {
    const list = await ok(c.dump(CMD.DEV_GET));
    // An answer that arrives after the daemon was declared lost must not bring its devices back.
    if (!list || !stats.up) return;
    const seen = new Set<number>();
    for (const a of list) {
      seen.add(a.devIndex!);
      const d = devs.get(a.devIndex!);
      if (d) d.dev = a;
      else { devs.set(a.devIndex!, { dev: a }); want(a.devIndex!, 'ras', 'health'); }
    }
    for (const i of [...devs.keys()]) if (!seen.has(i)) drop(i);
    // Changes with no event of their own (a counter clear) are caught here, at the same interval.
    for (const r of (await ok(c.dump(CMD.RAS_GET))) ?? []) { const x = devs.get(r.devIndex!); if (x) x.ras = r; }
    for (const h of (await ok(c.dump(CMD.HEALTH_GET))) ?? []) { const x = devs.get(h.devIndex!); if (x) x.health = h; }
    // The server's counters, from daemons that serve stats-get (their absence is not "down").
    if (c.family.ops.some((o) => o.id === CMD.STATS_GET)) {
      const server = (await c.do(CMD.STATS_GET).catch(() => [] as Accel[]))[0]?.server;
      if (stats.up) stats.server = server;
    }
  };
  const onEvent = (e: AccelEvent): void => {
    const i = e.attrs.devIndex;
    if (i === undefined) return;
    switch (e.cmd) {
      case 'ras-event-ntf':
        if (e.recovered) stats.recovered++; else stats.live++;
        want(i, 'ras', 'dev');
        break;
      case 'health-ntf': want(i, 'health', 'dev'); break;
      case 'dev-state-ntf': want(i, 'dev', 'ras', 'health'); break;
      case 'dev-add-ntf': devs.set(i, { dev: e.attrs }); want(i, 'ras', 'health'); break;
      case 'dev-del-ntf': drop(i); break;
    }
  };
  return { all, onEvent };
}

export async function runExporter(ctx: Ctx, a: Args): Promise<void> {
  let listen = '127.0.0.1:9400';
  let interval = 1000;
  while (a.more) {
    const w = a.next()!;
    switch (keyword(w.replace(/^--?/, ''), ['listen', 'interval'])) {
      case 'listen': listen = a.value(w, 'an address'); break;
      case 'interval': interval = Math.max(100, parseU32(a.value(w, 'milliseconds'), 'interval')); break;
      default: throw new UsageError(`Unknown exporter option "${w}".\nUsage: accel exporter [ --listen ADDR ] [ --interval MSEC ]`);
    }
  }
  const addr = parseListen(listen);
  const devs = new Map<number, Dev>();
  const stats: Stats = { live: 0, recovered: 0, up: false, reconnects: 0 };
  const mono = monotonic();
  const reg = buildMetrics(devs, stats, mono, os.hostname());
  const server = http.createServer((req, res) => {
    if (req.url?.split('?')[0] === '/metrics') {
      reg.metrics().then((body) => { res.writeHead(200, { 'Content-Type': reg.contentType }); res.end(body); },
        (e: Error) => { res.writeHead(500); res.end(`${e.message}\n`); });
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('accel exporter: metrics are at /metrics\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new OpError(`Cannot listen on ${listen}: ${e.message}`)));
    server.listen(addr.port, addr.host, () => resolve());
  });
  const bound = server.address() as { address: string; port: number };
  const host = bound.address.includes(':') ? `[${bound.address}]` : bound.address;
  const where = `http://${host}:${bound.port}/metrics`;

  // Connect, and connect again whenever the daemon is lost; serve all the while.
  let c: AccelClient | undefined;
  let sub: Awaited<ReturnType<AccelClient['subscribe']>> | undefined;
  let t: ReturnType<typeof track> | undefined;
  let stopped = false;
  let announced = false;
  const say = (s: string): void => { process.stdout.write(`accel exporter: ${s}\n`); };
  const lost = (): void => {
    stats.up = false;
    for (const i of [...devs.keys()]) devs.delete(i); // no stale series: what is not known now is not served
    stats.server = undefined;
  };
  let connecting = false;
  const connect = async (): Promise<void> => {
    if (connecting) return;
    connecting = true;
    try {
      const client = await connectAccel({ serverPort: ctx.port, timeoutMs: 3000 });
      c = client;
      t = track(client, devs, stats, mono);
      const onConnection = (e: ConnectionEvent): void => {
        if (e.state === 'down') { lost(); say(`lost the daemon (${e.reason}); reporting accel_up 0 until it is back`); return; }
        stats.up = true;
        stats.reconnects++;
        say('the daemon is back');
        void t?.all();
      };
      sub = await client.subscribe(['config', 'ras'], t.onEvent, { reconnect: true, onConnection });
      stats.up = true;
      await t.all();
      say(`${plural(devs.size, 'device')}, ${sub.mode} events; serving ${where}`);
      announced = true;
    } catch {
      c?.close();
      c = undefined; t = undefined; sub = undefined;
      if (!announced) { say(`no daemon at netlink port 0x${ctx.port.toString(16)} yet; serving ${where} with accel_up 0`); announced = true; }
    } finally {
      connecting = false;
    }
  };
  await connect();
  const timer = setInterval(() => {
    if (stopped) return;
    if (!c) void connect();
    else if (stats.up) void t?.all();
  }, interval);
  await new Promise<void>((resolve) => { process.once('SIGINT', resolve); process.once('SIGTERM', resolve); });
  stopped = true;
  clearInterval(timer);
  server.close();
  await sub?.close().catch(() => undefined);
  c?.close();
}
