// A compiled writer per attribute set, generated from its Field table (fields.ts): straight-line
// code with each field's key, attribute type and size as constants, so encoding an object (an event in a storm, a device in a dump) costs
// property loads and DataView stores, with no per-field dispatch on type names. Only the common,
// valid shapes take this path: anything else (enum arrays, indexed arrays, big-endian 64-bit,
// values out of range) goes to `slow`, the table-driven writer, which also owns every error
// message. The output is byte-identical to the table-driven writer's.
import { type Writer, nestEnd, nestStart, putBytes, putFlag, putString, putU64, reserve } from '../../attrs';
import type { FastWriter, Field } from './fields';
import type { AttrType } from './model';

/** The table-driven way, which throws on bad values: one occurrence of field `i`, or (`whole`) the field's value. */
export interface Slow {
  one(w: Writer, i: number, v: unknown): void;
  whole(w: Writer, i: number, v: unknown): void;
}

const INT: Partial<Record<AttrType, [min: number, max: number, size: 1 | 2 | 4, set: string]>> = {
  u8: [0, 0xff, 1, ''], s8: [-0x80, 0x7f, 1, ''], u16: [0, 0xffff, 2, 'setUint16'], s16: [-0x8000, 0x7fff, 2, 'setInt16'],
  u32: [0, 0xffffffff, 4, 'setUint32'], s32: [-0x80000000, 0x7fffffff, 4, 'setInt32'],
  uint: [0, 0xffffffff, 4, 'setUint32'], sint: [-0x80000000, 0x7fffffff, 4, 'setInt32'],
};

/** Code that writes number `x` as field `f`'s scalar, or hands value `v` to the slow path. */
function scalar(f: Field, i: number, x: string, v: string): string | undefined {
  const le = !f.be;
  const int = INT[f.t];
  if (int) {
    const [min, max, size, set] = int;
    const store = size === 1 ? `w.buf[p] = ${x} & 0xff;` : `w.dv.${set}(p, ${x}, ${le});`;
    return `if (typeof ${x} === 'number' && ${x} >= ${min} && ${x} <= ${max} && Number.isInteger(${x})) { const p = h.reserve(w, ${f.type}, ${size}); ${store} } else slow(w, ${i}, ${v});`;
  }
  if (f.t === 'u64' && le) {
    return `if (typeof ${x} === 'number' ? ${x} >= 0 && ${x} <= ${Number.MAX_SAFE_INTEGER} && Number.isInteger(${x}) : typeof ${x} === 'bigint' && ${x} >= 0n && ${x} <= 0xffffffffffffffffn) h.putU64(w, ${f.type}, ${x}); else slow(w, ${i}, ${v});`;
  }
  return undefined;
}

/** Code that writes one value `v` of field `f` (index `i`). */
function one(f: Field, i: number, v: string, sub: string): string {
  switch (f.t) {
    case 'string': return `if (typeof ${v} === 'string') h.putString(w, ${f.type}, ${v}); else slow(w, ${i}, ${v});`;
    case 'binary': return `if (${v} instanceof Uint8Array) h.putBytes(w, ${f.type}, ${v}); else slow(w, ${i}, ${v});`;
    case 'flag': return `if (${v} === true) h.putFlag(w, ${f.type}); else if (${v} !== false) slow(w, ${i}, ${v});`;
    case 'nest':
      return `if (typeof ${v} === 'object' && ${v} !== null) { const n = h.nestStart(w, ${f.type}); ${sub}(w, ${v}); h.nestEnd(w, n); } else slow(w, ${i}, ${v});`;
  }
  if (f.values && !f.bits) {
    const code = scalar(f, i, 'x', v);
    if (!code) return `slow(w, ${i}, ${v});`;
    return `{ const x = typeof ${v} === 'string' ? vals[${i}].get(${v}) : ${v}; ${code} }`;
  }
  return scalar(f, i, v, v) ?? `slow(w, ${i}, ${v});`;
}

/**
 * Compile the writer for a set's fields (in the order they are written). `sub(i)` returns the
 * compiled writer of nest field i's set, looked up on first use (sets may be recursive).
 */
export function compileWriter(fields: readonly Field[], slow: Slow, sub: (i: number) => FastWriter): FastWriter {
  const body: string[] = [];
  fields.forEach((f, i) => {
    if (f.t === 'pad' || f.t === 'unused') return;
    const s = `(subs[${i}] ??= sub(${i}))`;
    body.push(`v = o[${JSON.stringify(f.key)}];`);
    if (f.t === 'indexed-array') body.push(`if (v !== undefined && v !== null) whole(w, ${i}, v);`);
    else if (f.multi) {
      body.push(`if (v !== undefined && v !== null) { if (Array.isArray(v)) for (let j = 0; j < v.length; j++) { const e = v[j]; ${one(f, i, 'e', s)} } else whole(w, ${i}, v); }`);
    } else body.push(`if (v !== undefined && v !== null) { ${one(f, i, 'v', s)} }`);
  });
  const src = `return function write(w, o) {\n  let v;\n  ${body.join('\n  ')}\n};`;
  const h = { reserve, putU64, putString, putBytes, putFlag, nestStart, nestEnd };
  const vals = fields.map((f) => f.values);
  const subs: (FastWriter | undefined)[] = [];
  return new Function('h', 'slow', 'whole', 'sub', 'subs', 'vals', src)(h, slow.one, slow.whole, sub, subs, vals) as FastWriter;
}
