// THRIFT: docs/formats/ras.thrift in the compact protocol, with the Apache `thrift` package's
// TCompactProtocol. The struct walk below is what the Thrift compiler would generate for the IDL,
// written as field tables so the IDL and the code are easy to hold side by side.
import type * as Thrift from 'thrift';
import type { CounterRec, CountersRec, Doc, DocType, EventRec } from './record';
import { enumName, enumNum } from './record';

/** Thrift's type ids (TType), fixed by the protocol. */
const T = { STOP: 0, BOOL: 2, I32: 8, I64: 10, STRING: 11, STRUCT: 12, LIST: 15 } as const;

let lib: typeof Thrift | undefined;
/**
 * The library, loaded on first use. It allocates with `new Buffer()`: Node is silent about that for
 * code under node_modules, but once bundled (dist/) it would print DEP0005 at the first thrift
 * payload, a warning about the library that the daemon's user can do nothing about. That one
 * warning is muted (Node emits DEP0005 at most once per process).
 */
function thrift<R>(f: (t: typeof Thrift) => R): R {
  if (lib) return f(lib);
  lib = require('thrift') as typeof Thrift; // eslint-disable-line @typescript-eslint/no-require-imports
  const was = process.noDeprecation;
  process.noDeprecation = true;
  try { return f(lib); } finally { process.noDeprecation = was; }
}

/** node-int64 values, built from and read as the 8 big-endian bytes (the same bits as a u64). */
function i64(v: bigint): Thrift.Int64 {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  return new lib!.Int64(b);
}
const u64Of = (x: Thrift.Int64): bigint => (x as unknown as { buffer: Buffer; offset?: number }).buffer.readBigUInt64BE((x as unknown as { offset?: number }).offset ?? 0);
type Proto = Thrift.TCompactProtocol;
type Kind = 'i32' | 'i64' | 'string' | 'binary' | 'bool' | 'enum';
/** [field id, record key, thrift kind, enum name] in IDL order. */
type Field<R> = [number, keyof R & string, Kind, ('block' | 'severity' | 'kind' | 'action')?];

const EVENT: Field<EventRec>[] = [
  [1, 'dev', 'i32'], [2, 'seq', 'i64'], [3, 'tsNs', 'i64'], [4, 'kind', 'enum', 'kind'], [5, 'block', 'enum', 'block'],
  [6, 'severity', 'enum', 'severity'], [7, 'errorId', 'i32'], [8, 'errorName', 'string'], [9, 'count', 'i32'],
  [10, 'address', 'i64'], [11, 'syndrome', 'binary'], [12, 'action', 'enum', 'action'], [13, 'folded', 'i32'],
  [14, 'firstTsNs', 'i64'], [15, 'lastTsNs', 'i64'],
];
const COUNTER: Field<CounterRec>[] = [
  [1, 'block', 'enum', 'block'], [2, 'severity', 'enum', 'severity'], [3, 'volatileCount', 'i64'], [4, 'aggregateCount', 'i64'],
];
/** Counters fields other than the list (field 4). */
const COUNTERS: Field<CountersRec>[] = [
  [1, 'dev', 'i32'], [2, 'tsNs', 'i64'], [3, 'cursor', 'i64'], [5, 'rowsActive', 'i32'], [6, 'rowsPending', 'i32'],
  [7, 'rmaThreshold', 'i32'], [8, 'rma', 'bool'],
];
const TTYPE: Record<Kind, number> = { i32: T.I32, i64: T.I64, string: T.STRING, binary: T.STRING, bool: T.BOOL, enum: T.I32 };

function writeFields<R>(p: Proto, r: R, fields: Field<R>[], from = 0, to = fields.length): void {
  for (let i = from; i < to; i++) {
    const [id, key, kind, en] = fields[i];
    const v = r[key] as unknown;
    p.writeFieldBegin(key, TTYPE[kind], id);
    switch (kind) {
      case 'i32': p.writeI32((v as number) | 0); break; // same 32 bits, as a signed i32
      case 'i64': p.writeI64(i64(v as bigint)); break;
      case 'string': p.writeString(v as string); break;
      case 'binary': p.writeBinary(Buffer.from(v as Uint8Array)); break;
      case 'bool': p.writeBool(v as boolean); break;
      case 'enum': p.writeI32(enumNum(en!, v as string)); break;
    }
    p.writeFieldEnd();
  }
}

function writeStruct<R>(p: Proto, r: R, fields: Field<R>[]): void {
  p.writeStructBegin('');
  writeFields(p, r, fields);
  p.writeFieldStop();
  p.writeStructEnd();
}

export const encodeThrift = (doc: Doc): Uint8Array => thrift((lib) => encode(lib, doc));

function encode(lib: typeof Thrift, doc: Doc): Uint8Array {
  let out: Buffer | undefined;
  const t = new lib.TBufferedTransport(undefined, (b?: Buffer) => { out = b; });
  const p = new lib.TCompactProtocol(t);
  p.writeStructBegin('Payload');
  if (doc.type === 'counters') {
    const c = doc.counters;
    p.writeFieldBegin('counters', T.STRUCT, 1);
    p.writeStructBegin('Counters');
    writeFields(p, c, COUNTERS, 0, 3);
    p.writeFieldBegin('counters', T.LIST, 4);
    p.writeListBegin(T.STRUCT, c.counters.length);
    for (const x of c.counters) writeStruct(p, x, COUNTER);
    p.writeListEnd();
    p.writeFieldEnd();
    writeFields(p, c, COUNTERS, 3);
    p.writeFieldStop();
    p.writeStructEnd();
  } else {
    p.writeFieldBegin('events', T.LIST, 2);
    p.writeListBegin(T.STRUCT, doc.events.length);
    for (const e of doc.events) writeStruct(p, e, EVENT);
    p.writeListEnd();
  }
  p.writeFieldEnd();
  p.writeFieldStop();
  p.writeStructEnd();
  t.flush();
  return new Uint8Array(out!);
}

function readValue(p: Proto, kind: Kind, en?: 'block' | 'severity' | 'kind' | 'action'): unknown {
  switch (kind) {
    case 'i32': return p.readI32() >>> 0;
    case 'i64': return u64Of(p.readI64());
    case 'string': return p.readString();
    case 'binary': return Uint8Array.from(p.readBinary());
    case 'bool': return p.readBool();
    case 'enum': return enumName(en!, p.readI32());
  }
}

/** Read a struct: known fields by id (type-checked), unknown ones skipped, as generated code does. */
function readStruct<R>(p: Proto, fields: Field<R>[], extra?: (id: number, type: number) => boolean): R {
  const r: Record<string, unknown> = {};
  const byId = new Map(fields.map((f) => [f[0], f]));
  p.readStructBegin();
  for (;;) {
    const f = p.readFieldBegin();
    if (f.ftype === T.STOP) break;
    const d = byId.get(f.fid);
    if (d && f.ftype === TTYPE[d[2]]) r[d[1]] = readValue(p, d[2], d[3]);
    else if (!extra?.(f.fid, f.ftype)) p.skip(f.ftype);
    p.readFieldEnd();
  }
  p.readStructEnd();
  for (const [id, key] of fields) if (!(key in r)) throw new TypeError(`thrift: required field ${id} (${key}) missing`);
  return r as R;
}

function readList<R>(p: Proto, fields: Field<R>[]): R[] {
  const l = p.readListBegin();
  const out: R[] = [];
  for (let i = 0; i < l.size; i++) out.push(readStruct(p, fields));
  p.readListEnd();
  return out;
}

export const decodeThrift = (b: Uint8Array, _type?: DocType): Doc => thrift((lib) => decode(lib, b));

function decode(lib: typeof Thrift, b: Uint8Array): Doc {
  const p = new lib.TCompactProtocol(new lib.TFramedTransport(Buffer.from(b)));
  let doc: Doc | undefined;
  readStruct<object>(p, [], (id, type) => {
    if (id === 1 && type === T.STRUCT) {
      let list: CounterRec[] = [];
      const c = readStruct<CountersRec>(p, COUNTERS, (fid, ft) => (fid === 4 && ft === T.LIST ? ((list = readList(p, COUNTER)), true) : false));
      doc = { type: 'counters', counters: { ...c, counters: list } };
      return true;
    }
    if (id === 2 && type === T.LIST) { doc = { type: 'events', events: readList(p, EVENT) }; return true; }
    return false;
  });
  if (!doc) throw new TypeError('thrift: Payload union has no field set');
  return doc;
}
