// The names the RAS model is built from, taken from the accel family spec
// (docs/netlink/specs/accel.yaml, generated into gen/accel.ts) so they are written down once.
import {
  ACTION_HINT_NAMES, type ActionHint, BLOCK_NAMES, type Block as SpecBlock, DEV_STATE_NAMES, type DevState as SpecDevState,
  EVENT_KIND_NAMES, type EventKind as SpecEventKind, HEALTH_NAMES, type Health as SpecHealth, SEVERITY_NAMES,
  type Severity as SpecSeverity, THROTTLE_REASON_VALUES, type ThrottleReason, VERSION_KIND_NAMES,
  type VersionKind as SpecVersionKind,
} from './gen/accel';

export type Block = SpecBlock;
export type Severity = SpecSeverity;
export type DevState = SpecDevState;
export type Action = ActionHint;
export type Health = SpecHealth;
export type EventKind = SpecEventKind;
export type VersionKind = SpecVersionKind;
export type { ThrottleReason };

/** Hardware blocks that report errors, in wire order. */
export const BLOCKS = BLOCK_NAMES;
/** Error severities, mildest first. */
export const SEVERITIES = SEVERITY_NAMES;
export const STATES = DEV_STATE_NAMES;
/** What the operator should do about an event. */
export const ACTIONS = ACTION_HINT_NAMES;
export const HEALTH = HEALTH_NAMES;
export const EVENT_KINDS = EVENT_KIND_NAMES;
export const VERSION_KINDS = VERSION_KIND_NAMES;
/** Throttle reason bits (the NVML clock-event reasons, which DCGM mirrors 1:1). */
export const THROTTLE = THROTTLE_REASON_VALUES;

/** Health reporters per device, devlink style. Not a wire enum: reporters are named by string. */
export const REPORTERS = ['fw', 'mem', 'pcie', 'thermal', 'core'] as const;
export type ReporterName = typeof REPORTERS[number];

/** Which health reporter hears about which block. */
export const REPORTER_OF: Record<Block, ReporterName> = {
  'hbm': 'mem', 'sram': 'mem', 'mmu': 'mem', 'firmware': 'fw', 'pcie': 'pcie', 'interconnect': 'pcie',
  'thermal': 'thermal', 'power': 'thermal', 'compute-core': 'core', 'dma': 'core', 'soc-fabric': 'core',
};

/** A device's state as a message says it: "device accel0 needs a reset", "device accel1 is offline". */
export function stateSays(name: string, state: DevState): string {
  return state === 'needs-reset' ? `device ${name} needs a reset` : `device ${name} is ${state}`;
}
