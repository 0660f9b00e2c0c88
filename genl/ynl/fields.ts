// The one encoding of an attribute set that everything in genl/ynl works from: per attribute its
// object field, wire type id, type, byte order and enum tables, in attribute-value order and by
// type id. The reader (decoder.ts) and the writer (encoder.ts) are compiled from it.
import type { View, Writer } from '../../attrs';
import { type Attr, type AttrType, type Definition, type Spec, camel, findDef, getSet } from './model';

export interface Field {
  a: Attr;
  /** The object field: camelCase of the spec name (the generated ATTR_NAMES table lists them). */
  key: string;
  /** The attribute's type id on the wire. */
  type: number;
  t: AttrType;
  multi: boolean;
  be: boolean;
  def?: Definition;
  /** The enum is written as bits: a flags definition, or enum-as-flags. */
  bits: boolean;
  /** value → name, for reading plain enums back as names (shared by the fields of one enum). */
  names?: Map<number, string>;
  /** name → value written (a bit for enum-as-flags), for writing names: see enumValues. */
  values?: Map<string, number | bigint>;
}

export interface FieldSet {
  spec: Spec;
  name: string;
  /** In attribute-value order, pad and unused left out. */
  ordered: Field[];
  byType: (Field | undefined)[];
  /** The set's writer (encoder.ts), compiled on first write. */
  writer?: SetWriter;
  /** The set's reader (decoder.ts), compiled on first read. */
  reader?: SetReader;
}

/** The writer of one set (encoder.ts). */
export type SetWriter = (w: Writer, o: Record<string, unknown>) => void;

/** The reader of one set (decoder.ts): its attributes in [start, end) as an object, fields in wire order. */
export type SetReader = (v: View, start: number, end: number, depth: number, inPlace: boolean) => Record<string, unknown>;

export const narrow = (x: bigint): number | bigint => (x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x);

const sets = new WeakMap<Spec, Map<string, FieldSet>>();

/**
 * Value → name of each plain enum, built once per definition and shared by its fields. A set's
 * Field table is built when a command first reads or writes it; per field, these maps (and the
 * bigints of `values`) were most of that cost, which every short CLI command paid.
 */
const enumNames = new WeakMap<Definition, Map<number, string>>();

function namesOf(def: Definition): Map<number, string> {
  let m = enumNames.get(def);
  if (!m) enumNames.set(def, (m = new Map(def.entries!.map((e) => [e.value, e.name]))));
  return m;
}

/** Field `f`'s name → value table (for writing names), built on first use. */
export function enumValues(f: Field): Map<string, number | bigint> | undefined {
  const def = f.def;
  if (!def || f.values) return f.values;
  return (f.values = new Map(def.entries!.map((e) => [e.name,
    narrow(f.bits && def.type !== 'flags' ? 1n << BigInt(e.value) : BigInt(e.value))])));
}

/** The fields of set `setName`, built once per spec object. */
export function fieldSet(spec: Spec, setName: string): FieldSet {
  let m = sets.get(spec);
  if (!m) sets.set(spec, (m = new Map()));
  let fs = m.get(setName);
  if (fs) return fs;
  const set = getSet(spec, setName);
  const ordered = set.attributes.filter((a) => a.type !== 'pad' && a.type !== 'unused')
    .sort((x, y) => x.value - y.value)
    .map((a): Field => {
      const def = a.enum !== undefined ? findDef(spec, a.enum) : undefined;
      const bits = !!def && (def.type === 'flags' || a.enumAsFlags === true);
      const f: Field = { a, key: camel(a.name), type: a.value, t: a.type, multi: a.multiAttr === true, be: a.byteOrder === 'big-endian', def, bits };
      if (def && !bits) f.names = namesOf(def);
      return f;
    });
  const byType: (Field | undefined)[] = new Array(set.max + 1).fill(undefined);
  for (const f of ordered) byType[f.type] = f;
  fs = { spec, name: setName, ordered, byType };
  m.set(setName, fs);
  return fs;
}
