// The YNL spec data model: plain data, keys camelCased, every default filled in by load.ts, so
// policy derivation, the codec and the generator never look at raw YAML.

export type ScalarType = 'u8' | 'u16' | 'u32' | 'u64' | 's8' | 's16' | 's32' | 's64' | 'uint' | 'sint';
export type AttrType = ScalarType | 'unused' | 'pad' | 'flag' | 'binary' | 'string' | 'nest' | 'indexed-array';

export const SCALAR_TYPES: readonly ScalarType[] = ['u8', 'u16', 'u32', 'u64', 's8', 's16', 's32', 's64', 'uint', 'sint'];
export const ATTR_TYPES: readonly AttrType[] = [...SCALAR_TYPES, 'unused', 'pad', 'flag', 'binary', 'string', 'nest', 'indexed-array'];

/** A limit: a number, a `const` definition's name, or a type limit such as `u32-max`. */
export type Limit = number | string;

export interface Checks {
  min?: Limit;
  max?: Limit;
  minLen?: Limit;
  maxLen?: Limit;
  exactLen?: Limit;
  /** Name of a `flags` definition; the mask is (1 << its entry count) - 1, as ynl_gen_c computes it. */
  flagsMask?: string;
  unterminatedOk?: boolean;
}

export interface EnumEntry {
  name: string;
  /** The value on the wire: for `flags` definitions the bit (2 ** position), not the position. */
  value: number;
  doc?: string;
}

export interface Definition {
  name: string;
  type: 'const' | 'enum' | 'flags';
  doc?: string;
  /** `const` only. */
  value?: number | string;
  /** `enum` and `flags`: the first entry's value (flags: its bit position). */
  valueStart?: number;
  entries?: EnumEntry[];
  header?: string;
  renderMax?: boolean;
  enumName?: string;
  namePrefix?: string;
}

export interface Attr {
  name: string;
  /** Attribute type id: explicit `value`, else the previous one + 1, starting at 1. */
  value: number;
  type: AttrType;
  doc?: string;
  nestedAttributes?: string;
  multiAttr?: boolean;
  enum?: string;
  enumAsFlags?: boolean;
  checks?: Checks;
  byteOrder?: 'little-endian' | 'big-endian';
  /** indexed-array element type. */
  subType?: AttrType;
  displayHint?: string;
}

export interface AttrSet {
  name: string;
  /** C enum prefix; only used for documentation (default `<family>-a-<set>-`). */
  namePrefix: string;
  doc?: string;
  subsetOf?: string;
  enumName?: string;
  /** In spec order. */
  attributes: Attr[];
  /** The highest attribute value (0 when empty). */
  max: number;
}

export interface OpHalfSpec {
  /** Request attribute names; absent = no request section = no policy. */
  request?: string[];
  reply?: string[];
  pre?: string;
  post?: string;
}

export type OpFlag = 'admin-perm' | 'uns-admin-perm';
export type DontValidate = 'strict' | 'dump' | 'dump-strict';

export interface Operation {
  name: string;
  /** Command id (unified enum): explicit `value`, else the previous one + 1, starting at 1. */
  value: number;
  doc?: string;
  attributeSet?: string;
  flags: OpFlag[];
  dontValidate: DontValidate[];
  configCond?: string;
  do?: OpHalfSpec;
  dump?: OpHalfSpec;
  /** Name of the op whose reply this notification shares. */
  notify?: string;
  event?: { attributes: string[] };
  mcgrp?: string;
}

export interface McastGroup {
  name: string;
  flags: OpFlag[];
}

export interface Spec {
  name: string;
  doc?: string;
  protocol: 'genetlink' | 'genetlink-c' | 'genetlink-legacy';
  uapiHeader?: string;
  /** Family version (genetlink-legacy `version`), default 1. */
  version: number;
  definitions: Definition[];
  attributeSets: AttrSet[];
  operations: Operation[];
  mcastGroups: McastGroup[];
}

/** One row of a generated ATTR_NAMES table: an attribute's three spellings. */
export interface AttrName {
  /** As in the spec: `dev-index`. */
  name: string;
  /** Key of the set's constant object: `DEV_INDEX` (ACCEL.DEV_INDEX). */
  constant: string;
  /** Object field of the codec and the generated interface: `devIndex`. */
  field: string;
  /** The set a nest (or an indexed array of nests) holds, for walking an attribute path. */
  nested?: string;
}

// Names: YNL uses lower-case words joined by '-'; TS gets camelCase fields, PascalCase types and
// UPPER_SNAKE constants.
const words = (n: string): string[] => n.split(/[-_]+/).filter(Boolean);
/**
 * camelCase: the words as they are, each after the first with its first letter upper-cased. A loop,
 * not words(): a set's Field table names every attribute once, and the split, map and join of each
 * name were a third of building the table, which a short CLI command pays per set it decodes.
 */
export function camel(n: string): string {
  let s = '';
  let up = false;
  for (let i = 0; i < n.length; i++) {
    const c = n[i];
    if (c === '-' || c === '_') up = s !== '';
    else {
      s += up ? c.toUpperCase() : c;
      up = false;
    }
  }
  return s;
}
export const pascal = (n: string): string => words(n).map((w) => w[0].toUpperCase() + w.slice(1)).join('');
export const upperSnake = (n: string): string => words(n).join('_').toUpperCase();
/** ynl_gen_c's c_lower(): the C identifier form, used for policy names. */
export const cLower = (n: string): string => n.toLowerCase().replace(/-/g, '_');

export const findSet = (s: Spec, name: string): AttrSet | undefined => s.attributeSets.find((a) => a.name === name);
export const findDef = (s: Spec, name: string): Definition | undefined => s.definitions.find((d) => d.name === name);
export const findOp = (s: Spec, name: string): Operation | undefined => s.operations.find((o) => o.name === name);

export function getSet(s: Spec, name: string): AttrSet {
  const set = findSet(s, name);
  if (!set) throw new Error(`${s.name}: no attribute set "${name}"`);
  return set;
}

/** Whether an op is a notification or event only (never registered, nothing to handle). */
export const isAsync = (op: Operation): boolean => !op.do && !op.dump;

/** limit_to_number(): `u32-max` → 4294967295, `s8-min` → -128; a bigint when beyond 2^53. */
export function typeLimit(name: string): number | bigint | undefined {
  const m = /^([su])(8|16|32|64)-(min|max)$/.exec(name);
  if (!m) return undefined;
  const bits = BigInt(Number(m[2]) - (m[1] === 's' ? 1 : 0));
  const v = m[3] === 'max' ? (1n << bits) - 1n : m[1] === 's' ? -(1n << bits) : 0n;
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** A check's value: a literal, a numeric `const` definition, or a type limit; undefined if unresolvable. */
export function resolveLimit(s: Spec, l: Limit | undefined): number | bigint | undefined {
  if (l === undefined || typeof l === 'number') return l;
  const d = findDef(s, l);
  if (d) return d.type === 'const' && typeof d.value === 'number' ? d.value : undefined;
  return typeLimit(l);
}
