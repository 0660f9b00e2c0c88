// JSON: stable snake_case field names (the .proto's), enums by name, syndromes in lowercase hex,
// 64-bit values as numbers up to 2^53 - 1 and as decimal strings above, so no reader loses bits.
import type { CounterRec, CountersRec, Doc, DocType, EventRec } from './record';
import { enumName, enumNum } from './record';

const u64 = (v: bigint): number | string => (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString());
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

function eventJson(e: EventRec): object {
  return {
    dev: e.dev, seq: u64(e.seq), ts_ns: u64(e.tsNs), kind: e.kind, block: e.block, severity: e.severity,
    error_id: e.errorId, error_name: e.errorName, count: e.count, address: u64(e.address), syndrome: hex(e.syndrome),
    action: e.action, folded: e.folded, first_ts_ns: u64(e.firstTsNs), last_ts_ns: u64(e.lastTsNs),
  };
}

function countersJson(c: CountersRec): object {
  return {
    dev: c.dev, ts_ns: u64(c.tsNs), cursor: u64(c.cursor),
    counters: c.counters.map((x) => ({ block: x.block, severity: x.severity, volatile_count: u64(x.volatileCount), aggregate_count: u64(x.aggregateCount) })),
    rows_active: c.rowsActive, rows_pending: c.rowsPending, rma_threshold: c.rmaThreshold, rma: c.rma,
  };
}

export function encodeJson(doc: Doc): Uint8Array {
  const o = doc.type === 'counters' ? { counters: countersJson(doc.counters) } : { events: doc.events.map(eventJson) };
  return Buffer.from(JSON.stringify(o), 'utf8');
}

type J = Record<string, unknown>;
function big(o: J, k: string): bigint {
  const v = o[k];
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'string' && /^\d{1,20}$/.test(v) && BigInt(v) <= 0xffffffffffffffffn) return BigInt(v);
  throw new TypeError(`json: ${k} is not a u64 (${JSON.stringify(v)})`);
}
function u32(o: J, k: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new TypeError(`json: ${k} is not a u32`);
  return v;
}
function str(o: J, k: string): string {
  if (typeof o[k] !== 'string') throw new TypeError(`json: ${k} is not a string`);
  return o[k] as string;
}
function name<K extends 'block' | 'severity' | 'kind' | 'action'>(o: J, k: K) {
  const n = enumNum(k, str(o, k));
  if (n < 0) throw new TypeError(`json: unknown ${k} "${o[k]}"`);
  return enumName(k, n);
}

const eventFrom = (o: J): EventRec => ({
  dev: u32(o, 'dev'), seq: big(o, 'seq'), tsNs: big(o, 'ts_ns'), kind: name(o, 'kind'), block: name(o, 'block'),
  severity: name(o, 'severity'), errorId: u32(o, 'error_id'), errorName: str(o, 'error_name'), count: u32(o, 'count'),
  address: big(o, 'address'), syndrome: Uint8Array.from(Buffer.from(str(o, 'syndrome'), 'hex')), action: name(o, 'action'),
  folded: u32(o, 'folded'), firstTsNs: big(o, 'first_ts_ns'), lastTsNs: big(o, 'last_ts_ns'),
});

const counterFrom = (o: J): CounterRec => ({
  block: name(o, 'block'), severity: name(o, 'severity'), volatileCount: big(o, 'volatile_count'), aggregateCount: big(o, 'aggregate_count'),
});

export function decodeJson(b: Uint8Array, _type?: DocType): Doc {
  const o = JSON.parse(Buffer.from(b).toString('utf8')) as J;
  if (Array.isArray(o.events)) return { type: 'events', events: (o.events as J[]).map(eventFrom) };
  const c = o.counters as J | undefined;
  if (!c || typeof c !== 'object') throw new TypeError('json: neither "counters" nor "events"');
  return {
    type: 'counters',
    counters: {
      dev: u32(c, 'dev'), tsNs: big(c, 'ts_ns'), cursor: big(c, 'cursor'), counters: (c.counters as J[]).map(counterFrom),
      rowsActive: u32(c, 'rows_active'), rowsPending: u32(c, 'rows_pending'), rmaThreshold: u32(c, 'rma_threshold'), rma: c.rma === true,
    },
  };
}
