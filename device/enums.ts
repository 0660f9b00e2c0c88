// The names the RAS model is built from. Their numeric values on the wire come from the accel
// family spec (docs/netlink/specs/accel.yaml); here they are just ordered lists.

/** Hardware blocks that report errors (union of what HBM accelerators expose). */
export const BLOCKS = [
  'hbm', 'sram', 'compute-core', 'dma', 'mmu', 'firmware', 'pcie', 'interconnect', 'thermal', 'power', 'soc-fabric',
] as const;
export type Block = typeof BLOCKS[number];

/** Error severities, mildest first. */
export const SEVERITIES = ['correctable', 'deferred', 'uncorrectable-nonfatal', 'uncorrectable-fatal'] as const;
export type Severity = typeof SEVERITIES[number];

export const STATES = ['operational', 'in-reset', 'needs-reset', 'malfunction', 'offline'] as const;
export type DevState = typeof STATES[number];

/** What the operator should do about an event. */
export const ACTIONS = ['none', 'restart-app', 'reset-device', 'reboot', 'replace'] as const;
export type Action = typeof ACTIONS[number];

export const HEALTH = ['ok', 'warning', 'critical'] as const;
export type Health = typeof HEALTH[number];

/** Throttle reasons, as bits (the NVML clock-event reasons, which DCGM mirrors 1:1). */
export const THROTTLE = {
  'idle': 0x1, 'app-clocks': 0x2, 'sw-power-cap': 0x4, 'hw-slowdown': 0x8, 'sync-boost': 0x10,
  'sw-thermal': 0x20, 'hw-thermal': 0x40, 'hw-power-brake': 0x80, 'board-limit': 0x100, 'reliability': 0x200,
} as const;
export type ThrottleReason = keyof typeof THROTTLE;

/** Kinds of records in the RAS log. */
export const EVENT_KINDS = ['error', 'storm-overflow', 'row-retired', 'rma'] as const;
export type EventKind = typeof EVENT_KINDS[number];

export const REPORTERS = ['fw', 'mem', 'pcie', 'thermal', 'core'] as const;
export type ReporterName = typeof REPORTERS[number];

/** Which health reporter hears about which block. */
export const REPORTER_OF: Record<Block, ReporterName> = {
  'hbm': 'mem', 'sram': 'mem', 'mmu': 'mem', 'firmware': 'fw', 'pcie': 'pcie', 'interconnect': 'pcie',
  'thermal': 'thermal', 'power': 'thermal', 'compute-core': 'core', 'dma': 'core', 'soc-fabric': 'core',
};

export const VERSION_KINDS = ['fixed', 'running', 'stored'] as const;
export type VersionKind = typeof VERSION_KINDS[number];
