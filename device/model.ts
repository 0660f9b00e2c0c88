// One emulated accelerator: identity, versions, telemetry, state, RAS counters, memory health,
// health reporters and its event log. Plain data; behaviour lives in ras.ts, health.ts, telemetry.ts.
import { BLOCKS, REPORTERS, SEVERITIES, type DevState, type ReporterName, type VersionKind } from './enums';
import { type EventLog, newLog } from './log';

export interface Versions { fixed: Record<string, string>; running: Record<string, string>; stored: Record<string, string> }

export interface Telemetry {
  clockMhz: number;
  clockMaxMhz: number;
  memClockMhz: number;
  /** Millidegrees Celsius. */
  tempMc: number;
  powerMw: number;
  powerLimitMw: number;
  /** 0..100 */
  utilPct: number;
  /** THROTTLE bits currently active. */
  throttle: number;
  /** Total energy in millijoules, a counter like DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION. */
  energyMj: number;
}

export interface Reporter {
  name: ReporterName;
  healthy: boolean;
  errCount: bigint;
  recoverCount: bigint;
  gracePeriodMs: number;
  autoRecover: boolean;
  autoDump: boolean;
  /** The last report's message and when it came (monotonic ms), and the last recovery. */
  lastMsg: string;
  lastErrorMs: number;
  lastRecoverMs: number;
  /** A stored dump: key/value pairs captured at report time, and its wall-clock time. */
  dump: [string, string][] | undefined;
  dumpTsNs: bigint;
}

export interface Memory {
  /** Retired (remapped) rows in use, and those waiting for a reset to take effect. */
  rowsActive: number;
  rowsPending: number;
  /** Bad page addresses, in the order they were found; at most BAD_PAGE_CAPACITY. */
  badPages: bigint[];
  /** Retired rows at which the device should be replaced. */
  rmaThreshold: number;
  rma: boolean;
}

/** Saturating 64-bit RAS counters: [block][severity] for volatile (since reset) and aggregate (lifetime). */
export interface Counters {
  volatile: BigUint64Array;
  aggregate: BigUint64Array;
}

export interface StormState {
  windowStartMs: number;
  emitted: number;
  folded: number;
  firstNs: bigint;
  lastNs: bigint;
}

export interface Device {
  index: number;
  name: string;
  path: string;
  busName: string;
  busAddr: string;
  driver: string;
  vendorId: number;
  deviceId: number;
  serial: string;
  boardSerial: string;
  versions: Versions;
  memTotal: bigint;
  memUsed: bigint;
  computeUnits: number;
  tel: Telemetry;
  state: DevState;
  counters: Counters;
  mem: Memory;
  reporters: Map<ReporterName, Reporter>;
  log: EventLog;
  /** Correctable-storm limiter state per block. */
  storms: (StormState | undefined)[];
  /** Per-device seeded randomness (telemetry noise, background errors). */
  rand: () => number;
  /** Bumped on every change a dump could observe (NLM_F_DUMP_INTR). */
  generation: number;
  /**
   * Bumped by every change of what the device's dev-get record shows, telemetry ticks included
   * (generation leaves those out: a dump spanning a tick is not interrupted). The encoded record
   * is cached against it (device/families/records.ts): a path that changes a shown field without
   * touch(d) serves a stale record, which test/device-model.test.ts looks for.
   */
  changes: number;
  /** Idle/background load fraction the telemetry model sees besides jobs. */
  load: number;
  resets: number;
}

export const NCOUNTERS = BLOCKS.length * SEVERITIES.length;
export const counterIndex = (block: number, severity: number): number => block * SEVERITIES.length + severity;
export const U64_MAX = 0xffffffffffffffffn;

/**
 * The bad page table's capacity, as a board's RAS EEPROM table has one (amdgpu reports a page it
 * could not record as failed to reserve). Every page is an attribute of the device record's memory
 * nest (12 bytes each), which must fit nla_len: 4096 pages are 48 KiB. Past 5400 or so, every
 * dev-get and ras-get of the device failed to encode. A board is RMA long before (threshold 64).
 */
export const BAD_PAGE_CAPACITY = 4096;

export interface DeviceSpec {
  index: number;
  busAddr: string;
  serial: string;
  driver?: string;
  vendorId?: number;
  deviceId?: number;
  memTotal?: bigint;
  computeUnits?: number;
  clockMaxMhz?: number;
  powerLimitMw?: number;
  rmaThreshold?: number;
  logCapacity?: number;
  versions?: Partial<Versions>;
  rand: () => number;
}

export function newReporter(name: ReporterName): Reporter {
  return {
    name, healthy: true, errCount: 0n, recoverCount: 0n, gracePeriodMs: name === 'fw' ? 0 : 500,
    autoRecover: name !== 'fw', autoDump: true, lastMsg: '', lastErrorMs: -Infinity, lastRecoverMs: -Infinity,
    dump: undefined, dumpTsNs: 0n,
  };
}

export function newDevice(s: DeviceSpec): Device {
  const v = s.versions ?? {};
  const clockMaxMhz = s.clockMaxMhz ?? 1800;
  return {
    index: s.index, name: `accel${s.index}`, path: `/dev/accel/accel${s.index}`, busName: 'pci', busAddr: s.busAddr,
    driver: s.driver ?? 'accelnl_emu', vendorId: s.vendorId ?? 0x1ded, deviceId: s.deviceId ?? 0xa100,
    serial: s.serial, boardSerial: `BRD-${s.serial}`,
    versions: {
      fixed: v.fixed ?? { 'asic.id': '0xa100', 'asic.rev': '1', 'board.id': 'ACNL-EMU-1' },
      running: v.running ?? { 'fw': '1.4.2', 'fw.mgmt': '2.0.7', 'fw.bootloader': '0.9.1' },
      stored: v.stored ?? { 'fw': '1.4.2', 'fw.mgmt': '2.0.7' },
    },
    memTotal: s.memTotal ?? 16n << 30n, memUsed: 0n, computeUnits: s.computeUnits ?? 64,
    tel: {
      clockMhz: Math.round(clockMaxMhz / 4), clockMaxMhz, memClockMhz: 1600, tempMc: 35000, powerMw: 45000,
      powerLimitMw: s.powerLimitMw ?? 300000, utilPct: 0, throttle: 0x1, energyMj: 0,
    },
    state: 'operational',
    counters: { volatile: new BigUint64Array(NCOUNTERS), aggregate: new BigUint64Array(NCOUNTERS) },
    mem: { rowsActive: 0, rowsPending: 0, badPages: [], rmaThreshold: s.rmaThreshold ?? 64, rma: false },
    reporters: new Map(REPORTERS.map((r) => [r, newReporter(r)])),
    log: newLog(s.logCapacity ?? 65536), storms: new Array(BLOCKS.length), rand: s.rand,
    generation: 0, changes: 0, load: 0, resets: 0,
  };
}

/** Note a change of what the device's record shows (see Device.changes). */
export function touch(d: Device): void {
  d.changes++;
}

type VersionEntry = { kind: VersionKind; name: string; value: string };

/**
 * Each device's version list, built once: a device dump asked for it per device per dump (9 % of
 * the daemon's time in a 128-device dev-get loop). Rebuilt when any of the three version maps is
 * replaced; the maps themselves are never changed in place.
 */
const versionCache = new WeakMap<Device, { fixed: object; running: object; stored: object; list: VersionEntry[] }>();

/** The devlink-style version list: kind, name, value. Shared: do not modify it. */
export function versionList(d: Device): VersionEntry[] {
  const v = d.versions;
  const hit = versionCache.get(d);
  if (hit && hit.fixed === v.fixed && hit.running === v.running && hit.stored === v.stored) return hit.list;
  const out: VersionEntry[] = [];
  for (const kind of ['fixed', 'running', 'stored'] as const) {
    for (const [name, value] of Object.entries(v[kind])) out.push({ kind, name, value });
  }
  versionCache.set(d, { fixed: v.fixed, running: v.running, stored: v.stored, list: out });
  return out;
}
