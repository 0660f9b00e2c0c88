// The set of emulated devices, their clock and configuration, and the listeners (netlink families)
// that hear about RAS events and configuration changes.
import { ENOSPC } from '../attrs/errno';
import type { Clock } from './clock';
import { prng } from './clock';
import type { DevState, ReporterName } from './enums';
import type { RasEvent } from './log';
import { type Device, type DeviceSpec, newDevice, touch } from './model';

export interface EmulatorConfig {
  /** Correctable-storm limiter: events let through per interval per block, as PCIe AER's ratelimit. */
  stormBurst: number;
  stormIntervalMs: number;
  /** How long a reset keeps a device in-reset. */
  resetMs: number;
  /** Correctable errors on one HBM page before its row is retired. */
  ceRetireThreshold: number;
  seed: number;
}

export const DEFAULT_EMULATOR_CONFIG: EmulatorConfig = {
  stormBurst: 10, stormIntervalMs: 5000, resetMs: 50, ceRetireThreshold: 3, seed: 1,
};

export type ConfigEvent =
  | { kind: 'new'; dev: Device }
  | { kind: 'del'; dev: Device }
  | { kind: 'state'; dev: Device; from: DevState }
  | { kind: 'health'; dev: Device; reporter: ReporterName };

export interface Emulator {
  devices: Map<number, Device>;
  clock: Clock;
  cfg: EmulatorConfig;
  nextIndex: number;
  onRas: ((d: Device, e: RasEvent) => void)[];
  onConfig: ((e: ConfigEvent) => void)[];
  /** Per-address correctable counts on HBM, for page retirement. */
  ceByPage: Map<string, number>;
  timers: Set<NodeJS.Timeout>;
  /** Persistence hook: every durable change (counter increment, clear, memory health, log record). */
  journal?: (d: Device, change: Change) => void;
  /** Make journaled changes durable (fsync) before something is acknowledged. */
  sync?: () => void;
}

/** A durable change, as the persistence layer journals it. */
export type Change =
  | { k: 'count'; ci: number; n: bigint }
  | { k: 'clear'; aggregate: boolean }
  /** `page`: the bad page the change added, if any (pages are only ever added). */
  | { k: 'mem'; page?: bigint }
  | { k: 'event'; e: RasEvent };

export function newEmulator(clock: Clock, cfg: Partial<EmulatorConfig> = {}): Emulator {
  return {
    devices: new Map(), clock, cfg: { ...DEFAULT_EMULATOR_CONFIG, ...cfg }, nextIndex: 0,
    onRas: [], onConfig: [], ceByPage: new Map(), timers: new Set(),
  };
}

export function emitRas(emu: Emulator, d: Device, e: RasEvent): void {
  d.generation++;
  emu.journal?.(d, { k: 'event', e });
  for (const f of emu.onRas) f(d, e);
}

export function emitConfig(emu: Emulator, e: ConfigEvent): void {
  e.dev.generation++;
  touch(e.dev); // state, health, new and removed devices
  for (const f of emu.onConfig) f(e);
}

/**
 * A PCI address (domain:bus:device.function) for device `i`: a card per bus from bus 0x03 (i < 253
 * is 0000:03:00.0 to 0000:ff:00.0), then the next domain, then device and function numbers, so
 * every u32 index below 4.24e9 gets a distinct, well-formed address.
 */
export function busAddrFor(i: number): string {
  const hex = (n: number, w: number): string => n.toString(16).padStart(w, '0');
  let rest = Math.floor(i / 253);
  const domain = rest % 0x10000;
  rest = Math.floor(rest / 0x10000);
  return `${hex(domain, 4)}:${hex(0x03 + (i % 253), 2)}:${hex(rest % 32, 2)}.${Math.floor(rest / 32) % 8}`;
}

/**
 * The bus addresses in use, kept beside the device map: rebuilding the set on every add made
 * starting 1024 devices quadratic (half a million set insertions, most of start-up's garbage).
 * Rebuilt whenever its size disagrees with the map (a device added or removed some other way).
 */
const busAddrs = new WeakMap<Emulator, Set<string>>();

function busAddrsOf(emu: Emulator): Set<string> {
  let set = busAddrs.get(emu);
  if (!set || set.size !== emu.devices.size) {
    set = new Set();
    for (const d of emu.devices.values()) set.add(d.busAddr);
    busAddrs.set(emu, set);
  }
  return set;
}

/**
 * The devices in index order, shared by every caller until a device is added or removed (dumps
 * asked for it once per chunk: 1024 devices sorted about 170 times per device dump). Read-only.
 */
const inOrder = new WeakMap<Emulator, Device[]>();

export function devicesInOrder(emu: Emulator): readonly Device[] {
  let list = inOrder.get(emu);
  if (!list || list.length !== emu.devices.size) {
    list = [...emu.devices.values()].sort((a, b) => a.index - b.index);
    inOrder.set(emu, list);
  }
  return list;
}

/** Devices one emulator holds at most (each costs memory, and dumps and generations walk them all). */
export const MAX_DEVICES = 4096;

/** Hot-plug a device; its index is the next free one unless given. Throws (with `errno`) when it cannot. */
export function addDevice(emu: Emulator, spec: Partial<Omit<DeviceSpec, 'rand'>> = {}): Device {
  if (emu.devices.size >= MAX_DEVICES) throw Object.assign(new Error(`no room for more devices (${MAX_DEVICES})`), { errno: ENOSPC });
  let index = spec.index ?? emu.nextIndex;
  if (spec.index === undefined) {
    if (index > 0xffffffff) index = 0; // past the top (a device was added at 0xffffffff): the lowest free one
    while (emu.devices.has(index)) index++;
  }
  if (emu.devices.has(index)) throw new Error(`device index ${index} in use`);
  if (index > 0xffffffff) throw new Error('no free device index (indices are u32)');
  const used = busAddrsOf(emu);
  let busAddr = spec.busAddr ?? busAddrFor(index);
  if (spec.busAddr === undefined) {
    // The index's own slot was given to another device explicitly: take the next free slot.
    for (let j = index + 1; used.has(busAddr); j++) busAddr = busAddrFor(j);
  }
  if (used.has(busAddr)) throw new Error(`bus address ${busAddr} in use`);
  const d = newDevice({
    ...spec, index, busAddr, serial: spec.serial ?? `ACNL${(emu.cfg.seed * 7919 + index).toString(16).toUpperCase().padStart(8, '0')}`,
    rand: prng(emu.cfg.seed * 1_000_003 + index),
  });
  emu.devices.set(index, d);
  used.add(busAddr);
  inOrder.delete(emu);
  emu.nextIndex = Math.max(emu.nextIndex, index + 1);
  emitConfig(emu, { kind: 'new', dev: d });
  return d;
}

export function removeDevice(emu: Emulator, d: Device): void {
  if (emu.devices.get(d.index) !== d) return;
  d.state = 'offline';
  touch(d);
  emu.devices.delete(d.index);
  busAddrs.get(emu)?.delete(d.busAddr);
  inOrder.delete(emu);
  emitConfig(emu, { kind: 'del', dev: d });
}

export function setState(emu: Emulator, d: Device, s: DevState): void {
  if (d.state === s) return;
  const from = d.state;
  d.state = s;
  touch(d);
  emitConfig(emu, { kind: 'state', dev: d, from });
}

/** Find a device by index, accelN name, bus address or bus/address handle. */
export function findDevice(emu: Emulator, key: string | number): Device | undefined {
  if (typeof key === 'number') return emu.devices.get(key);
  if (/^\d+$/.test(key)) return emu.devices.get(Number(key));
  for (const d of emu.devices.values()) {
    if (d.name === key || d.busAddr === key || `${d.busName}/${d.busAddr}` === key || d.path === key) return d;
  }
  return undefined;
}

/** Run `f` after `ms` on the emulator's timers (cleared by stopEmulator). */
export function later(emu: Emulator, ms: number, f: () => void): void {
  const t = setTimeout(() => { emu.timers.delete(t); f(); }, ms);
  t.unref?.();
  emu.timers.add(t);
}

export function stopEmulator(emu: Emulator): void {
  for (const t of emu.timers) clearTimeout(t);
  emu.timers.clear();
}
