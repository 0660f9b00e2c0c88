// Policies on the wire: the NL_POLICY_TYPE_ATTR_* nests of nlctrl's GETPOLICY dump and of the
// extack POLICY TLV (net/netlink/policy.c semantics), and the way back from those nests to entries.
import { NLA, NL_ATTR_TYPE as T, NL_POLICY_TYPE_ATTR as P } from './consts';
import { ENODATA } from './errno';
import { type Policy, type PolicyEntry, VALIDATE } from './policy';
import { type View, getU32, getU64, getS64, walk } from './reader';
import { entryRange } from './validate';
import { type Writer, nestEnd, nestStart, putS64, putU32, putU64, trim } from './writer';

/** The list of (policy, maxtype) pairs a dump covers, indexed in discovery order. */
export interface PolicyDumpState {
  policies: { policy: Policy; maxtype: number }[];
}

export const newPolicyDumpState = (): PolicyDumpState => ({ policies: [] });

function addOne(s: PolicyDumpState, policy: Policy | undefined, maxtype: number): void {
  // As the 6.18 kernel does: a policy without attributes (maxtype 0) gets no index.
  if (!policy || !maxtype) return;
  if (s.policies.some((p) => p.policy === policy && p.maxtype === maxtype)) return;
  s.policies.push({ policy, maxtype });
}

/** Add a policy, then every nested policy reachable from the list (netlink_policy_dump_add_policy). */
export function addPolicy(s: PolicyDumpState, policy: Policy | undefined, maxtype: number): void {
  addOne(s, policy, maxtype);
  for (let i = 0; i < s.policies.length; i++) {
    const { policy: p, maxtype: max } = s.policies[i];
    for (let t = 0; t <= max; t++) {
      const e = p.entries[t];
      if (e && (e.type === NLA.NESTED || e.type === NLA.NESTED_ARRAY)) addOne(s, e.nested, e.len ?? 0);
    }
  }
}

/** Index of a (policy, maxtype) pair in the dump; -1 when it was never added. */
export function policyIndex(s: PolicyDumpState, policy: Policy | undefined, maxtype: number): number {
  return s.policies.findIndex((p) => p.policy === policy && p.maxtype === maxtype);
}

/** Whether the kernel advertises an entry in policy dumps (UNSPEC, REJECT, BE16, BE32 are skipped). */
export function isAdvertised(pt: PolicyEntry | undefined): boolean {
  const t = pt?.type ?? NLA.UNSPEC;
  return t !== NLA.UNSPEC && t !== NLA.REJECT && t !== NLA.BE16 && t !== NLA.BE32 && t <= NLA.UINT;
}

/**
 * Write one attribute's policy as a nest of type `nestType` (TYPE always last). Returns 0, or
 * -ENODATA and writes nothing for UNSPEC, REJECT, BE16 and BE32, which the kernel does not advertise.
 * Without `state`, nested entries carry only their TYPE (as in the extack POLICY TLV).
 */
export function writePolicyAttr(w: Writer, pt: PolicyEntry | undefined, nestType: number, state?: PolicyDumpState): number {
  const start = w.len;
  const nest = nestStart(w, nestType);
  let type: number;
  const t = pt?.type ?? NLA.UNSPEC;
  switch (t) {
    case NLA.NESTED:
    case NLA.NESTED_ARRAY:
      type = t === NLA.NESTED ? T.NESTED : T.NESTED_ARRAY;
      if (state && pt!.nested && pt!.len) {
        putU32(w, P.POLICY_IDX, policyIndex(state, pt!.nested, pt!.len));
        putU32(w, P.POLICY_MAXTYPE, pt!.len);
      }
      break;
    case NLA.U8: case NLA.U16: case NLA.U32: case NLA.U64: case NLA.UINT: case NLA.MSECS: {
      type = t === NLA.U8 ? T.U8 : t === NLA.U16 ? T.U16 : t === NLA.U32 ? T.U32 : t === NLA.U64 ? T.U64 : T.UINT;
      if (pt!.validation === VALIDATE.MASK) putU64(w, P.MASK, BigInt(pt!.mask ?? 0));
      else if (pt!.validation !== VALIDATE.FUNCTION) {
        const r = entryRange(pt!);
        putU64(w, P.MIN_VALUE_U, r.min);
        putU64(w, P.MAX_VALUE_U, r.max);
      }
      break;
    }
    case NLA.S8: case NLA.S16: case NLA.S32: case NLA.S64: case NLA.SINT: {
      type = t === NLA.S8 ? T.S8 : t === NLA.S16 ? T.S16 : t === NLA.S32 ? T.S32 : t === NLA.S64 ? T.S64 : T.SINT;
      if (pt!.validation !== VALIDATE.FUNCTION) {
        const r = entryRange(pt!);
        putS64(w, P.MIN_VALUE_S, r.min);
        putS64(w, P.MAX_VALUE_S, r.max);
      }
      break;
    }
    case NLA.BITFIELD32:
      type = T.BITFIELD32;
      putU32(w, P.BITFIELD32_MASK, Number(pt!.mask ?? 0));
      break;
    case NLA.STRING: case NLA.NUL_STRING: case NLA.BINARY:
      type = t === NLA.STRING ? T.STRING : t === NLA.NUL_STRING ? T.NUL_STRING : T.BINARY;
      if (pt!.validation === VALIDATE.RANGE || pt!.validation === VALIDATE.RANGE_WARN_TOO_LONG) {
        const r = entryRange({ ...pt!, type: NLA.BINARY });
        if (Number(r.min)) putU32(w, P.MIN_LENGTH, Number(r.min));
        if (Number(r.max) < 0xffff) putU32(w, P.MAX_LENGTH, Number(r.max));
      } else if (pt!.len) putU32(w, P.MAX_LENGTH, pt!.len);
      break;
    case NLA.FLAG:
      type = T.FLAG;
      break;
    default:
      trim(w, start);
      return -ENODATA;
  }
  putU32(w, P.TYPE, type);
  nestEnd(w, nest);
  return 0;
}

/** A decoded policy entry, with its nested policy still as an index into the dump. */
export interface DumpedEntry extends PolicyEntry {
  nestedIdx?: number;
}

const safe = (b: bigint): number | bigint => (b <= 0x1fffffffffffffn && b >= -0x1fffffffffffffn ? Number(b) : b);

/**
 * Turn an NL_POLICY_TYPE_ATTR_* nest payload back into an entry that validates as the kernel
 * advertised it and re-encodes to the same bytes. Returns undefined for an unknown TYPE.
 */
export function readPolicyAttr(v: View, start: number, end: number): DumpedEntry | undefined {
  let type = -1;
  let minU: bigint | undefined, maxU: bigint | undefined, minS: bigint | undefined, maxS: bigint | undefined;
  let mask: bigint | undefined, minLen: number | undefined, maxLen: number | undefined;
  let idx: number | undefined, maxtype: number | undefined, bf: number | undefined;
  walk(v, start, end, (at, t) => {
    switch (t) {
      case P.TYPE: type = getU32(v, at); break;
      case P.MIN_VALUE_U: minU = getU64(v, at); break;
      case P.MAX_VALUE_U: maxU = getU64(v, at); break;
      case P.MIN_VALUE_S: minS = getS64(v, at); break;
      case P.MAX_VALUE_S: maxS = getS64(v, at); break;
      case P.MASK: mask = getU64(v, at); break;
      case P.MIN_LENGTH: minLen = getU32(v, at); break;
      case P.MAX_LENGTH: maxLen = getU32(v, at); break;
      case P.POLICY_IDX: idx = getU32(v, at); break;
      case P.POLICY_MAXTYPE: maxtype = getU32(v, at); break;
      case P.BITFIELD32_MASK: bf = getU32(v, at); break;
    }
  });
  const ints: Record<number, number> = {
    [T.U8]: NLA.U8, [T.U16]: NLA.U16, [T.U32]: NLA.U32, [T.U64]: NLA.U64, [T.UINT]: NLA.UINT,
    [T.S8]: NLA.S8, [T.S16]: NLA.S16, [T.S32]: NLA.S32, [T.S64]: NLA.S64, [T.SINT]: NLA.SINT,
  };
  if (ints[type] !== undefined) {
    const e: DumpedEntry = { type: ints[type] };
    if (mask !== undefined) return { ...e, validation: VALIDATE.MASK, mask: safe(mask) };
    const lo = minU ?? minS, hi = maxU ?? maxS;
    if (lo === undefined || hi === undefined) return { ...e, validation: VALIDATE.FUNCTION };
    const d = entryRange(e);
    if (BigInt(d.min) === lo && BigInt(d.max) === hi) return e;
    return { ...e, validation: VALIDATE.RANGE, min: safe(lo), max: safe(hi) };
  }
  switch (type) {
    case T.FLAG: return { type: NLA.FLAG };
    case T.BITFIELD32: return { type: NLA.BITFIELD32, mask: bf ?? 0 };
    case T.NESTED: case T.NESTED_ARRAY:
      return { type: type === T.NESTED ? NLA.NESTED : NLA.NESTED_ARRAY, len: maxtype, nestedIdx: idx };
    case T.STRING: case T.NUL_STRING: case T.BINARY: {
      const nt = type === T.STRING ? NLA.STRING : type === T.NUL_STRING ? NLA.NUL_STRING : NLA.BINARY;
      // Only a RANGE produces MIN_LENGTH; a lone MAX_LENGTH is read as `.len`, the common case.
      if (minLen !== undefined) return { type: nt, validation: VALIDATE.RANGE, min: minLen, max: maxLen ?? 0xffff };
      return maxLen !== undefined ? { type: nt, len: maxLen } : { type: nt };
    }
  }
  return undefined;
}
