// The reader of an attribute set, made once per set from its Field table (fields.ts), as its
// writer is (encoder.ts): one loop over the attributes and a switch on the type id whose cases
// store under their field's key as a constant. A generic reader stores through a computed key,
// which V8 handles with a megamorphic keyed store per attribute; this was most of a device
// record's decode (docs/performance.md). What each attribute decodes to is codec.ts's readOne.
import { NLA_HDRLEN, NLA_TYPE_MASK, type View } from '../../attrs';
import type { Field, SetReader } from './fields';
import type { AttrType } from './model';

/** Decodes one attribute (`at`: its header) of field `f` as type `t`; undefined: skip it. */
export type ReadOne = (v: View, at: number, f: Field, t: AttrType, depth: number, inPlace: boolean) => unknown;

/**
 * Makes a set's reader from its Field table (F), the type each field decodes as (T), readOne and a
 * new record. The generated module of a spec holds one per set (genl/ynl/gen.ts writes
 * readerSource's text into it), so the CLI's code cache has them compiled; compileReader compiles
 * the same text for a spec loaded at run time.
 */
// `any`: the reader's text is the same JavaScript in a generated module and in new Function.
export type ReaderMaker = (F: readonly Field[], T: readonly AttrType[], one: ReadOne, record: () => Record<string, any>) => SetReader;

/**
 * The text of the reader for a set's fields: one loop over the attributes and a switch on the type
 * id whose cases store under their field's key as a constant. Unknown types and malformed attributes
 * are skipped, as attrs' walk skips them: a length below the header or past the end stops the walk.
 */
export function readerSource(fields: readonly Field[]): string {
  const cases = fields.map((f, i) => {
    const key = JSON.stringify(f.key);
    if (f.t === 'indexed-array') {
      // A nest of elements (types 1, 2, ...), each decoded as the field's sub-type.
      return `case ${f.type}: { const arr = []; let e = at + ${NLA_HDRLEN}, r = len - ${NLA_HDRLEN};\n`
        + `        while (r >= ${NLA_HDRLEN}) { const l = dv.getUint16(e, true); if (l < ${NLA_HDRLEN} || l > r) break;\n`
        + `          x = one(v, e, F[${i}], T[${i}], depth, inPlace); if (x !== undefined) arr.push(x); const s = (l + 3) & ~3; e += s; r -= s; }\n`
        + `        o[${key}] = arr; break; }`;
    }
    const store = f.a.multiAttr ? `(o[${key}] ??= []).push(x)` : `o[${key}] = x`;
    return `case ${f.type}: x = one(v, at, F[${i}], T[${i}], depth, inPlace); if (x !== undefined) ${store}; break;`;
  });
  return `function read(v, start, end, depth, inPlace) {
  const o = record(), dv = v.dv;
  let at = start, rem = end - start, x;
  while (rem >= ${NLA_HDRLEN}) {
    const len = dv.getUint16(at, true);
    if (len < ${NLA_HDRLEN} || len > rem) break;
    switch (dv.getUint16(at + 2, true) & ${NLA_TYPE_MASK}) {
      ${cases.join('\n      ')}
    }
    const step = (len + 3) & ~3;
    at += step;
    rem -= step;
  }
  return o;
}`;
}

/** What each field decodes as: its type, or an indexed array's element type. */
const readTypes = (fields: readonly Field[]): AttrType[] => fields.map((f) => (f.t === 'indexed-array' ? f.a.subType! : f.t));

const record = (): Record<string, unknown> => ({});

/** The reader for a set's fields: made by `make` (generated), else compiled from readerSource. */
export function compileReader(fields: readonly Field[], one: ReadOne, make?: ReaderMaker): SetReader {
  make ??= new Function('F', 'T', 'one', 'record', `return ${readerSource(fields)};`) as ReaderMaker;
  return make(fields, readTypes(fields), one, record);
}
