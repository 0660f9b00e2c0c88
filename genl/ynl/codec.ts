// Encode/decode of an attribute set to and from plain objects, from its Field table (fields.ts):
// writing runs the set's compiled writer (encoder.ts) and falls back to the table-driven writer
// below, which owns every error message; reading walks the table. Fields are the
// camelCase of the attribute names (`node-id` → nodeId). Writing throws on values of the wrong
// type (a developer error); reading never throws: unknown or malformed attributes are skipped.
import {
  type View, type Writer, getSint, getString, getU64Num, getUint, nestEnd, nestStart, payloadLen, putBytes,
  putFlag, putS64, putSint, putString, putU64, putUint, reserve, walk,
} from '../../attrs';
import { compileWriter } from './encoder';
import { type FastWriter, type Field, type FieldSet, fieldSet, narrow } from './fields';
import type { AttrType, Spec } from './model';

// ---- writing -------------------------------------------------------------------------------------

/**
 * Write `obj`'s fields as attributes of set `setName`, in attribute-value order. Undefined (and
 * null) fields are skipped, so are fields the set does not know. Nests get NLA_F_NESTED.
 */
export function writeAttrs(w: Writer, spec: Spec, setName: string, obj: object): void {
  writeFields(w, fieldSet(spec, setName), obj);
}

function writeFields(w: Writer, cs: FieldSet, obj: object): void {
  const setName = cs.name;
  if (obj === null || typeof obj !== 'object') throw new TypeError(`${setName}: expected an object`);
  const start = w.len;
  try {
    fastWriter(cs)(w, obj as Record<string, unknown>);
  } catch {
    // Bad input: write again the table-driven way, which throws with the field's full path.
    w.len = start;
    writeSet(w, cs, obj as Record<string, unknown>, setName);
  }
}

function fastWriter(cs: FieldSet): FastWriter {
  if (cs.fast) return cs.fast;
  const slow = {
    one: (w: Writer, i: number, v: unknown) => putOne(w, cs, cs.ordered[i], cs.ordered[i].a.type, cs.ordered[i].a.value, v, cs.name, -1),
    whole: (w: Writer, i: number, v: unknown) => writeField(w, cs, cs.ordered[i], v, cs.name),
  };
  cs.fast = compileWriter(cs.ordered, slow, (i) => fastWriter(fieldSet(cs.spec, cs.ordered[i].a.nestedAttributes!)));
  return cs.fast;
}

/** The table-driven writer alone: the reference the compiled one is tested against. */
export function writeAttrsByTable(w: Writer, spec: Spec, setName: string, obj: object): void {
  writeSet(w, fieldSet(spec, setName), obj as Record<string, unknown>, setName);
}

function writeSet(w: Writer, cs: FieldSet, o: Record<string, unknown>, path: string): void {
  if (o === null || typeof o !== 'object') throw new TypeError(`${path}: expected an object`);
  const ordered = cs.ordered;
  for (let i = 0; i < ordered.length; i++) {
    const val = o[ordered[i].key];
    if (val !== undefined && val !== null) writeField(w, cs, ordered[i], val, path);
  }
}

function writeField(w: Writer, cs: FieldSet, ca: Field, val: unknown, path: string): void {
  const a = ca.a;
  if (a.type === 'indexed-array' || a.multiAttr) {
    if (!Array.isArray(val)) throw new TypeError(`${path}.${ca.key}: expected an array`);
    if (a.type === 'indexed-array') {
      // A nest of elements whose types are their 1-based index (as the kernel's nlctrl writes arrays).
      const n = nestStart(w, a.value);
      for (let j = 0; j < val.length; j++) putOne(w, cs, ca, a.subType!, j + 1, val[j], path, j);
      nestEnd(w, n);
    } else for (let j = 0; j < val.length; j++) putOne(w, cs, ca, a.type, a.value, val[j], path, j);
  } else putOne(w, cs, ca, a.type, a.value, val, path, -1);
}

/** A field's path, built only when an error needs it. */
const where = (path: string, ca: Field, index: number): string => `${path}.${ca.key}${index >= 0 ? `[${index}]` : ''}`;

function putOne(w: Writer, cs: FieldSet, ca: Field, t: AttrType, type: number, val: unknown, path: string, index: number): void {
  switch (t) {
    case 'pad': case 'unused': return;
    case 'flag':
      if (val === true) putFlag(w, type);
      else if (val !== false) throw new TypeError(`${where(path, ca, index)}: expected a boolean`);
      return;
    case 'string':
      if (typeof val !== 'string') throw new TypeError(`${where(path, ca, index)}: expected a string`);
      putString(w, type, val);
      return;
    case 'binary':
      if (!(val instanceof Uint8Array)) throw new TypeError(`${where(path, ca, index)}: expected a Uint8Array`);
      putBytes(w, type, val);
      return;
    case 'nest': {
      const n = nestStart(w, type);
      writeSet(w, fieldSet(cs.spec, ca.a.nestedAttributes!), val as Record<string, unknown>, where(path, ca, index));
      nestEnd(w, n);
      return;
    }
    default:
      putScalar(w, t, type, typeof val === 'number' ? val : intValue(ca, val, where(path, ca, index)), ca.be, path, ca, index);
  }
}

/** An integer field: a number, a bigint, an enum entry name, or (flags) an array of names. */
function intValue(ca: Field, val: unknown, path: string): number | bigint {
  if (typeof val === 'number') {
    if (!Number.isInteger(val)) throw new TypeError(`${path}: ${val} is not an integer`);
    return val;
  }
  if (typeof val === 'bigint') return val;
  const entry = (n: unknown): number | bigint => {
    const e = typeof n === 'string' ? ca.values?.get(n) : undefined;
    if (e === undefined) throw new TypeError(`${path}: ${JSON.stringify(n)} is not ${ca.def ? `an entry of ${ca.def.name}` : 'an integer'}`);
    return e;
  };
  if (typeof val === 'string' && ca.def) return entry(val);
  if (Array.isArray(val) && ca.bits) return narrow(val.reduce((m: bigint, n) => m | BigInt(entry(n)), 0n));
  throw new TypeError(`${path}: expected an integer${ca.def ? ` or ${ca.def.name} name` : ''}`);
}


const FIXED: Record<string, [size: number, min: bigint, max: bigint]> = {
  u8: [1, 0n, 0xffn], s8: [1, -0x80n, 0x7fn], u16: [2, 0n, 0xffffn], s16: [2, -0x8000n, 0x7fffn],
  u32: [4, 0n, 0xffffffffn], s32: [4, -0x80000000n, 0x7fffffffn],
  u64: [8, 0n, 0xffffffffffffffffn], s64: [8, -0x8000000000000000n, 0x7fffffffffffffffn],
  uint: [8, 0n, 0xffffffffffffffffn], sint: [8, -0x8000000000000000n, 0x7fffffffffffffffn],
};

/** Number bounds of the types that fit a double exactly, for the allocation-free path. */
const NUM: Record<string, [number, number]> = {
  u8: [0, 0xff], s8: [-0x80, 0x7f], u16: [0, 0xffff], s16: [-0x8000, 0x7fff], u32: [0, 0xffffffff],
  s32: [-0x80000000, 0x7fffffff],
};

function putScalar(w: Writer, t: AttrType, type: number, x: number | bigint, be: boolean, path: string, ca: Field, index: number): void {
  const le = !be;
  const nb = NUM[t];
  if (nb !== undefined && typeof x === 'number') {
    if (!Number.isInteger(x)) throw new TypeError(`${where(path, ca, index)}: ${x} is not an integer`);
    if (x < nb[0] || x > nb[1]) throw new RangeError(`${where(path, ca, index)}: ${x} does not fit ${t}`);
    const size = t === 'u8' || t === 's8' ? 1 : t === 'u16' || t === 's16' ? 2 : 4;
    const p = reserve(w, type, size);
    if (size === 1) w.buf[p] = x & 0xff;
    else if (size === 2) w.dv.setUint16(p, x & 0xffff, le);
    else w.dv.setUint32(p, x >>> 0, le);
    return;
  }
  if (typeof x === 'number' && !Number.isInteger(x)) throw new TypeError(`${where(path, ca, index)}: ${x} is not an integer`);
  const [size, min, max] = FIXED[t];
  // Compare exactly: as doubles, 2^64 would pass for u64's max (both round to 1.8446744073709552e19).
  const exact = typeof x === 'number' && !Number.isSafeInteger(x) ? BigInt(x) : x;
  if (typeof exact === 'number' ? (exact < Number(min) || exact > Number(max)) : (exact < min || exact > max)) {
    throw new RangeError(`${where(path, ca, index)}: ${x} does not fit ${t}`);
  }
  if (t === 'uint') return putUint(w, type, x);
  if (t === 'sint') return putSint(w, type, x);
  if (size === 8 && !be) return t === 'u64' ? putU64(w, type, x) : putS64(w, type, x);
  const b = BigInt(x);
  const p = reserve(w, type, size);
  const dv = w.dv;
  switch (t) {
    case 'u8': case 's8': w.buf[p] = Number(b & 0xffn); break;
    case 'u16': case 's16': dv.setUint16(p, Number(BigInt.asUintN(16, b)), le); break;
    case 'u32': case 's32': dv.setUint32(p, Number(BigInt.asUintN(32, b)), le); break;
    default: dv.setBigUint64(p, BigInt.asUintN(64, b), le);
  }
}

// ---- reading -------------------------------------------------------------------------------------

/** Nesting deeper than this (only possible with recursive sets) is not decoded. */
const MAX_NEST = 32;

/** The typed reader and writer of one set, what a generated module exports per set (readX, writeX). */
export interface SetCodec<T> {
  read(v: View, start: number, end: number): T;
  write(w: Writer, o: T): void;
}

/** A set's reader and writer, its Field table built on first use (module load stays cheap). */
export function setCodec<T extends object>(spec: Spec, setName: string): SetCodec<T> {
  let fs: FieldSet | undefined;
  return {
    read: (v, start, end) => readSet(v, start, end, (fs ??= fieldSet(spec, setName)), 0) as T,
    write: (w, o) => writeFields(w, (fs ??= fieldSet(spec, setName)), o),
  };
}

/**
 * Decode the attributes in [start, end) as set `setName`. u64/s64/uint/sint become numbers when
 * exact (|x| <= 2^53-1), else bigints; plain enums become entry names (numbers when unknown);
 * flags stay numbers; flags are `true`; binaries are copies. Unknown types are ignored.
 */
export function readAttrs<T = Record<string, unknown>>(v: View, start: number, end: number, spec: Spec, setName: string): T {
  return readSet(v, start, end, fieldSet(spec, setName), 0) as T;
}

function readSet(v: View, start: number, end: number, cs: FieldSet, depth: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  walk(v, start, end, (at, type) => {
    const ca = cs.byType[type];
    if (!ca) return;
    const a = ca.a;
    if (a.type === 'indexed-array') {
      const arr: unknown[] = [];
      walk(v, at + 4, at + v.dv.getUint16(at, true), (e) => {
        const x = readOne(v, e, cs, ca, a.subType!, depth);
        if (x !== undefined) arr.push(x);
      });
      o[ca.key] = arr;
      return;
    }
    const x = readOne(v, at, cs, ca, a.type, depth);
    if (x === undefined) return;
    if (a.multiAttr) ((o[ca.key] ??= []) as unknown[]).push(x);
    else o[ca.key] = x;
  });
  return o;
}

function readOne(v: View, at: number, cs: FieldSet, ca: Field, t: AttrType, depth: number): unknown {
  const n = payloadLen(v, at);
  switch (t) {
    case 'flag': return true;
    case 'string': return getString(v, at);
    // A copy, also when buf is a Buffer (whose slice() is a view): the socket reuses its memory.
    case 'binary': return new Uint8Array(v.buf.subarray(at + 4, at + 4 + n));
    case 'nest':
      if (depth >= MAX_NEST) return undefined;
      return readSet(v, at + 4, at + 4 + n, fieldSet(cs.spec, ca.a.nestedAttributes!), depth + 1);
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
  const size = FIXED[t][0];
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
