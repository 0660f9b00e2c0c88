// The one RAS record model every payload format encodes: a counter snapshot (ras-get) or a list of
// log records (ras-log-get, ras-event-ntf). Formats differ in bytes, never in content.
import { ACTIONS, BLOCKS, EVENT_KINDS, SEVERITIES, type Action, type Block, type EventKind, type Severity } from '../enums';
import { RAS_FORMAT_NAMES, RAS_FORMAT_VALUES, type RasFormat } from '../gen/accel';
import type { RasEvent } from '../log';
import { type Device, counterIndex } from '../model';

/** A log record: exactly the device model's RasEvent. */
export type EventRec = RasEvent;

export interface CounterRec {
  block: Block;
  severity: Severity;
  /** Since the last reset or clear. */
  volatileCount: bigint;
  /** Lifetime. */
  aggregateCount: bigint;
}

export interface CountersRec {
  dev: number;
  /** When the snapshot was taken (ns since the epoch). */
  tsNs: bigint;
  /** The sequence number the next log record will get. */
  cursor: bigint;
  counters: CounterRec[];
  rowsActive: number;
  rowsPending: number;
  rmaThreshold: number;
  rma: boolean;
}

/** What one payload holds. */
export type Doc = { type: 'counters'; counters: CountersRec } | { type: 'events'; events: EventRec[] };
export type DocType = Doc['type'];

/** Every format in capability-bit order (bit n = format n). */
export const FORMATS: readonly RasFormat[] = RAS_FORMAT_NAMES;
export const formatBit = (f: RasFormat): number => 1 << RAS_FORMAT_VALUES[f];
export const ALL_FORMATS = (1 << FORMATS.length) - 1;

/**
 * Schema version per format: major.minor, the major changing only with an incompatible change.
 * netlink follows the accel family version.
 */
export const SCHEMA_VERSION: Record<RasFormat, string> = {
  'key-val-32': '1.0', 'netlink': '1.0', 'json': '1.0', 'protobuf': '1.0', 'grpc': '1.0', 'thrift': '1.0',
  'cbor': '1.0', 'asn1': '1.0',
};

export function countersOf(d: Device, tsNs: bigint): CountersRec {
  const counters: CounterRec[] = [];
  BLOCKS.forEach((block, b) => SEVERITIES.forEach((severity, s) => {
    const i = counterIndex(b, s);
    counters.push({ block, severity, volatileCount: d.counters.volatile[i], aggregateCount: d.counters.aggregate[i] });
  }));
  return {
    dev: d.index, tsNs, cursor: d.log.next, counters, rowsActive: d.mem.rowsActive, rowsPending: d.mem.rowsPending,
    rmaThreshold: d.mem.rmaThreshold, rma: d.mem.rma,
  };
}

/** Wire number <-> name for the four enums the records use (numbers are the accel spec's). */
export const ENUMS = { block: BLOCKS, severity: SEVERITIES, kind: EVENT_KINDS, action: ACTIONS } as const;
export function enumName<K extends keyof typeof ENUMS>(k: K, n: number): (typeof ENUMS)[K][number] {
  const v = ENUMS[k][n];
  if (v === undefined) throw new RangeError(`${k} ${n} is not a known value`);
  return v as (typeof ENUMS)[K][number];
}
export const enumNum = (k: keyof typeof ENUMS, name: string): number => (ENUMS[k] as readonly string[]).indexOf(name);

export type { Action, Block, EventKind, Severity };

/** A plain copy with a fresh syndrome, so records can be compared after a round trip. */
export const eventRec = (e: RasEvent): EventRec => ({ ...e, syndrome: Uint8Array.from(e.syndrome) });
