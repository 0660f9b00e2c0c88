// What a field of an attribute set accepts beyond the common shapes, and the error when it accepts
// nothing: the writer (encoder.ts) writes numbers in range, strings, Uint8Arrays, `true` and objects
// itself and hands anything else here, to be turned into the integer it then writes (a bigint, an
// enum entry name, a list of flag names) or refused. Every error message of the writer is made
// here, with the path of the field (`all.inner.label`), which each enclosing nest and finally the
// set add to as the error passes out. Nothing here writes bytes.
import { type Field, enumValues, narrow } from './fields';
import type { AttrType } from './model';

type IntType = 'u8' | 's8' | 'u16' | 's16' | 'u32' | 's32' | 'u64' | 's64' | 'uint' | 'sint';

/** Per integer type: its size on the wire (uint/sint: at most) and its exact bounds. */
export const INT: Record<IntType, readonly [size: number, min: bigint, max: bigint]> = {
  u8: [1, 0n, 0xffn], s8: [1, -0x80n, 0x7fn], u16: [2, 0n, 0xffffn], s16: [2, -0x8000n, 0x7fffn],
  u32: [4, 0n, 0xffffffffn], s32: [4, -0x80000000n, 0x7fffffffn],
  u64: [8, 0n, 0xffffffffffffffffn], s64: [8, -0x8000000000000000n, 0x7fffffffffffffffn],
  uint: [8, 0n, 0xffffffffffffffffn], sint: [8, -0x8000000000000000n, 0x7fffffffffffffffn],
};

export const isInt = (t: AttrType): t is IntType => t in INT;

/** The type of one value of field `f`: an indexed array's elements are of its sub-type. */
export const elemType = (f: Field): AttrType => (f.t === 'indexed-array' ? f.a.subType! : f.t);

/** The path of each error the writer made, innermost first, and the message without it. */
const made = new WeakMap<Error, { at: string[]; text: string }>();

function fail(f: Field, index: number, e: TypeError | RangeError): never {
  made.set(e, { at: [step(f, index)], text: e.message });
  throw e;
}

const step = (f: Field, index: number): string => (index >= 0 ? `${f.key}[${index}]` : f.key);

/** A value of non-integer field `f` (element `index`, or -1) that is not what its type takes. */
export function refuse(f: Field, v: unknown, index: number): never {
  if (index < 0 && (f.multi || f.t === 'indexed-array') && !Array.isArray(v)) return fail(f, index, new TypeError('expected an array'));
  const t = elemType(f);
  const want = t === 'flag' ? 'a boolean' : t === 'string' ? 'a string' : t === 'binary' ? 'a Uint8Array' : 'an object';
  return fail(f, index, new TypeError(`expected ${want}`));
}

/**
 * The integer field `f` (element `index`, or -1) writes for `v`: a number when the type is 32 bits
 * or less, else a number or bigint; `v` may be a number, a bigint, an enum entry's name or (flags)
 * a list of names. Throws when `v` is none of these or does not fit the type, compared exactly (as
 * doubles 2^64 would pass for u64's max: both round to 1.8446744073709552e19).
 */
export function intOf(f: Field, v: unknown, index: number): number | bigint {
  const t = elemType(f) as IntType;
  const [size, min, max] = INT[t];
  let x: number | bigint;
  if (typeof v === 'number' || typeof v === 'bigint') x = v;
  else if (typeof v === 'string' && f.def) x = entry(f, v, index);
  else if (Array.isArray(v) && f.bits) x = narrow(v.reduce((m: bigint, n) => m | BigInt(entry(f, n, index)), 0n));
  else return fail(f, index, new TypeError(`expected an integer${f.def ? ` or ${f.def.name} name` : ''}`));
  if (typeof x === 'number' && !Number.isInteger(x)) return fail(f, index, new TypeError(`${x} is not an integer`));
  const exact = typeof x === 'number' && !Number.isSafeInteger(x) ? BigInt(x) : x;
  if (exact < min || exact > max) return fail(f, index, new RangeError(`${x} does not fit ${t}`));
  return size <= 4 ? Number(x) : x;
}

function entry(f: Field, name: unknown, index: number): number | bigint {
  const e = typeof name === 'string' ? enumValues(f)?.get(name) : undefined;
  if (e !== undefined) return e;
  return fail(f, index, new TypeError(`${JSON.stringify(name)} is not ${f.def ? `an entry of ${f.def.name}` : 'an integer'}`));
}

/**
 * An error passing out of field `f` (element `index`): its path gains the step. A RangeError of the
 * attribute writer (a string, a payload or a nest past nla_len's 65535) starts its path here.
 */
export function within(e: unknown, f: Field, index: number): unknown {
  const m = made.get(e as Error);
  if (m) m.at.unshift(step(f, index));
  else if (e instanceof RangeError) made.set(e, { at: [step(f, index)], text: e.message });
  return e;
}

/** An error passing out of set `setName`, the outermost: its message gets the whole path. */
export function named(e: unknown, setName: string): unknown {
  const m = made.get(e as Error);
  if (m) (e as Error).message = `${[setName, ...m.at].join('.')}: ${m.text}`;
  return e;
}
