// KEY_VAL_32: the payload is nothing but little-endian (u32 key, u32 value) pairs, declared below
// with buffer-layout, so 32-bit firmware can read it with a switch on the key. Keys come from the
// registry in docs/formats/key-val-32.md; strings travel as ids of a fixed string registry;
// 64-bit values are split into _LO/_HI keys; counters saturate at 0xffffffff.
import { Layout, greedy, seq, struct, u32 } from 'buffer-layout';
import { BLOCKS, SEVERITIES } from '../enums';
import type { CounterRec, CountersRec, Doc, DocType, EventRec } from './record';
import { enumName, enumNum } from './record';

export interface Pair { key: number; value: number }
export const PAIR: Layout<Pair> = struct<Pair>([u32('key'), u32('value')], 'pair');
/** The whole payload: as many pairs as its length holds. */
export const PAYLOAD: Layout<Pair[]> = seq(PAIR, greedy(PAIR.span), 'pairs');

/** The key registry (docs/formats/key-val-32.md). */
export const K = {
  VERSION: 0x01, RECORD: 0x02, DEV: 0x03, SEQ_LO: 0x04, SEQ_HI: 0x05, TS_LO: 0x06, TS_HI: 0x07, KIND: 0x08,
  BLOCK: 0x09, SEVERITY: 0x0a, ERROR_ID: 0x0b, ERROR_NAME: 0x0c, COUNT: 0x0d, ADDR_LO: 0x0e, ADDR_HI: 0x0f,
  ACTION: 0x10, FOLDED: 0x11, FIRST_TS_LO: 0x12, FIRST_TS_HI: 0x13, LAST_TS_LO: 0x14, LAST_TS_HI: 0x15,
  SYNDROME_LEN: 0x16, SYNDROME: 0x17, CURSOR_LO: 0x18, CURSOR_HI: 0x19, ROWS_ACTIVE: 0x1a, ROWS_PENDING: 0x1b,
  RMA_THRESHOLD: 0x1c, RMA: 0x1d,
  /** COUNTER | block << 4 | severity << 1 | (1 for aggregate, 0 for volatile). */
  COUNTER: 0x1000,
} as const;
export const KV32_VERSION = 1;
export const RECORD = { COUNTERS: 1, EVENT: 2 } as const;
/** String registry: id 0 is the empty string, ids 1..11 the block names (= their error ids). */
export const STRINGS: readonly string[] = ['', ...BLOCKS];
export const U32_MAX = 0xffffffff;

const sat = (v: bigint): number => (v > 0xffffffffn ? U32_MAX : Number(v));
const lo = (v: bigint): number => Number(v & 0xffffffffn);
const hi = (v: bigint): number => Number((v >> 32n) & 0xffffffffn);

function stringId(s: string): number {
  const i = STRINGS.indexOf(s);
  if (i < 0) throw new RangeError(`key-val-32: "${s}" is not in the string registry`);
  return i;
}

function eventPairs(out: Pair[], e: EventRec): void {
  const p = (key: number, value: number) => out.push({ key, value: value >>> 0 });
  p(K.RECORD, RECORD.EVENT); p(K.DEV, e.dev); p(K.SEQ_LO, lo(e.seq)); p(K.SEQ_HI, hi(e.seq));
  p(K.TS_LO, lo(e.tsNs)); p(K.TS_HI, hi(e.tsNs)); p(K.KIND, enumNum('kind', e.kind)); p(K.BLOCK, enumNum('block', e.block));
  p(K.SEVERITY, enumNum('severity', e.severity)); p(K.ERROR_ID, e.errorId); p(K.ERROR_NAME, stringId(e.errorName));
  p(K.COUNT, e.count); p(K.ADDR_LO, lo(e.address)); p(K.ADDR_HI, hi(e.address)); p(K.ACTION, enumNum('action', e.action));
  p(K.FOLDED, e.folded); p(K.FIRST_TS_LO, lo(e.firstTsNs)); p(K.FIRST_TS_HI, hi(e.firstTsNs));
  p(K.LAST_TS_LO, lo(e.lastTsNs)); p(K.LAST_TS_HI, hi(e.lastTsNs)); p(K.SYNDROME_LEN, e.syndrome.length);
  const s = e.syndrome;
  for (let i = 0; i < s.length; i += 4) p(K.SYNDROME, (s[i] | (s[i + 1] ?? 0) << 8 | (s[i + 2] ?? 0) << 16 | (s[i + 3] ?? 0) << 24));
}

function countersPairs(out: Pair[], c: CountersRec): void {
  const p = (key: number, value: number) => out.push({ key, value: value >>> 0 });
  p(K.RECORD, RECORD.COUNTERS); p(K.DEV, c.dev); p(K.TS_LO, lo(c.tsNs)); p(K.TS_HI, hi(c.tsNs));
  p(K.CURSOR_LO, lo(c.cursor)); p(K.CURSOR_HI, hi(c.cursor));
  // Registry order (docs/formats/key-val-32.md): the memory keys 0x1a-0x1d, then the counter pairs.
  p(K.ROWS_ACTIVE, c.rowsActive); p(K.ROWS_PENDING, c.rowsPending); p(K.RMA_THRESHOLD, c.rmaThreshold); p(K.RMA, c.rma ? 1 : 0);
  for (const x of c.counters) {
    const base = K.COUNTER | enumNum('block', x.block) << 4 | enumNum('severity', x.severity) << 1;
    p(base, sat(x.volatileCount));
    p(base | 1, sat(x.aggregateCount));
  }
}

export function encodeKv32(doc: Doc): Uint8Array {
  const pairs: Pair[] = [{ key: K.VERSION, value: KV32_VERSION }];
  if (doc.type === 'counters') countersPairs(pairs, doc.counters);
  else for (const e of doc.events) eventPairs(pairs, e);
  const b = Buffer.alloc(pairs.length * PAIR.span); // buffer-layout writes through Buffer methods
  PAYLOAD.encode(pairs, b);
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

const u64 = (l: number | undefined, h: number | undefined): bigint => (BigInt(h ?? 0) << 32n) | BigInt(l ?? 0);

/** One record's keys; unknown keys are ignored (newer minor versions may add some). */
function eventFrom(m: Map<number, number>, syn: number[]): EventRec {
  const len = m.get(K.SYNDROME_LEN) ?? 0;
  const bytes = new Uint8Array(syn.length * 4);
  syn.forEach((w, i) => new DataView(bytes.buffer).setUint32(i * 4, w, true));
  if (len > bytes.length) throw new RangeError('key-val-32: syndrome shorter than its SYNDROME_LEN');
  const name = STRINGS[m.get(K.ERROR_NAME) ?? 0];
  if (name === undefined) throw new RangeError(`key-val-32: string id ${m.get(K.ERROR_NAME)} is not registered`);
  return {
    dev: m.get(K.DEV) ?? 0, seq: u64(m.get(K.SEQ_LO), m.get(K.SEQ_HI)), tsNs: u64(m.get(K.TS_LO), m.get(K.TS_HI)),
    kind: enumName('kind', m.get(K.KIND) ?? 0), block: enumName('block', m.get(K.BLOCK) ?? 0),
    severity: enumName('severity', m.get(K.SEVERITY) ?? 0), errorId: m.get(K.ERROR_ID) ?? 0, errorName: name,
    count: m.get(K.COUNT) ?? 0, address: u64(m.get(K.ADDR_LO), m.get(K.ADDR_HI)), syndrome: bytes.slice(0, len),
    action: enumName('action', m.get(K.ACTION) ?? 0), folded: m.get(K.FOLDED) ?? 0,
    firstTsNs: u64(m.get(K.FIRST_TS_LO), m.get(K.FIRST_TS_HI)), lastTsNs: u64(m.get(K.LAST_TS_LO), m.get(K.LAST_TS_HI)),
  };
}

function countersFrom(m: Map<number, number>): CountersRec {
  const counters: CounterRec[] = [];
  BLOCKS.forEach((block, b) => SEVERITIES.forEach((severity, s) => {
    const base = K.COUNTER | b << 4 | s << 1;
    counters.push({ block, severity, volatileCount: BigInt(m.get(base) ?? 0), aggregateCount: BigInt(m.get(base | 1) ?? 0) });
  }));
  return {
    dev: m.get(K.DEV) ?? 0, tsNs: u64(m.get(K.TS_LO), m.get(K.TS_HI)), cursor: u64(m.get(K.CURSOR_LO), m.get(K.CURSOR_HI)),
    counters, rowsActive: m.get(K.ROWS_ACTIVE) ?? 0, rowsPending: m.get(K.ROWS_PENDING) ?? 0,
    rmaThreshold: m.get(K.RMA_THRESHOLD) ?? 0, rma: (m.get(K.RMA) ?? 0) !== 0,
  };
}

export function decodeKv32(b: Uint8Array, _type?: DocType): Doc {
  if (b.byteLength % PAIR.span) throw new RangeError('key-val-32: length is not a multiple of 8');
  const pairs = PAYLOAD.decode(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  if (pairs[0]?.key !== K.VERSION || pairs[0].value !== KV32_VERSION) throw new RangeError('key-val-32: no VERSION 1 pair first');
  const records: { type: number; m: Map<number, number>; syn: number[] }[] = [];
  for (const { key, value } of pairs.slice(1)) {
    if (key === K.RECORD) { records.push({ type: value, m: new Map(), syn: [] }); continue; }
    const r = records[records.length - 1];
    if (!r) throw new RangeError('key-val-32: a key before the first RECORD');
    if (key === K.SYNDROME) r.syn.push(value);
    else r.m.set(key, value);
  }
  if (records.length === 1 && records[0].type === RECORD.COUNTERS) return { type: 'counters', counters: countersFrom(records[0].m) };
  if (records.some((r) => r.type !== RECORD.EVENT)) throw new RangeError('key-val-32: mixed or unknown RECORD types');
  return { type: 'events', events: records.map((r) => eventFrom(r.m, r.syn)) };
}
