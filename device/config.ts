// Daemon configuration: a YAML file, or the embedded default of two devices. Validated with
// messages that name the offending key, since a typo here should never start a wrong emulator.
import { readFileSync } from 'fs';
// js-yaml, not the `yaml` package the spec loader uses (genl/ynl/load.ts needs its document API):
// the daemon parses its configuration at every start, and for 1024 devices `yaml` took 48 ms of
// CPU and 28 ms of collections against about 5 ms (docs/performance.md, start-up). js-yaml sets no
// limit on aliases: the checks below never expand a value they have not checked (shown, text).
import { CORE_SCHEMA, load } from 'js-yaml';
import { BLOCKS, SEVERITIES, type Block, type Severity } from './enums';
import { FORMATS } from './formats/record';
import type { RasFormat } from './gen/accel';
import type { EmulatorConfig } from './emulator';
import type { DeviceSpec, Versions } from './model';

export type DeviceConfig = Partial<Omit<DeviceSpec, 'rand' | 'index'>> & {
  index?: number;
  /** RAS payload formats the device offers (docs/formats.md); all when absent. */
  formats?: RasFormat[];
};

/** Background error rates in events per second, per block and severity. */
export type SimRates = Partial<Record<Block, Partial<Record<Severity, number>>>>;

export interface Config {
  emulator: Partial<EmulatorConfig>;
  devices: DeviceConfig[];
  simulate: SimRates | undefined;
  /** Telemetry tick period. */
  tickMs: number;
  /**
   * How ACKs are shaped. A userspace peer cannot see the client's NETLINK_EXT_ACK and
   * NETLINK_CAP_ACK socket options, so it answers as the kernel answers a socket with these set.
   */
  ack: { extAck: boolean; capAck: boolean };
  /**
   * `admin-group: NAME`: members of this group may run admin ops besides root. Judged by the
   * primary gid SCM_CREDENTIALS carries (supplementary groups are not sent); resolved from /etc/group.
   */
  adminGroup?: { name: string; gid: number };
}

export const DEFAULT_CONFIG_YAML = `# accelnl default configuration: two emulated accelerators.
seed: 1
tick-ms: 100
storm:
  burst: 10
  interval-ms: 5000
reset-ms: 50
devices:
  - {}
  - {}
# simulate:            # background errors, events per second (off unless given)
#   hbm: { correctable: 2, uncorrectable-nonfatal: 0.01 }
`;

export class ConfigError extends Error {}

const KEYS = new Set(['seed', 'tick-ms', 'storm', 'reset-ms', 'ce-retire-threshold', 'devices', 'simulate', 'netlink', 'admin-group']);
const DEV_KEYS = new Set(['index', 'bus-addr', 'serial', 'driver', 'vendor-id', 'device-id', 'mem-total', 'compute-units',
  'clock-max-mhz', 'power-limit-mw', 'rma-threshold', 'log-capacity', 'versions', 'formats']);

/**
 * A value as an error message shows it: a scalar as JSON, a list or mapping by its kind only. YAML
 * aliases make a small file a huge tree (each alias is the same object again), which printing would
 * expand; js-yaml has no alias limit, so nothing here walks a value it has not checked.
 */
function shown(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object' && v !== null) return 'a mapping';
  return JSON.stringify(v) ?? String(v);
}

/** A string, number or boolean as text (serials, versions); a list or mapping is refused. */
function text(v: unknown, where: string): string {
  if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new ConfigError(`${where}: expected a string, got ${shown(v)}`);
  return String(v);
}

function num(v: unknown, where: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new ConfigError(`${where}: expected a number from ${min} to ${max}, got ${shown(v)}`);
  }
  return v;
}

/** "16GiB", "512MiB", or a byte count. */
export function parseSize(v: unknown, where: string): bigint {
  if (typeof v === 'number' && Number.isInteger(v) && v > 0) return BigInt(v);
  const m = typeof v === 'string' ? /^(\d+)\s*(B|KiB|MiB|GiB|TiB)?$/.exec(v.trim()) : null;
  if (!m) throw new ConfigError(`${where}: expected a size like 16GiB, got ${shown(v)}`);
  const shift = { B: 0n, KiB: 10n, MiB: 20n, GiB: 30n, TiB: 40n }[(m[2] ?? 'B') as 'B'];
  return BigInt(m[1]) << shift;
}

function device(o: unknown, where: string): DeviceConfig {
  if (o === null || o === undefined) return {};
  if (typeof o !== 'object' || Array.isArray(o)) throw new ConfigError(`${where}: expected a mapping`);
  const r = o as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!DEV_KEYS.has(k)) throw new ConfigError(`${where}.${k}: unknown key`);
  const d: DeviceConfig = {};
  if (r.index !== undefined) d.index = num(r.index, `${where}.index`, 0, 1 << 20);
  if (r['bus-addr'] !== undefined) {
    const b = text(r['bus-addr'], `${where}.bus-addr`);
    if (!/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(b)) throw new ConfigError(`${where}.bus-addr: expected dddd:bb:ss.f, got "${b}"`);
    d.busAddr = b;
  }
  if (r.serial !== undefined) d.serial = text(r.serial, `${where}.serial`);
  if (r.driver !== undefined) d.driver = text(r.driver, `${where}.driver`);
  if (r['vendor-id'] !== undefined) d.vendorId = num(r['vendor-id'], `${where}.vendor-id`, 0, 0xffff);
  if (r['device-id'] !== undefined) d.deviceId = num(r['device-id'], `${where}.device-id`, 0, 0xffff);
  if (r['mem-total'] !== undefined) d.memTotal = parseSize(r['mem-total'], `${where}.mem-total`);
  if (r['compute-units'] !== undefined) d.computeUnits = num(r['compute-units'], `${where}.compute-units`, 1, 1 << 16);
  if (r['clock-max-mhz'] !== undefined) d.clockMaxMhz = num(r['clock-max-mhz'], `${where}.clock-max-mhz`, 1, 10000);
  if (r['power-limit-mw'] !== undefined) d.powerLimitMw = num(r['power-limit-mw'], `${where}.power-limit-mw`, 50000, 5_000_000);
  if (r['rma-threshold'] !== undefined) d.rmaThreshold = num(r['rma-threshold'], `${where}.rma-threshold`, 1, 1 << 20);
  if (r['log-capacity'] !== undefined) d.logCapacity = num(r['log-capacity'], `${where}.log-capacity`, 16, 1 << 24);
  if (r.formats !== undefined) {
    if (!Array.isArray(r.formats)) throw new ConfigError(`${where}.formats: expected a list of formats (${FORMATS.join(', ')})`);
    d.formats = r.formats.map((f, i) => {
      if (!FORMATS.includes(f as RasFormat)) throw new ConfigError(`${where}.formats[${i}]: unknown format ${shown(f)} (one of ${FORMATS.join(', ')})`);
      return f as RasFormat;
    });
  }
  if (r.versions !== undefined) {
    if (typeof r.versions !== 'object' || r.versions === null || Array.isArray(r.versions)) throw new ConfigError(`${where}.versions: expected a mapping (fixed, running, stored)`);
    const v = r.versions as Record<string, unknown>;
    const out: Partial<Versions> = {};
    for (const k of Object.keys(v)) {
      if (k !== 'fixed' && k !== 'running' && k !== 'stored') throw new ConfigError(`${where}.versions.${k}: expected fixed, running or stored`);
      if (typeof v[k] !== 'object' || v[k] === null || Array.isArray(v[k])) throw new ConfigError(`${where}.versions.${k}: expected a mapping of name to version`);
      out[k] = Object.fromEntries(Object.entries(v[k] as object).map(([a, b]) => [a, text(b, `${where}.versions.${k}.${a}`)]));
    }
    d.versions = out;
  }
  return d;
}

function rates(o: unknown): SimRates {
  if (typeof o !== 'object' || !o) throw new ConfigError('simulate: expected a mapping of block to severity rates');
  const out: SimRates = {};
  for (const [b, sev] of Object.entries(o)) {
    if (!BLOCKS.includes(b as Block)) throw new ConfigError(`simulate.${b}: unknown block (one of ${BLOCKS.join(', ')})`);
    const r: Partial<Record<Severity, number>> = {};
    for (const [s, v] of Object.entries(sev as object)) {
      if (!SEVERITIES.includes(s as Severity)) throw new ConfigError(`simulate.${b}.${s}: unknown severity (one of ${SEVERITIES.join(', ')})`);
      r[s as Severity] = num(v, `simulate.${b}.${s}`, 0, 1e6);
    }
    out[b as Block] = r;
  }
  return out;
}

/** Parse and validate a configuration (YAML text). Throws ConfigError. */
export function parseConfig(text: string): Config {
  let o: unknown;
  // The YAML 1.2 core schema: no timestamps, no yes/no booleans, no tags beyond the core ones
  // (docs/daemon.md says how this reads numbers).
  try { o = load(text, { schema: CORE_SCHEMA }); } catch (e) { throw new ConfigError(`not valid YAML: ${(e as Error).message}`); }
  // An empty file is a mistake more often than a wish for no devices: that takes `devices: []`.
  if (o === null || o === undefined) throw new ConfigError(`the configuration is empty: give a devices list (devices: [] for none; docs/daemon.md)`);
  if (typeof o !== 'object' || Array.isArray(o)) throw new ConfigError('expected a mapping at the top level');
  const r = o as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!KEYS.has(k)) throw new ConfigError(`${k}: unknown key`);
  const emulator: Partial<EmulatorConfig> = {};
  if (r.seed !== undefined) emulator.seed = num(r.seed, 'seed', 0, 0xffffffff);
  if (r['reset-ms'] !== undefined) emulator.resetMs = num(r['reset-ms'], 'reset-ms', 0, 600000);
  if (r['ce-retire-threshold'] !== undefined) emulator.ceRetireThreshold = num(r['ce-retire-threshold'], 'ce-retire-threshold', 1, 1e6);
  if (r.storm !== undefined) {
    if (typeof r.storm !== 'object' || r.storm === null || Array.isArray(r.storm)) throw new ConfigError('storm: expected a mapping (burst, interval-ms)');
    const s = r.storm as Record<string, unknown>;
    for (const k of Object.keys(s)) if (k !== 'burst' && k !== 'interval-ms') throw new ConfigError(`storm.${k}: unknown key (burst, interval-ms)`);
    if (s.burst !== undefined) emulator.stormBurst = num(s.burst, 'storm.burst', 1, 1e6);
    if (s['interval-ms'] !== undefined) emulator.stormIntervalMs = num(s['interval-ms'], 'storm.interval-ms', 1, 3.6e6);
  }
  // Everything else first, so that an error there is reported before a missing device list.
  const rest = {
    simulate: r.simulate === undefined || r.simulate === null ? undefined : rates(r.simulate),
    tickMs: r['tick-ms'] === undefined ? 100 : num(r['tick-ms'], 'tick-ms', 1, 60000),
    ack: ackOptions(r.netlink),
    ...(r['admin-group'] === undefined ? {} : { adminGroup: groupOf(r['admin-group']) }),
  };
  if (r.devices === undefined) throw new ConfigError('devices: missing: give a list (devices: [] for none, to hot-plug them with "accel dev add")');
  const list = r.devices;
  if (!Array.isArray(list)) throw new ConfigError('devices: expected a list');
  const devices = list.map((d, i) => device(d, `devices[${i}]`));
  unique(devices, 'bus-addr', (d) => d.busAddr);
  unique(devices, 'index', (d) => d.index);
  return { emulator, devices, ...rest };
}

/** Two devices may not share a bus address or an index: the error names both keys. */
function unique(devices: DeviceConfig[], key: string, of: (d: DeviceConfig) => unknown): void {
  const seen = new Map<unknown, number>();
  devices.forEach((d, i) => {
    const v = of(d);
    if (v === undefined) return;
    const j = seen.get(v);
    if (j !== undefined) throw new ConfigError(`devices[${i}].${key}: ${JSON.stringify(v)} is already used by devices[${j}].${key}`);
    seen.set(v, i);
  });
}

/** A group name to its gid, from /etc/group (the daemon runs where its clients do). */
function groupOf(v: unknown, file = '/etc/group'): { name: string; gid: number } {
  if (typeof v !== 'string' || !v) throw new ConfigError(`admin-group: expected a group name, got ${shown(v)}`);
  let text = '';
  try { text = readFileSync(file, 'utf8'); } catch (e) { throw new ConfigError(`admin-group: cannot read ${file}: ${(e as Error).message}`); }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === v && /^\d+$/.test(gid ?? '')) return { name, gid: Number(gid) };
  }
  throw new ConfigError(`admin-group: no group "${v}" in ${file}`);
}

function bool(v: unknown, where: string): boolean {
  if (typeof v !== 'boolean') throw new ConfigError(`${where}: expected true or false, got ${shown(v)}`);
  return v;
}

/** `netlink: { ext-ack: true, cap-ack: false }` (the defaults: a modern client's socket options). */
function ackOptions(o: unknown): Config['ack'] {
  const ack = { extAck: true, capAck: false };
  if (o === undefined || o === null) return ack;
  if (typeof o !== 'object' || Array.isArray(o)) throw new ConfigError('netlink: expected a mapping');
  for (const [k, v] of Object.entries(o)) {
    if (k === 'ext-ack') ack.extAck = bool(v, 'netlink.ext-ack');
    else if (k === 'cap-ack') ack.capAck = bool(v, 'netlink.cap-ack');
    else throw new ConfigError(`netlink.${k}: unknown key (ext-ack, cap-ack)`);
  }
  return ack;
}
