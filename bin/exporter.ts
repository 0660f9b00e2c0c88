// accel exporter: Prometheus metrics in the spirit of dcgm-exporter (ACCEL_FI_DEV_* names, one
// series per device with gpu-style labels). RAS counters, memory health, health reporters and
// device state are re-read only when an event says they changed (a subscription to the config and
// ras groups, loss-free); telemetry, which has no events, and the few changes without one (a
// counter clear) are refreshed on a timer. Scrapes read the cache and never touch the daemon.
// Every series is always present: a missing value is 0.
import * as http from 'http';
import * as os from 'os';
import { Counter, Gauge, Registry } from 'prom-client';
import type { AccelClient, AccelEvent } from '../device/client';
import { BLOCKS, REPORTERS, SEVERITIES, STATES } from '../device/enums';
import { type Accel, CMD, type Reporter, type Server } from '../device/gen/accel';
import { type Args, OpError, UsageError, keyword, parseU32 } from './args';
import type { Ctx } from './context';

interface Dev { dev: Accel; ras?: Accel; health?: Accel }
/** What the exporter itself saw, and the daemon's server counters as of the last scrape. */
interface Stats { live: number; recovered: number; up: boolean; server?: Server }

const HEALTH_VALUE: Record<string, number> = { ok: 0, warning: 1, critical: 2 };
const LABELS = ['accel', 'device', 'pci_bus_id', 'serial', 'driver', 'Hostname'] as const;
const n = (v: number | bigint | undefined): number => Number(v ?? 0);

/** HOST:PORT, [V6]:PORT or PORT (127.0.0.1); ":PORT" listens on every address. */
export function parseListen(s: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:]*)):(\d+)$/i.exec(s) ?? /^()()(\d+)$/.exec(s);
  if (!m || Number(m[3]) > 65535) throw new UsageError(`Invalid listen address "${s}": expected HOST:PORT, [ADDR]:PORT or PORT.`);
  const host = m[1] ?? m[2];
  return { host: host === '' && s.startsWith(':') ? undefined : host || '127.0.0.1', port: Number(m[3]) };
}

export function buildMetrics(devs: Map<number, Dev>, stats: Stats): Registry {
  const reg = new Registry();
  const hostname = os.hostname();
  const labelsOf = (d: Dev): Record<string, string> => ({
    accel: String(d.dev.devIndex), device: d.dev.devName ?? '', pci_bus_id: d.dev.busAddr ?? '',
    serial: d.dev.serial ?? '', driver: d.dev.driver ?? '', Hostname: hostname,
  });
  type Fill = (d: Dev, set: (v: number, extra?: Record<string, string>) => void) => void;
  const metric = (kind: 'gauge' | 'counter', name: string, help: string, extra: string[], fill: Fill): void => {
    const labelNames = [...LABELS, ...extra];
    const collect = function (this: Gauge | Counter): void {
      this.reset();
      for (const d of devs.values()) {
        const base = labelsOf(d);
        fill(d, (v, x = {}) => {
          if (this instanceof Gauge) this.set({ ...base, ...x }, v);
          else (this as Counter).inc({ ...base, ...x }, v);
        });
      }
    };
    if (kind === 'gauge') new Gauge({ name, help, labelNames, registers: [reg], collect });
    else new Counter({ name, help, labelNames, registers: [reg], collect });
  };
  const tel = (name: string, help: string, f: (a: Accel) => number, kind: 'gauge' | 'counter' = 'gauge'): void =>
    metric(kind, name, help, [], (d, set) => set(f(d.dev)));

  tel('ACCEL_FI_DEV_CLOCK', 'Core clock frequency (in MHz).', (a) => n(a.clockMhz));
  tel('ACCEL_FI_DEV_MEM_CLOCK', 'Memory clock frequency (in MHz).', (a) => n(a.memClockMhz));
  tel('ACCEL_FI_DEV_TEMP', 'Device temperature (in C).', (a) => n(a.tempMc) / 1000);
  tel('ACCEL_FI_DEV_POWER_USAGE', 'Power draw (in W).', (a) => n(a.powerMw) / 1000);
  tel('ACCEL_FI_DEV_POWER_LIMIT', 'Power limit (in W).', (a) => n(a.powerLimitMw) / 1000);
  tel('ACCEL_FI_DEV_TOTAL_ENERGY_CONSUMPTION', 'Total energy consumption since boot (in mJ).', (a) => n(a.energyMj), 'counter');
  tel('ACCEL_FI_DEV_UTIL', 'Compute utilization (in %).', (a) => n(a.utilPct));
  tel('ACCEL_FI_DEV_FB_USED', 'Device memory used (in MiB).', (a) => n(a.memUsed) / 2 ** 20);
  tel('ACCEL_FI_DEV_FB_FREE', 'Device memory free (in MiB).', (a) => (n(a.memTotal) - n(a.memUsed)) / 2 ** 20);
  tel('ACCEL_FI_DEV_CLOCK_THROTTLE_REASONS', 'Throttle reasons bitmask (NVML clock-event reason bits).',
    (a) => (typeof a.throttle === 'number' ? a.throttle : 0));
  tel('ACCEL_FI_DEV_RESETS', 'Device resets since the daemon started.', (a) => n(a.resets), 'counter');
  tel('ACCEL_FI_DEV_HEALTH', 'Overall health: 0 ok, 1 warning, 2 critical.', (a) => HEALTH_VALUE[String(a.health)] ?? 0);
  metric('gauge', 'ACCEL_FI_DEV_STATE', 'Device state (1 for the current state, 0 for the others).', ['state'],
    (d, set) => { for (const s of STATES) set(d.dev.state === s ? 1 : 0, { state: s }); });

  const counters = (which: 'volatile' | 'aggregate') => (d: Dev, set: (v: number, x?: Record<string, string>) => void): void => {
    const have = new Map((d.ras?.counter ?? []).map((c) => [`${c.block}/${c.severity}`, c[which]]));
    for (const block of BLOCKS) for (const severity of SEVERITIES) set(n(have.get(`${block}/${severity}`)), { block, severity });
  };
  metric('counter', 'ACCEL_FI_DEV_RAS_VOL_TOTAL', 'RAS errors since the last reset or clear, per block and severity.', ['block', 'severity'], counters('volatile'));
  metric('counter', 'ACCEL_FI_DEV_RAS_AGG_TOTAL', 'RAS errors over the device lifetime, per block and severity.', ['block', 'severity'], counters('aggregate'));
  const mem = (name: string, help: string, f: (m: NonNullable<Accel['memory']>) => number): void =>
    metric('gauge', name, help, [], (d, set) => set(f(d.ras?.memory ?? {})));
  mem('ACCEL_FI_DEV_RETIRED_ROWS_ACTIVE', 'Retired (remapped) memory rows in effect.', (m) => n(m.rowsActive));
  mem('ACCEL_FI_DEV_RETIRED_ROWS_PENDING', 'Retired memory rows waiting for a reset.', (m) => n(m.rowsPending));
  mem('ACCEL_FI_DEV_BAD_PAGES', 'Bad memory pages found.', (m) => m.badPage?.length ?? 0);
  mem('ACCEL_FI_DEV_RMA', 'Whether the device should be replaced (retired rows reached the RMA threshold).', (m) => n(m.rma));

  const reporters = (f: (r: Reporter) => number) => (d: Dev, set: (v: number, x?: Record<string, string>) => void): void => {
    const have = new Map((d.health?.reporter ?? []).map((r) => [r.name, r]));
    for (const name of REPORTERS) { const r = have.get(name); set(r ? f(r) : 0, { reporter: name }); }
  };
  metric('gauge', 'ACCEL_FI_DEV_HEALTH_REPORTER_STATE', 'Health reporter state: 0 healthy, 1 error.', ['reporter'], reporters((r) => (r.state === 'error' ? 1 : 0)));
  metric('counter', 'ACCEL_FI_DEV_HEALTH_REPORTER_ERRORS', 'Errors reported to a health reporter.', ['reporter'], reporters((r) => n(r.errCount)));
  metric('counter', 'ACCEL_FI_DEV_HEALTH_REPORTER_RECOVERIES', 'Recoveries of a health reporter.', ['reporter'], reporters((r) => n(r.recoverCount)));

  new Counter({
    name: 'ACCEL_EXP_RAS_EVENTS_TOTAL', help: 'RAS events received, live or recovered from the log after a loss.',
    labelNames: ['how'], registers: [reg],
    collect() { this.reset(); this.inc({ how: 'live' }, stats.live); this.inc({ how: 'recovered' }, stats.recovered); },
  });
  new Gauge({
    name: 'ACCEL_EXP_DAEMON_UP', help: 'Whether the last request to the daemon succeeded.', registers: [reg],
    collect() { this.set(stats.up ? 1 : 0); },
  });

  // The daemon's netlink server (stats-get, read every --interval; absent from daemons without it).
  const server = (kind: 'gauge' | 'counter', name: string, help: string, f: (s: Server) => number | bigint | undefined): void => {
    const collect = function (this: Gauge | Counter): void {
      this.reset();
      if (!stats.server) return;
      if (this instanceof Gauge) this.set(n(f(stats.server))); else (this as Counter).inc(n(f(stats.server)));
    };
    if (kind === 'gauge') new Gauge({ name, help, registers: [reg], collect });
    else new Counter({ name, help, registers: [reg], collect });
  };
  server('counter', 'ACCEL_SERVER_MESSAGES_TOTAL', 'Netlink messages the daemon received.', (s) => s.messages);
  server('counter', 'ACCEL_SERVER_DROPPED_TOTAL', 'Datagrams dropped from clients whose receive buffer stayed full.', (s) => s.dropped);
  server('counter', 'ACCEL_SERVER_OVERRUNS_TOTAL', 'NLMSG_OVERRUN markers sent to clients that lost datagrams.', (s) => s.overruns);
  server('counter', 'ACCEL_SERVER_STALLED_TOTAL', 'Client ports released after taking nothing for the stall time.', (s) => s.stalled);
  server('gauge', 'ACCEL_SERVER_BACKLOG_BYTES', 'Bytes queued for clients whose receive buffer is full.', (s) => s.backlogBytes);
  server('gauge', 'ACCEL_SERVER_SUBSCRIPTIONS', 'Unicast subscriptions (subscribe op).', (s) => s.subscriptions);
  new Counter({
    name: 'ACCEL_SERVER_ERRORS_TOTAL', help: 'Requests the daemon answered with an error, by errno.', labelNames: ['errno'], registers: [reg],
    collect() { this.reset(); for (const r of stats.server?.rejected ?? []) this.inc({ errno: r.errnoName ?? '?' }, n(r.count)); },
  });
  return reg;
}

/** Keeps `devs` current: event-driven re-reads, coalesced per device, and telemetry on a timer. */
function track(c: AccelClient, devs: Map<number, Dev>, stats: Stats) {
  const pending = new Map<number, Set<'dev' | 'ras' | 'health'>>();
  let scheduled = false;
  const ok = <T>(p: Promise<T>): Promise<T | undefined> => p.then((v) => { stats.up = true; return v; }, () => { stats.up = false; return undefined; });
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
    if (!list) return;
    const seen = new Set<number>();
    for (const a of list) {
      seen.add(a.devIndex!);
      const d = devs.get(a.devIndex!);
      if (d) d.dev = a;
      else { devs.set(a.devIndex!, { dev: a }); want(a.devIndex!, 'ras', 'health'); }
    }
    for (const i of [...devs.keys()]) if (!seen.has(i)) devs.delete(i);
    // Changes with no event of their own (a counter clear) are caught here, at the same interval.
    for (const r of (await ok(c.dump(CMD.RAS_GET))) ?? []) { const x = devs.get(r.devIndex!); if (x) x.ras = r; }
    for (const h of (await ok(c.dump(CMD.HEALTH_GET))) ?? []) { const x = devs.get(h.devIndex!); if (x) x.health = h; }
    // The server's counters, from daemons that serve stats-get (their absence is not "down").
    if (c.family.ops.some((o) => o.id === CMD.STATS_GET)) {
      stats.server = (await c.do(CMD.STATS_GET).catch(() => [] as Accel[]))[0]?.server;
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
      case 'dev-del-ntf': devs.delete(i); break;
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
  const c = await ctx.accel();
  const devs = new Map<number, Dev>();
  const stats: Stats = { live: 0, recovered: 0, up: true };
  const t = track(c, devs, stats);
  const sub = await c.subscribe(['config', 'ras'], t.onEvent);
  await t.all();
  const reg = buildMetrics(devs, stats);
  const timer = setInterval(() => { void t.all(); }, interval);
  const server = http.createServer((req, res) => {
    if (req.url?.split('?')[0] === '/metrics') {
      reg.metrics().then((body) => { res.writeHead(200, { 'Content-Type': reg.contentType }); res.end(body); },
        (e: Error) => { res.writeHead(500); res.end(`${e.message}\n`); });
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('accel exporter: metrics are at /metrics\n');
    }
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new OpError(`Cannot listen on ${listen}: ${e.message}`)));
      server.listen(addr.port, addr.host, () => resolve());
    });
  } catch (e) {
    // Leave nothing running (timer, subscription), or the process would never exit.
    clearInterval(timer);
    await sub.close().catch(() => undefined);
    throw e;
  }
  const bound = server.address() as { address: string; port: number };
  const host = bound.address.includes(':') ? `[${bound.address}]` : bound.address;
  process.stdout.write(`accel exporter: ${devs.size === 1 ? '1 device' : `${devs.size} devices`}, ${sub.mode} events; serving http://${host}:${bound.port}/metrics\n`);
  await new Promise<void>((resolve) => { process.once('SIGINT', resolve); process.once('SIGTERM', resolve); });
  clearInterval(timer);
  server.close();
  await sub.close().catch(() => undefined);
}
