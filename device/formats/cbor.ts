// CBOR (RFC 8949) with cbor-x: the JSON document's structure and field names with native CBOR
// types: unsigned integers for every number (64-bit ones in full), enums by their spec number,
// syndromes as byte strings. Encoding is deterministic (RFC 8949 section 4.2.1): smallest integer
// and length forms, definite lengths, and map keys written in sorted order, which for these short
// text keys is by length, then bytewise. The literals below are written in that order.
import type { CounterRec, Doc, DocType, EventRec } from './record';
import { enumName, enumNum } from './record';

// cbor-x's package.json sends CommonJS type lookups to a file it does not ship (index.d.cts), so
// the two calls used here are declared locally.
interface CborEncoder { encode(v: unknown): Uint8Array; decode(b: Uint8Array): unknown }
// Required on first use: loading cbor-x probes for its native extension (a few % of a daemon's or
// the CLI's start-up), which a process that never sees a CBOR payload need not pay.
let encoder: CborEncoder | undefined;
function enc(): CborEncoder {
  if (encoder) return encoder;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Encoder } = require('cbor-x') as { Encoder: new (o: object) => CborEncoder };
  return (encoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false, variableMapSize: true, bundleStrings: false }));
}

/** cbor-x writes numbers above 2^32 as floats, so those go in as bigints (unsigned integers). */
const u64 = (v: bigint): number | bigint => (v <= 0xffffffffn ? Number(v) : v);

const eventMap = (e: EventRec) => ({
  dev: e.dev, seq: u64(e.seq), kind: enumNum('kind', e.kind), block: enumNum('block', e.block), count: e.count,
  ts_ns: u64(e.tsNs), action: enumNum('action', e.action), folded: e.folded, address: u64(e.address),
  error_id: e.errorId, severity: enumNum('severity', e.severity), syndrome: e.syndrome, error_name: e.errorName,
  last_ts_ns: u64(e.lastTsNs), first_ts_ns: u64(e.firstTsNs),
});

const counterMap = (c: CounterRec) => ({
  block: enumNum('block', c.block), severity: enumNum('severity', c.severity), volatile_count: u64(c.volatileCount),
  aggregate_count: u64(c.aggregateCount),
});

export function encodeCbor(doc: Doc): Uint8Array {
  if (doc.type === 'events') return enc().encode({ events: doc.events.map(eventMap) });
  const c = doc.counters;
  return enc().encode({
    counters: {
      dev: c.dev, rma: c.rma, ts_ns: u64(c.tsNs), cursor: u64(c.cursor), counters: c.counters.map(counterMap),
      rows_active: c.rowsActive, rows_pending: c.rowsPending, rma_threshold: c.rmaThreshold,
    },
  });
}

type M = Record<string, unknown>;
function big(o: M, k: string): bigint {
  const v = o[k];
  if ((typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) || (typeof v === 'bigint' && v >= 0n && v <= 0xffffffffffffffffn)) return BigInt(v);
  throw new TypeError(`cbor: ${k} is not a u64`);
}
function u32(o: M, k: string): number {
  const v = typeof o[k] === 'bigint' ? Number(o[k]) : o[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new TypeError(`cbor: ${k} is not a u32`);
  return v;
}
function bytes(o: M, k: string): Uint8Array {
  const v = o[k];
  if (!(v instanceof Uint8Array)) throw new TypeError(`cbor: ${k} is not a byte string`);
  return Uint8Array.from(v);
}
function str(o: M, k: string): string {
  if (typeof o[k] !== 'string') throw new TypeError(`cbor: ${k} is not a text string`);
  return o[k] as string;
}

const eventFrom = (o: M): EventRec => ({
  dev: u32(o, 'dev'), seq: big(o, 'seq'), tsNs: big(o, 'ts_ns'), kind: enumName('kind', u32(o, 'kind')),
  block: enumName('block', u32(o, 'block')), severity: enumName('severity', u32(o, 'severity')), errorId: u32(o, 'error_id'),
  errorName: str(o, 'error_name'), count: u32(o, 'count'), address: big(o, 'address'), syndrome: bytes(o, 'syndrome'),
  action: enumName('action', u32(o, 'action')), folded: u32(o, 'folded'), firstTsNs: big(o, 'first_ts_ns'), lastTsNs: big(o, 'last_ts_ns'),
});

export function decodeCbor(b: Uint8Array, _type?: DocType): Doc {
  const o = enc().decode(b) as M;
  if (Array.isArray(o?.events)) return { type: 'events', events: (o.events as M[]).map(eventFrom) };
  const c = o?.counters as M | undefined;
  if (!c || typeof c !== 'object') throw new TypeError('cbor: neither "counters" nor "events"');
  return {
    type: 'counters',
    counters: {
      dev: u32(c, 'dev'), tsNs: big(c, 'ts_ns'), cursor: big(c, 'cursor'),
      counters: (c.counters as M[]).map((x) => ({
        block: enumName('block', u32(x, 'block')), severity: enumName('severity', u32(x, 'severity')),
        volatileCount: big(x, 'volatile_count'), aggregateCount: big(x, 'aggregate_count'),
      })),
      rowsActive: u32(c, 'rows_active'), rowsPending: u32(c, 'rows_pending'), rmaThreshold: u32(c, 'rma_threshold'), rma: c.rma === true,
    },
  };
}
