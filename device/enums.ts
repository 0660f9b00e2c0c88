// The names the RAS model is built from, taken from the accel family spec
// (docs/netlink/specs/accel.yaml, generated into gen/accel.ts) so they are written down once.
import {
  type ActionHint, type Block as SpecBlock, type DevState as SpecDevState, type EventKind as SpecEventKind,
  type Health as SpecHealth, type Severity as SpecSeverity, type ThrottleReason, type VersionKind as SpecVersionKind,
  spec,
} from './gen/accel';

function entries(def: string): { name: string; value: number }[] {
  const d = spec.definitions.find((x) => x.name === def);
  if (!d?.entries) throw new Error(`accel spec: no definition ${def}`);
  return d.entries.map((e) => ({ name: e.name, value: Number(e.value) }));
}
const names = <T extends string>(def: string): readonly T[] => entries(def).map((e) => e.name as T);

export type Block = SpecBlock;
export type Severity = SpecSeverity;
export type DevState = SpecDevState;
export type Action = ActionHint;
export type Health = SpecHealth;
export type EventKind = SpecEventKind;
export type VersionKind = SpecVersionKind;
export type { ThrottleReason };

/** Hardware blocks that report errors, in wire order. */
export const BLOCKS = names<Block>('block');
/** Error severities, mildest first. */
export const SEVERITIES = names<Severity>('severity');
export const STATES = names<DevState>('dev-state');
/** What the operator should do about an event. */
export const ACTIONS = names<Action>('action-hint');
export const HEALTH = names<Health>('health');
export const EVENT_KINDS = names<EventKind>('event-kind');
export const VERSION_KINDS = names<VersionKind>('version-kind');
/** Throttle reason bits (the NVML clock-event reasons, which DCGM mirrors 1:1). */
export const THROTTLE = Object.fromEntries(entries('throttle-reason').map((e) => [e.name, e.value])) as Record<ThrottleReason, number>;

/** Health reporters per device, devlink style. Not a wire enum: reporters are named by string. */
export const REPORTERS = ['fw', 'mem', 'pcie', 'thermal', 'core'] as const;
export type ReporterName = typeof REPORTERS[number];

/** Which health reporter hears about which block. */
export const REPORTER_OF: Record<Block, ReporterName> = {
  'hbm': 'mem', 'sram': 'mem', 'mmu': 'mem', 'firmware': 'fw', 'pcie': 'pcie', 'interconnect': 'pcie',
  'thermal': 'thermal', 'power': 'thermal', 'compute-core': 'core', 'dma': 'core', 'soc-fabric': 'core',
};
