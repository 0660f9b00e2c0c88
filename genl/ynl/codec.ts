// Encode/decode of an attribute set to and from plain objects, from its Field table (fields.ts):
// writing runs the set's writer (encoder.ts), compiled on first use, reading its reader (decoder.ts),
// which a spec's generated module carries (setReaders) and is compiled on first use otherwise.
// Fields are the camelCase of the attribute names (`node-id` → nodeId). Writing throws on values of
// the wrong type (a developer error) and then leaves the writer as it was; reading never throws:
// unknown or malformed attributes are skipped.
import { type View, type Writer, getSint, getString, getU64Num, getUint, payloadLen } from '../../attrs';
import { ownedCopy } from '../owned';
import { type ReaderMaker, compileReader } from './decoder';
import { compileWriter } from './encoder';
import { type Field, type FieldSet, type SetReader, type SetWriter, fieldSet, narrow } from './fields';
import type { AttrType, Spec } from './model';
import { INT, named } from './values';

// ---- writing -------------------------------------------------------------------------------------

/**
 * Write `obj`'s fields as attributes of set `setName`, in attribute-value order. Undefined (and
 * null) fields are skipped, so are fields the set does not know. Nests get NLA_F_NESTED.
 */
export function writeAttrs(w: Writer, spec: Spec, setName: string, obj: object): void {
  writeFields(w, fieldSet(spec, setName), obj);
}

function writeFields(w: Writer, cs: FieldSet, obj: object): void {
  if (obj === null || typeof obj !== 'object') throw new TypeError(`${cs.name}: expected an object`);
  const start = w.len;
  try {
    setWriter(cs)(w, obj as Record<string, unknown>);
  } catch (e) {
    w.len = start;
    throw named(e, cs.name);
  }
}

function setWriter(cs: FieldSet): SetWriter {
  return (cs.writer ??= compileWriter(cs.ordered, (i) => setWriter(fieldSet(cs.spec, cs.ordered[i].a.nestedAttributes!))));
}

// ---- reading -------------------------------------------------------------------------------------

/** Nesting deeper than this (only possible with recursive sets) is not decoded. */
const MAX_NEST = 32;

/** The typed reader and writer of one set, what a generated module exports per set (readX, writeX). */
export interface SetCodec<T> {
  read(v: View, start: number, end: number): T;
  write(w: Writer, o: T): void;
}

/** The generated reader makers of a spec's sets (gen.ts), by set name. */
const generated = new WeakMap<Spec, Readonly<Record<string, ReaderMaker>>>();

/**
 * The readers a spec's generated module carries, one per set: used instead of compiling each set's
 * reader at its first read, which a short CLI command paid for every set it decoded.
 */
export function setReaders(spec: Spec, makers: Readonly<Record<string, ReaderMaker>>): void {
  generated.set(spec, makers);
}

/** A set's reader and writer, its Field table built on first use (module load stays cheap). */
export function setCodec<T extends object>(spec: Spec, setName: string): SetCodec<T> {
  let fs: FieldSet | undefined;
  return {
    read: (v, start, end) => readSet(v, start, end, (fs ??= fieldSet(spec, setName)), 0, false) as T,
    write: (w, o) => writeFields(w, (fs ??= fieldSet(spec, setName)), o),
  };
}

/**
 * Decode the attributes in [start, end) as set `setName`. u64/s64/uint/sint become numbers when
 * exact (|x| <= 2^53-1), else bigints; plain enums become entry names (numbers when unknown);
 * flags stay numbers; flags are `true`; binaries are copies. Unknown types are ignored.
 */
export function readAttrs<T = Record<string, unknown>>(v: View, start: number, end: number, spec: Spec, setName: string): T {
  return readSet(v, start, end, fieldSet(spec, setName), 0, false) as T;
}

/**
 * As readAttrs, but binaries are views into v's bytes, not copies. For a handler that is done with
 * them before it returns: a socket reuses its receive buffer after the callback (genl/owned.ts).
 * A bulk write (bo-write) then copies its data once, into its destination.
 */
export function readAttrsInPlace<T = Record<string, unknown>>(v: View, start: number, end: number, spec: Spec, setName: string): T {
  return readSet(v, start, end, fieldSet(spec, setName), 0, true) as T;
}

function readSet(v: View, start: number, end: number, cs: FieldSet, depth: number, inPlace: boolean): Record<string, unknown> {
  return setReader(cs)(v, start, end, depth, inPlace);
}

function setReader(cs: FieldSet): SetReader {
  return (cs.reader ??= compileReader(cs.ordered, (v, at, f, t, depth, inPlace) => readOne(v, at, cs, f, t, depth, inPlace),
    generated.get(cs.spec)?.[cs.name]));
}

function readOne(v: View, at: number, cs: FieldSet, ca: Field, t: AttrType, depth: number, inPlace: boolean): unknown {
  const n = payloadLen(v, at);
  switch (t) {
    case 'flag': return true;
    case 'string': return getString(v, at);
    // A copy, also when buf is a Buffer (whose slice() is a view): the socket reuses its memory.
    // (ownedCopy allocates and sets: `new Uint8Array(aBuffer)` takes V8's slow, per-element path.)
    case 'binary': return inPlace ? v.buf.subarray(at + 4, at + 4 + n) : ownedCopy(v.buf, at + 4, at + 4 + n);
    case 'nest':
      if (depth >= MAX_NEST) return undefined;
      return readSet(v, at + 4, at + 4 + n, fieldSet(cs.spec, ca.a.nestedAttributes!), depth + 1, inPlace);
    case 'pad': case 'unused': return undefined;
  }
  const x = readScalar(v, at, n, t, ca.be);
  if (x === undefined || !ca.names || typeof x !== 'number') return x;
  return ca.names.get(x) ?? x;
}

function readScalar(v: View, at: number, n: number, t: AttrType, be: boolean): number | bigint | undefined {
  if (t === 'uint' || t === 'sint') {
    if (n !== 4 && n !== 8) return undefined;
    return t === 'uint' ? getUint(v, at) : getSint(v, at);
  }
  const size = INT[t as keyof typeof INT][0];
  if (n < size) return undefined;
  const dv = v.dv;
  const p = at + 4;
  const le = !be;
  switch (t) {
    case 'u8': return dv.getUint8(p);
    case 's8': return dv.getInt8(p);
    case 'u16': return dv.getUint16(p, le);
    case 's16': return dv.getInt16(p, le);
    case 'u32': return dv.getUint32(p, le);
    case 's32': return dv.getInt32(p, le);
    case 'u64': return le ? getU64Num(v, at) : narrow(dv.getBigUint64(p, false));
    default: {
      const b = dv.getBigInt64(p, le);
      return b >= -BigInt(Number.MAX_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
    }
  }
}
