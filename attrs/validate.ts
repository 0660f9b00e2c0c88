// Policy validation with the semantics of the kernel's __nla_validate_parse()/validate_nla():
// one generic walk over the policy tables, the same errno, extack message, offset and policy entry.
import { NLA, NLA_F_NESTED, NLA_HDRLEN, NLA_TYPE_MASK } from './consts';
import { EINVAL, ERANGE } from './errno';
import { type Extack, setErrAttr, setErrAttrPol, setErrMsg, setBadAttr } from './extack';
import { VALIDATE, type Policy, type PolicyEntry } from './policy';
import { type View, absentAll } from './reader';

/** `enum netlink_validation` flags. */
export const NL_VALIDATE = {
  LIBERAL: 0, TRAILING: 1, MAXTYPE: 2, UNSPEC: 4, STRICT_ATTRS: 8, NESTED: 16,
  STRICT: 31, DEPRECATED_STRICT: 3,
} as const;

/** MAX_POLICY_RECURSION_DEPTH */
export const MAX_DEPTH = 10;

// nla_attr_len[]: exact sizes of fixed-width types; nla_attr_minlen[]: minimum sizes.
const EXACT = new Uint8Array(22);
const MINLEN = new Uint8Array(22);
for (const [t, n] of [[NLA.U8, 1], [NLA.U16, 2], [NLA.U32, 4], [NLA.U64, 8], [NLA.S8, 1], [NLA.S16, 2],
  [NLA.S32, 4], [NLA.S64, 8], [NLA.BE16, 2], [NLA.BE32, 4]] as const) { EXACT[t] = n; MINLEN[t] = n; }
MINLEN[NLA.MSECS] = 8;
MINLEN[NLA.NESTED] = NLA_HDRLEN;

const U64_MAX = 0xffffffffffffffffn;

/**
 * Validate the attributes in [start, end) against `pol` with `maxtype` and `flags` (NL_VALIDATE.*).
 * Fills `tb[type]` with header offsets (-1 when absent) when given, like nla_parse. Returns 0 or a
 * negative errno; `ext` then says why and where. A "bytes leftover" message may be left in `ext`
 * even on success, as a warning, as the kernel does in liberal mode. Never throws on any input.
 */
export function validate(v: View, start: number, end: number, maxtype: number, pol: Policy | undefined,
  flags: number, ext: Extack | undefined, tb?: Int32Array, depth = 0): number {
  if (depth >= MAX_DEPTH) {
    setErrMsg(ext, 'allowed policy recursion depth exceeded');
    return -EINVAL;
  }
  if (tb) absentAll(tb);
  const dv = v.dv;
  let at = start;
  let rem = end - start;
  while (rem >= NLA_HDRLEN) {
    const len = dv.getUint16(at, true);
    if (len < NLA_HDRLEN || len > rem) break;
    const type = dv.getUint16(at + 2, true) & NLA_TYPE_MASK;
    if (type === 0 || type > maxtype) {
      if (flags & NL_VALIDATE.MAXTYPE) {
        setErrAttr(ext, at, 'Unknown attribute type');
        return -EINVAL;
      }
    } else {
      if (pol) {
        const err = validateAttr(v, at, pol, flags, ext, depth);
        if (err < 0) return err;
      }
      if (tb && type < tb.length) tb[type] = at;
    }
    const step = (len + 3) & ~3;
    at += step;
    rem -= step;
  }
  if (rem > 0) {
    setErrMsg(ext, 'bytes leftover after parsing attributes');
    if (flags & NL_VALIDATE.TRAILING) return -EINVAL;
  }
  return 0;
}

const UNSPEC: PolicyEntry = { type: NLA.UNSPEC };

/** validate_nla(): one attribute against its policy entry. */
function validateAttr(v: View, at: number, pol: Policy, flags: number, ext: Extack | undefined, depth: number): number {
  const dv = v.dv;
  const rawType = dv.getUint16(at + 2, true);
  const type = rawType & NLA_TYPE_MASK;
  const attrlen = dv.getUint16(at, true) - NLA_HDRLEN;
  if (pol.strictStartType && type >= pol.strictStartType) flags |= NL_VALIDATE.STRICT;
  const pt = pol.entries[type] ?? UNSPEC;
  const t = pt.type;
  let err = -ERANGE;
  const p = at + NLA_HDRLEN;

  if (EXACT[t] && attrlen !== EXACT[t] && (flags & NL_VALIDATE.STRICT_ATTRS)) {
    setErrAttrPol(ext, at, pt, 'invalid attribute length');
    return -EINVAL;
  }
  if (flags & NL_VALIDATE.NESTED) {
    const isNest = t === NLA.NESTED || t === NLA.NESTED_ARRAY;
    if (isNest && !(rawType & NLA_F_NESTED)) {
      setErrAttrPol(ext, at, pt, 'NLA_F_NESTED is missing');
      return -EINVAL;
    }
    if (!isNest && t !== NLA.UNSPEC && (rawType & NLA_F_NESTED)) {
      setErrAttrPol(ext, at, pt, 'NLA_F_NESTED not expected');
      return -EINVAL;
    }
  }

  fail: {
    switch (t) {
      case NLA.REJECT:
        if (ext && pt.rejectMessage) {
          setBadAttr(ext, at);
          ext.msg = pt.rejectMessage;
          return -EINVAL;
        }
        err = -EINVAL;
        break fail;
      case NLA.FLAG:
        if (attrlen > 0) break fail;
        break;
      case NLA.SINT:
      case NLA.UINT:
        if (attrlen !== 4 && attrlen !== 8) {
          setErrAttrPol(ext, at, pt, 'invalid attribute length');
          return -EINVAL;
        }
        break;
      case NLA.BITFIELD32: {
        if (attrlen !== 8) break fail;
        const valid = Number(pt.mask ?? 0) >>> 0;
        const value = dv.getUint32(p, true);
        const selector = dv.getUint32(p + 4, true);
        if (!valid || (selector & ~valid) || (value & ~valid) || (value & ~selector)) {
          err = -EINVAL;
          break fail;
        }
        break;
      }
      case NLA.NUL_STRING:
      case NLA.STRING:
        if (t === NLA.NUL_STRING) {
          const minlen = pt.len ? Math.min(attrlen, pt.len + 1) : attrlen;
          let nul = p;
          while (nul < p + minlen && v.buf[nul] !== 0) nul++;
          if (!minlen || nul === p + minlen) {
            err = -EINVAL;
            break fail;
          }
        }
        if (attrlen < 1) break fail;
        if (pt.len) {
          const n = v.buf[p + attrlen - 1] === 0 ? attrlen - 1 : attrlen;
          if (n > pt.len) break fail;
        }
        break;
      case NLA.BINARY:
        if (pt.len && attrlen > pt.len) break fail;
        break;
      case NLA.NESTED:
      case NLA.NESTED_ARRAY:
        if (attrlen === 0) break;
        if (attrlen < NLA_HDRLEN) break fail;
        if (pt.nested) {
          const maxtype = pt.len ?? pt.nested.maxtype;
          const e = t === NLA.NESTED
            ? validate(v, p, p + attrlen, maxtype, pt.nested, flags, ext, undefined, depth + 1)
            : validateArray(v, p, p + attrlen, maxtype, pt.nested, flags, ext, depth);
          if (e < 0) return e; // keep the inner message and attribute
        }
        break;
      case NLA.UNSPEC:
        if (flags & NL_VALIDATE.UNSPEC) {
          setErrAttr(ext, at, 'Unsupported attribute');
          return -EINVAL;
        }
        if (attrlen < (pt.len ?? 0)) break fail;
        break;
      default: {
        const minlen = pt.len ? pt.len : MINLEN[t];
        if (attrlen < minlen) break fail;
      }
    }

    // Further validation: ranges, masks, functions.
    switch (pt.validation ?? VALIDATE.NONE) {
      case VALIDATE.NONE:
        return 0;
      case VALIDATE.MASK:
        return validateMask(v, at, pt, ext);
      case VALIDATE.FUNCTION:
        return pt.fn ? pt.fn(v, at, ext) : 0;
      default:
        return validateRange(v, at, pt, flags, ext);
    }
  }
  setErrAttrPol(ext, at, pt, 'Attribute failed policy validation');
  return err;
}

/** nla_validate_array(): each element is a nest of attributes validated against `pol`. */
function validateArray(v: View, start: number, end: number, maxtype: number, pol: Policy, flags: number,
  ext: Extack | undefined, depth: number): number {
  const dv = v.dv;
  let at = start;
  let rem = end - start;
  while (rem >= NLA_HDRLEN) {
    const len = dv.getUint16(at, true);
    if (len < NLA_HDRLEN || len > rem) break;
    const n = len - NLA_HDRLEN;
    if (n !== 0) {
      if (n < NLA_HDRLEN) {
        setErrAttrPol(ext, at, pol.entries[0], 'Array element too short');
        return -ERANGE;
      }
      const e = validate(v, at + NLA_HDRLEN, at + len, maxtype, pol, flags, ext, undefined, depth + 1);
      if (e < 0) return e;
    }
    const step = (len + 3) & ~3;
    at += step;
    rem -= step;
  }
  return 0;
}

/** The integer an attribute holds, read as its policy type says (unsigned or signed, bigint for 64-bit). */
function readInt(v: View, at: number, t: number): number | bigint | undefined {
  const dv = v.dv;
  const p = at + NLA_HDRLEN;
  switch (t) {
    case NLA.U8: return v.buf[p];
    case NLA.U16: return dv.getUint16(p, true);
    case NLA.U32: return dv.getUint32(p, true);
    case NLA.U64: case NLA.MSECS: return dv.getBigUint64(p, true);
    case NLA.UINT: return dv.getUint16(at, true) === 12 ? dv.getBigUint64(p, true) : dv.getUint32(p, true);
    case NLA.BE16: return dv.getUint16(p, false);
    case NLA.BE32: return dv.getUint32(p, false);
    case NLA.S8: return dv.getInt8(p);
    case NLA.S16: return dv.getInt16(p, true);
    case NLA.S32: return dv.getInt32(p, true);
    case NLA.S64: return dv.getBigInt64(p, true);
    case NLA.SINT: return dv.getUint16(at, true) === 12 ? dv.getBigInt64(p, true) : dv.getInt32(p, true);
    case NLA.BINARY: return dv.getUint16(at, true) - NLA_HDRLEN;
    default: return undefined;
  }
}

const lt = (a: number | bigint, b: number | bigint): boolean =>
  typeof a === typeof b ? a < b : BigInt(a) < BigInt(b);

/** The range an entry allows (nla_get_range_unsigned/_signed): type limits narrowed by its bounds. */
export function entryRange(pt: PolicyEntry): { min: number | bigint; max: number | bigint; signed: boolean } {
  let min: number | bigint;
  let max: number | bigint;
  let signed = false;
  switch (pt.type) {
    case NLA.U8: min = 0; max = 0xff; break;
    case NLA.U16: case NLA.BE16: case NLA.BINARY: min = 0; max = 0xffff; break;
    case NLA.U32: case NLA.BE32: min = 0; max = 0xffffffff; break;
    case NLA.U64: case NLA.UINT: case NLA.MSECS: min = 0; max = U64_MAX; break;
    case NLA.S8: min = -0x80; max = 0x7f; signed = true; break;
    case NLA.S16: min = -0x8000; max = 0x7fff; signed = true; break;
    case NLA.S32: min = -0x80000000; max = 0x7fffffff; signed = true; break;
    case NLA.S64: case NLA.SINT: min = -0x8000000000000000n; max = 0x7fffffffffffffffn; signed = true; break;
    default: min = 0; max = 0;
  }
  switch (pt.validation) {
    case VALIDATE.RANGE: case VALIDATE.RANGE_PTR:
      min = pt.min ?? min; max = pt.max ?? max; break;
    case VALIDATE.RANGE_WARN_TOO_LONG:
      if (!signed) { min = pt.min ?? min; max = pt.max ?? max; }
      break;
    case VALIDATE.MIN: min = pt.min ?? min; break;
    case VALIDATE.MAX: max = pt.max ?? max; break;
  }
  return { min, max, signed };
}

function validateRange(v: View, at: number, pt: PolicyEntry, flags: number, ext: Extack | undefined): number {
  const value = readInt(v, at, pt.type);
  if (value === undefined) return -EINVAL;
  const { min, max } = entryRange(pt);
  if (pt.validation === VALIDATE.RANGE_WARN_TOO_LONG && pt.type === NLA.BINARY && lt(max, value)) {
    if (flags & NL_VALIDATE.STRICT_ATTRS) {
      setErrAttrPol(ext, at, pt, 'invalid attribute length');
      return -EINVAL;
    }
    return 0;
  }
  if (lt(value, min) || lt(max, value)) {
    setErrAttrPol(ext, at, pt, pt.type === NLA.BINARY ? 'binary attribute size out of range' : 'integer out of range');
    return -ERANGE;
  }
  return 0;
}

function validateMask(v: View, at: number, pt: PolicyEntry, ext: Extack | undefined): number {
  const t = pt.type;
  if (t === NLA.S8 || t === NLA.S16 || t === NLA.S32 || t === NLA.S64 || t === NLA.SINT || t === NLA.BINARY) return -EINVAL;
  const value = readInt(v, at, t);
  if (value === undefined) return -EINVAL;
  const mask = BigInt(pt.mask ?? 0);
  if (BigInt(value) & ~mask & U64_MAX) {
    setErrAttr(ext, at, 'reserved bit set');
    return -EINVAL;
  }
  return 0;
}
