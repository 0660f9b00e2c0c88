// The writer of an attribute set, the only one: compiled once per set from its Field table
// (fields.ts) to straight-line code with each field's key, attribute type and put function as
// constants, so encoding an object (an event in a storm, a device in a dump) costs property loads
// and calls of attrs/writer.ts's put functions, which lay out every byte. A value of the common
// shape (a number in range, a string, a Uint8Array, `true`, an object) is written as it is; any
// other goes to values.ts, which turns it into the integer to write (a bigint, an enum name, a list
// of flag names) or throws the error naming the field. Either way the same put function writes it.
import {
  nestEnd, nestStart, putBe16, putBe32, putBe64, putBytes, putFlag, putS16, putS32, putS64, putS8,
  putSint, putString, putU16, putU32, putU64, putU8, putUint,
} from '../../attrs';
import { type Field, type SetWriter, enumValues } from './fields';
import type { AttrType } from './model';
import { INT, elemType, intOf, isInt, refuse, within } from './values';

/** The put function of each integer type, by byte order (uint and sint have none but their own). */
const PUT: Record<'le' | 'be', Partial<Record<AttrType, string>>> = {
  le: { u8: 'putU8', s8: 'putS8', u16: 'putU16', s16: 'putS16', u32: 'putU32', s32: 'putS32', u64: 'putU64', s64: 'putS64', uint: 'putUint', sint: 'putSint' },
  be: { u8: 'putU8', s8: 'putS8', u16: 'putBe16', s16: 'putBe16', u32: 'putBe32', s32: 'putBe32', u64: 'putBe64', s64: 'putBe64', uint: 'putUint', sint: 'putSint' },
};
const puts = {
  putU8, putS8, putU16, putS16, putU32, putS32, putU64, putS64, putUint, putSint, putBe16, putBe32, putBe64,
  putString, putBytes, putFlag, nestStart, nestEnd,
};

/** The numbers written as they are: every integer of the type that a double holds exactly. */
function fastRange(t: keyof typeof INT): [number, number] {
  const [, min, max] = INT[t];
  return [Math.max(Number(min), -Number.MAX_SAFE_INTEGER), Math.min(Number(max), Number.MAX_SAFE_INTEGER)];
}

/** Code that writes value `v` (element `j`: a name, or -1) of field `i` as attribute type `type`. */
function one(f: Field, i: number, v: string, type: string, j: string): string {
  const t = elemType(f);
  const no = `refuse(F[${i}], ${v}, ${j})`;
  switch (t) {
    // Past nla_len, the attribute writer throws: the error names the field.
    case 'string': return `if (typeof ${v} === 'string') { try { putString(w, ${type}, ${v}); } catch (e) { throw within(e, F[${i}], ${j}); } } else ${no};`;
    case 'binary': return `if (${v} instanceof Uint8Array) { try { putBytes(w, ${type}, ${v}); } catch (e) { throw within(e, F[${i}], ${j}); } } else ${no};`;
    case 'flag': return `if (${v} === true) putFlag(w, ${type}); else if (${v} !== false) ${no};`;
    case 'nest':
      return `if (typeof ${v} === 'object' && ${v} !== null) { const n = nestStart(w, ${type}); `
        + `try { (subs[${i}] ??= sub(${i}))(w, ${v}); nestEnd(w, n); } catch (e) { throw within(e, F[${i}], ${j}); } } else ${no};`;
  }
  if (!isInt(t)) throw new Error(`${f.key}: no writer for type ${t}`);
  const put = PUT[f.be ? 'be' : 'le'][t]!;
  const [min, max] = fastRange(t);
  // A plain enum's name is looked up here; an unknown name, like any other shape, goes to intOf.
  const named = f.def && !f.bits;
  const x = named ? 'x' : v;
  // A 64-bit type also takes a bigint in range as it is (nanosecond timestamps are past 2^53).
  const [size, lo, hi] = INT[t];
  const big = size === 8 ? `else if (typeof ${x} === 'bigint' && ${x} >= ${lo}n && ${x} <= ${hi}n) ${put}(w, ${type}, ${x}); ` : '';
  const code = `if (typeof ${x} === 'number' && ${x} >= ${min} && ${x} <= ${max} && Number.isInteger(${x})) ${put}(w, ${type}, ${x}); `
    + `${big}else ${put}(w, ${type}, intOf(F[${i}], ${v}, ${j}));`;
  return named ? `{ const x = typeof ${v} === 'string' ? vals[${i}].get(${v}) ?? ${v} : ${v}; ${code} }` : code;
}

/**
 * Compile the writer for a set's fields (in the order they are written). `sub(i)` returns the
 * writer of nest field i's set, looked up on first use (sets may be recursive).
 */
export function compileWriter(fields: readonly Field[], sub: (i: number) => SetWriter): SetWriter {
  const body: string[] = [];
  fields.forEach((f, i) => {
    if (f.t === 'pad' || f.t === 'unused') return;
    body.push(`v = o[${JSON.stringify(f.key)}];`);
    const each = (type: string): string => `for (let j = 0; j < v.length; j++) { const e = v[j]; ${one(f, i, 'e', type, 'j')} }`;
    if (f.t === 'indexed-array') {
      // A nest of elements whose types are their 1-based index (as the kernel's nlctrl writes arrays).
      body.push(`if (v !== undefined && v !== null) { if (Array.isArray(v)) { const n = nestStart(w, ${f.type}); ${each('j + 1')} `
        + `try { nestEnd(w, n); } catch (e) { throw within(e, F[${i}], -1); } } else refuse(F[${i}], v, -1); }`);
    } else if (f.multi) {
      body.push(`if (v !== undefined && v !== null) { if (Array.isArray(v)) ${each(String(f.type))} else refuse(F[${i}], v, -1); }`);
    } else body.push(`if (v !== undefined && v !== null) { ${one(f, i, 'v', String(f.type), '-1')} }`);
  });
  const names = Object.keys(puts);
  const src = `const { ${names.join(', ')} } = h;\nreturn function write(w, o) {\n  let v;\n  ${body.join('\n  ')}\n};`;
  const vals = fields.map(enumValues);
  const subs: (SetWriter | undefined)[] = [];
  return new Function('h', 'F', 'vals', 'sub', 'subs', 'intOf', 'refuse', 'within', src)(
    puts, fields, vals, sub, subs, intOf, refuse, within) as SetWriter;
}
