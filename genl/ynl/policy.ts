// Kernel policies derived from a spec exactly as ynl_gen_c.py renders them for split ops: one
// policy per op half covering only its request attributes, and one shared policy per nested set
// (all of its attributes), so policy dumps dedupe nested policies the way the kernel's do.
import { type Extack, NLA, type Policy, type PolicyEntry, VALIDATE, type View, setErrAttr } from '../../attrs';
import { EINVAL } from '../../attrs/errno';
import { type Attr, type Operation, type Spec, cLower, findDef, findOp, getSet, resolveLimit } from './model';

export interface HalfPolicy {
  policy: Policy;
  maxattr: number;
}

/** Policies of one op; a half without a `request` section has none (attributes are not parsed). */
export interface OpPolicies {
  do?: HalfPolicy;
  dump?: HalfPolicy;
}

interface Cache {
  sets: Map<string, Policy>;
  ops: Map<string, OpPolicies>;
}
const caches = new WeakMap<Spec, Cache>();

function cache(spec: Spec): Cache {
  let c = caches.get(spec);
  if (!c) caches.set(spec, (c = { sets: new Map(), ops: new Map() }));
  return c;
}

const NLA_OF: Record<string, number> = {
  u8: NLA.U8, u16: NLA.U16, u32: NLA.U32, u64: NLA.U64, s8: NLA.S8, s16: NLA.S16, s32: NLA.S32, s64: NLA.S64,
  uint: NLA.UINT, sint: NLA.SINT,
};

const big = (x: number | bigint): bigint => BigInt(x);
const num = (x: bigint): number | bigint => (x >= -(2n ** 53n) + 1n && x <= 2n ** 53n - 1n ? Number(x) : x);

/**
 * The shared policy of a nested set: every attribute, maxtype = the set's highest value. The object
 * is registered before it is filled so that recursive sets point at themselves.
 */
export function setPolicy(spec: Spec, setName: string): Policy {
  const c = cache(spec);
  const hit = c.sets.get(setName);
  if (hit) return hit;
  const set = getSet(spec, setName);
  const entries: (PolicyEntry | undefined)[] = new Array(set.max + 1).fill(undefined);
  const name = setName === spec.name ? `${cLower(spec.name)}_nl_policy` : `${cLower(spec.name)}_${cLower(setName)}_nl_policy`;
  const p: Policy = { maxtype: set.max, entries, name };
  c.sets.set(setName, p);
  for (const a of set.attributes) entries[a.value] = attrPolicy(spec, a);
  return p;
}

/** The policies of op `opName` (memoized per spec, so repeated families share the objects). */
export function opPolicies(spec: Spec, opName: string): OpPolicies {
  const c = cache(spec);
  const hit = c.ops.get(opName);
  if (hit) return hit;
  const op = findOp(spec, opName);
  if (!op) throw new Error(`${spec.name}: no operation "${opName}"`);
  // ynl_gen_c names the policies per half only when both halves have a request ("dual policy").
  const dual = op.do?.request !== undefined && op.dump?.request !== undefined;
  const out: OpPolicies = {};
  for (const mode of ['do', 'dump'] as const) {
    const h = halfPolicy(spec, op, mode, dual);
    if (h) out[mode] = h;
  }
  c.ops.set(opName, out);
  return out;
}

function halfPolicy(spec: Spec, op: Operation, mode: 'do' | 'dump', dual: boolean): HalfPolicy | undefined {
  const names = op[mode]?.request;
  if (!names?.length) return undefined;
  const set = getSet(spec, op.attributeSet!);
  const attrs = names.map((n) => set.attributes.find((a) => a.name === n)!);
  const maxattr = Math.max(...attrs.map((a) => a.value));
  const entries: (PolicyEntry | undefined)[] = new Array(maxattr + 1).fill(undefined);
  for (const a of attrs) entries[a.value] = attrPolicy(spec, a);
  const name = `${cLower(spec.name)}_${cLower(op.name)}${dual ? `_${mode}` : ''}_nl_policy`;
  return { policy: { maxtype: maxattr, entries, name }, maxattr };
}

/** One attribute's policy entry; undefined for pad and unused (left NLA_UNSPEC). */
export function attrPolicy(spec: Spec, a: Attr): PolicyEntry | undefined {
  const c = a.checks ?? {};
  const len = (l: typeof c.maxLen): number => resolveLimit(spec, l) as number;
  switch (a.type) {
    case 'pad': case 'unused': return undefined;
    case 'flag': return { type: NLA.FLAG };
    case 'string':
      if (c.exactLen !== undefined) return exactLen(len(c.exactLen));
      return c.maxLen !== undefined
        ? { type: c.unterminatedOk ? NLA.STRING : NLA.NUL_STRING, len: len(c.maxLen) }
        : { type: c.unterminatedOk ? NLA.STRING : NLA.NUL_STRING };
    case 'binary':
      if (c.exactLen !== undefined) return exactLen(len(c.exactLen));
      if (c.minLen !== undefined) return { type: NLA.BINARY, validation: VALIDATE.MIN, min: len(c.minLen) };
      if (c.maxLen !== undefined) return { type: NLA.BINARY, validation: VALIDATE.MAX, max: len(c.maxLen) };
      return { type: NLA.BINARY };
    case 'nest': {
      const p = setPolicy(spec, a.nestedAttributes!);
      return { type: NLA.NESTED, nested: p, len: p.maxtype };
    }
    case 'indexed-array': {
      if (a.subType !== 'nest') {
        throw new Error(`${spec.name}: "${a.name}" (indexed-array of ${a.subType}) has no kernel policy in ynl_gen_c`);
      }
      const p = setPolicy(spec, a.nestedAttributes!);
      return { type: NLA.NESTED_ARRAY, nested: p, len: p.maxtype };
    }
    default: return scalarPolicy(spec, a);
  }
}

/** NLA_POLICY_EXACT_LEN(n): a binary range n..n, also for strings. */
const exactLen = (n: number): PolicyEntry => ({ type: NLA.BINARY, validation: VALIDATE.RANGE, min: n, max: n });

/** TypeScalar._init_checks() + _attr_policy(): mask, full range, range, min, max, sparse enum, plain. */
function scalarPolicy(spec: Spec, a: Attr): PolicyEntry {
  let type = NLA_OF[a.type];
  if (a.byteOrder === 'big-endian' && (a.type === 'u16' || a.type === 'u32')) type = a.type === 'u16' ? NLA.BE16 : NLA.BE32;
  const c = a.checks ?? {};
  const def = a.enum !== undefined ? findDef(spec, a.enum) : undefined;
  const bitfield = !!def && (a.enumAsFlags === true || def.type === 'flags');
  if (c.flagsMask !== undefined || bitfield) {
    let mask: bigint;
    if (bitfield) {
      // enum-as-flags turns each enum value into a bit; flags entries already are bits.
      mask = def!.entries!.reduce((m, e) => m | (def!.type === 'flags' ? big(e.value) : 1n << big(e.value)), 0n);
    } else {
      mask = (1n << big(findDef(spec, c.flagsMask!)!.entries!.length)) - 1n;
    }
    return { type, validation: VALIDATE.MASK, mask: num(mask) };
  }
  let min = resolveLimit(spec, c.min);
  let max = resolveLimit(spec, c.max);
  let sparse: Set<bigint> | undefined;
  if (def) {
    const vals = def.entries!.map((e) => e.value);
    const low = Math.min(...vals);
    const high = Math.max(...vals);
    if (high - low + 1 !== vals.length) sparse = new Set(vals.map(big));
    else {
      if (min === undefined && (low !== 0 || a.type[0] === 's')) min = low;
      if (max === undefined) max = high;
    }
  }
  const lo = big(min ?? 0) < big(max ?? 0) ? big(min ?? 0) : big(max ?? 0);
  const hi = big(min ?? 0) > big(max ?? 0) ? big(min ?? 0) : big(max ?? 0);
  if (lo < -32768n || hi > 32767n) {
    // NLA_POLICY_FULL_RANGE: a zero-initialised struct, so a missing bound is 0, as in C.
    return { type, validation: VALIDATE.RANGE_PTR, min: min ?? 0, max: max ?? 0 };
  }
  if (min !== undefined && max !== undefined) return { type, validation: VALIDATE.RANGE, min, max };
  if (min !== undefined) return { type, validation: VALIDATE.MIN, min };
  if (max !== undefined) return { type, validation: VALIDATE.MAX, max };
  if (sparse) return { type, validation: VALIDATE.FUNCTION, fn: sparseCheck(a.type, sparse) };
  return { type };
}

/** The generated `<attr>_validate()` of a sparse enum: nla_get_<type>() must be one of the entries. */
function sparseCheck(t: string, allowed: Set<bigint>): (v: View, at: number, ext: Extack | undefined) => number {
  return (v, at, ext) => {
    const dv = v.dv;
    const p = at + 4;
    const n = dv.getUint16(at, true) - 4;
    let x: bigint;
    switch (t) {
      case 'u8': x = big(dv.getUint8(p)); break;
      case 's8': x = big(dv.getInt8(p)); break;
      case 'u16': x = big(dv.getUint16(p, true)); break;
      case 's16': x = big(dv.getInt16(p, true)); break;
      case 'u32': x = big(dv.getUint32(p, true)); break;
      case 's32': x = big(dv.getInt32(p, true)); break;
      case 'u64': x = dv.getBigUint64(p, true); break;
      case 's64': x = dv.getBigInt64(p, true); break;
      case 'uint': x = n === 8 ? dv.getBigUint64(p, true) : big(dv.getUint32(p, true)); break;
      default: x = n === 8 ? dv.getBigInt64(p, true) : big(dv.getInt32(p, true));
    }
    if (allowed.has(x)) return 0;
    setErrAttr(ext, at, 'invalid enum value');
    return -EINVAL;
  };
}
