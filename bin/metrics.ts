// The exporter's metrics, in Prometheus's conventions (docs/metrics.md): snake_case names under
// accel_, base units (hertz, celsius, watts, joules, bytes, seconds, ratios), counters ending in
// _total, an info metric carrying the identity labels, and no counter that ever decreases while
// the exporter runs: a daemon value that goes down (a `ras clear aggregate`, a daemon restart that
// zeroed it) is taken as a counter reset and added on top, never subtracted.
import * as crypto from 'crypto';
import { Counter, Gauge, Registry } from 'prom-client';
import { BLOCKS, REPORTERS, SEVERITIES, STATES } from '../device/enums';
import type { Accel, Reporter, Server } from '../device/gen/accel';

export interface Dev { dev: Accel; ras?: Accel; health?: Accel }
/** What the exporter itself saw, and the daemon's server counters as of the last refresh. */
export interface Stats { live: number; recovered: number; up: boolean; reconnects: number; server?: Server }

const HEALTH_VALUE: Record<string, number> = { ok: 0, warning: 1, critical: 2 };
/** Labels every device series has: enough to tell devices apart; the rest is on accel_device_info. */
const LABELS = ['accel', 'device', 'pci_bus_id'] as const;
const n = (v: number | bigint | undefined): number => Number(v ?? 0);

/**
 * A stable UUID for a device that has none of its own: name-based (RFC 4122 version 5) from its
 * serial number, in a namespace of our own, so that it survives daemon and exporter restarts.
 */
const NAMESPACE = Buffer.from('6a1f6e0c2b7d4d4e9c1a7c6e5b3d2f10', 'hex');
export function deviceUuid(serial: string): string {
  const h = crypto.createHash('sha1').update(NAMESPACE).update(serial).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `ACCEL-${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

const versionOf = (d: Accel, kind: string, name: string): string =>
  d.version?.find((v) => String(v.kind) === kind && v.name === name)?.value ?? '';

/** Running totals that never go down: a lower reading is a reset, and counts from zero again. */
export function monotonic() {
  const seen = new Map<string, { last: number; total: number }>();
  return {
    value(key: string, raw: number): number {
      const s = seen.get(key);
      if (!s) { seen.set(key, { last: raw, total: raw }); return raw; }
      s.total += raw >= s.last ? raw - s.last : raw;
      s.last = raw;
      return s.total;
    },
    /** The running total so far (0 before any reading). */
    total(key: string): number { return seen.get(key)?.total ?? 0; },
    /** Forget a device's series (it was removed): if it comes back, it starts again. */
    forget(prefix: string): void { for (const k of [...seen.keys()]) if (k.startsWith(prefix)) seen.delete(k); },
  };
}
export type Monotonic = ReturnType<typeof monotonic>;

export function buildMetrics(devs: Map<number, Dev>, stats: Stats, mono: Monotonic, hostname: string): Registry {
  const reg = new Registry();
  const labelsOf = (d: Dev): Record<string, string> =>
    ({ accel: String(d.dev.devIndex), device: d.dev.devName ?? '', pci_bus_id: d.dev.busAddr ?? '' });
  type Set = (v: number, extra?: Record<string, string>) => void;
  type Fill = (d: Dev, set: Set) => void;
  const metric = (kind: 'gauge' | 'counter', name: string, help: string, extra: string[], fill: Fill): void => {
    const labelNames = [...LABELS, ...extra];
    const collect = function (this: Gauge | Counter): void {
      this.reset();
      if (!stats.up) return;  // device series only while connected: none are stale
      for (const d of devs.values()) {
        const base = labelsOf(d);
        fill(d, (v, x = {}) => {
          if (this instanceof Gauge) { this.set({ ...base, ...x }, v); return; }
          const key = `${d.dev.busAddr ?? d.dev.devIndex}|${name}|${JSON.stringify(x)}`;
          (this as Counter).inc({ ...base, ...x }, mono.value(key, v));
        });
      }
    };
    if (kind === 'gauge') new Gauge({ name, help, labelNames, registers: [reg], collect });
    else new Counter({ name, help, labelNames, registers: [reg], collect });
  };
  const tel = (kind: 'gauge' | 'counter', name: string, help: string, f: (a: Accel) => number): void =>
    metric(kind, name, help, [], (d, set) => set(f(d.dev)));

  new Gauge({
    name: 'accel_up', help: 'Whether the exporter is connected to the accel daemon (1) or not (0).', registers: [reg],
    collect() { this.set(stats.up ? 1 : 0); },
  });
  metric('gauge', 'accel_device_info', 'Device identity; always 1. Join on accel or pci_bus_id.',
    ['uuid', 'serial', 'model', 'firmware', 'driver', 'Hostname'], (d, set) => set(1, {
      uuid: d.dev.serial ? deviceUuid(d.dev.serial) : '', serial: d.dev.serial ?? '',
      model: versionOf(d.dev, 'fixed', 'board.id'), firmware: versionOf(d.dev, 'running', 'fw'),
      driver: d.dev.driver ?? '', Hostname: hostname,
    }));

  tel('gauge', 'accel_clock_hertz', 'Core clock frequency.', (a) => n(a.clockMhz) * 1e6);
  tel('gauge', 'accel_clock_max_hertz', 'Highest core clock frequency.', (a) => n(a.clockMaxMhz) * 1e6);
  tel('gauge', 'accel_memory_clock_hertz', 'Memory clock frequency.', (a) => n(a.memClockMhz) * 1e6);
  tel('gauge', 'accel_temperature_celsius', 'Device temperature.', (a) => n(a.tempMc) / 1000);
  tel('gauge', 'accel_power_watts', 'Power draw.', (a) => n(a.powerMw) / 1000);
  tel('gauge', 'accel_power_limit_watts', 'Power limit.', (a) => n(a.powerLimitMw) / 1000);
  tel('counter', 'accel_energy_joules_total', 'Energy consumed.', (a) => n(a.energyMj) / 1000);
  tel('gauge', 'accel_utilization_ratio', 'Compute utilization, from 0 to 1.', (a) => n(a.utilPct) / 100);
  tel('gauge', 'accel_memory_used_bytes', 'Device memory in use.', (a) => n(a.memUsed));
  tel('gauge', 'accel_memory_total_bytes', 'Device memory.', (a) => n(a.memTotal));
  tel('gauge', 'accel_clock_throttle_reasons', 'Throttle reasons bitmask (NVML clock-event reason bits).',
    (a) => (typeof a.throttle === 'number' ? a.throttle : 0));
  tel('counter', 'accel_resets_total', 'Device resets.', (a) => n(a.resets));
  tel('gauge', 'accel_health', 'Overall health: 0 ok, 1 warning, 2 critical.', (a) => HEALTH_VALUE[String(a.health)] ?? 0);
  metric('gauge', 'accel_state', 'Device state: 1 for the current state, 0 for the others.', ['state'],
    (d, set) => { for (const s of STATES) set(d.dev.state === s ? 1 : 0, { state: s }); });

  const counters = (which: 'volatile' | 'aggregate') => (d: Dev, set: Set): void => {
    const have = new Map((d.ras?.counter ?? []).map((c) => [`${c.block}/${c.severity}`, c[which]]));
    for (const block of BLOCKS) for (const severity of SEVERITIES) set(n(have.get(`${block}/${severity}`)), { block, severity });
  };
  metric('counter', 'accel_ras_errors_total', 'RAS errors over the device lifetime (aggregate counters), per block and severity.',
    ['block', 'severity'], counters('aggregate'));
  metric('gauge', 'accel_ras_errors_volatile', 'RAS errors since the last device reset or counter clear (goes down on either).',
    ['block', 'severity'], counters('volatile'));
  const mem = (name: string, help: string, f: (m: NonNullable<Accel['memory']>) => number): void =>
    metric('gauge', name, help, [], (d, set) => set(f(d.ras?.memory ?? {})));
  mem('accel_retired_rows_active', 'Retired (remapped) memory rows in effect.', (m) => n(m.rowsActive));
  mem('accel_retired_rows_pending', 'Retired memory rows waiting for a reset.', (m) => n(m.rowsPending));
  mem('accel_bad_pages', 'Bad memory pages found.', (m) => m.badPage?.length ?? 0);
  mem('accel_rma', 'Whether the device should be replaced (retired rows reached the RMA threshold): 1 or 0.', (m) => n(m.rma));

  const reporters = (f: (r: Reporter) => number) => (d: Dev, set: Set): void => {
    const have = new Map((d.health?.reporter ?? []).map((r) => [r.name, r]));
    for (const name of REPORTERS) { const r = have.get(name); set(r ? f(r) : 0, { reporter: name }); }
  };
  metric('gauge', 'accel_health_reporter_state', 'Health reporter state: 0 healthy, 1 error.', ['reporter'], reporters((r) => (r.state === 'error' ? 1 : 0)));
  metric('counter', 'accel_health_reporter_errors_total', 'Errors reported to a health reporter.', ['reporter'], reporters((r) => n(r.errCount)));
  metric('counter', 'accel_health_reporter_recoveries_total', 'Recoveries of a health reporter.', ['reporter'], reporters((r) => n(r.recoverCount)));

  new Counter({
    name: 'accel_exporter_ras_events_total', help: 'RAS events the exporter received, live or read back from the log after a loss.',
    labelNames: ['how'], registers: [reg],
    collect() { this.reset(); this.inc({ how: 'live' }, stats.live); this.inc({ how: 'recovered' }, stats.recovered); },
  });
  new Counter({
    name: 'accel_exporter_reconnects_total', help: 'Times the exporter found the daemon again after losing it.', registers: [reg],
    collect() { this.reset(); this.inc(stats.reconnects); },
  });

  // The daemon's netlink server (stats-get, read every --interval). While the daemon is away its
  // counters keep their last total (a counter never drops: 0 and back would read as a reset and a
  // burst to rate()), and the gauges read 0: nothing is queued or subscribed at a daemon that is
  // not there. (An unlabelled prom-client metric cannot be absent: reset() leaves `name 0`.)
  const server = (kind: 'gauge' | 'counter', name: string, help: string, f: (s: Server) => number | bigint | undefined): void => {
    const collect = function (this: Gauge | Counter): void {
      this.reset();
      const up = !!(stats.server && stats.up);
      if (this instanceof Gauge) { if (up) this.set(n(f(stats.server!))); return; }
      (this as Counter).inc(up ? mono.value(`server|${name}`, n(f(stats.server!))) : mono.total(`server|${name}`));
    };
    if (kind === 'gauge') new Gauge({ name, help, registers: [reg], collect });
    else new Counter({ name, help, registers: [reg], collect });
  };
  server('counter', 'accel_server_messages_total', 'Netlink messages the daemon received.', (s) => s.messages);
  server('counter', 'accel_server_dropped_total', 'Datagrams dropped for clients whose receive buffer stayed full.', (s) => s.dropped);
  server('counter', 'accel_server_overruns_total', 'NLMSG_OVERRUN markers sent to clients that lost datagrams.', (s) => s.overruns);
  server('counter', 'accel_server_stalled_total', 'Client ports released after taking nothing for the stall time.', (s) => s.stalled);
  server('counter', 'accel_server_raced_sends_total', 'Datagrams whose port another socket held right after the send (each may have reached it; each is logged).', (s) => s.racedSends);
  server('counter', 'accel_server_busy_polled_total', 'Batches of requests the daemon read while busy polling (accel daemon --busy-poll): wake-ups saved.', (s) => s.busyPolled);
  server('gauge', 'accel_server_backlog_bytes', 'Bytes queued for clients whose receive buffer is full.', (s) => s.backlogBytes);
  server('gauge', 'accel_server_subscriptions', 'Unicast subscriptions (subscribe op).', (s) => s.subscriptions);
  const errTotals = new Map<string, number>();  // kept while the daemon is away, like the counters above
  new Counter({
    name: 'accel_server_errors_total', help: 'Requests the daemon answered with an error, by errno.', labelNames: ['errno'], registers: [reg],
    collect() {
      this.reset();
      if (!stats.up) { for (const [errno, total] of errTotals) this.inc({ errno }, total); return; }
      for (const r of stats.server?.rejected ?? []) {
        const errno = r.errnoName ?? '?';
        const total = mono.value(`server|errors|${errno}`, n(r.count));
        errTotals.set(errno, total);
        this.inc({ errno }, total);
      }
    },
  });
  return reg;
}
