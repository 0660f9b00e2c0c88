// Attribute reader: walks a buffer in place through a DataView, never copies, never throws on
// malformed input. Offsets are absolute positions in the buffer the View wraps.
import { TextDecoder } from 'util';
import { NLA_HDRLEN, NLA_TYPE_MASK } from './consts';

/** A buffer and a DataView on it; make one per datagram, share it with every reader call. */
export interface View {
  buf: Uint8Array;
  dv: DataView;
}

export function view(buf: Uint8Array): View {
  return { buf, dv: new DataView(buf.buffer, buf.byteOffset, buf.byteLength) };
}

/** nla_ok(): a whole attribute header and payload fit in the `rem` bytes at `at`. */
export function attrOk(v: View, at: number, rem: number): boolean {
  if (rem < NLA_HDRLEN) return false;
  const len = v.dv.getUint16(at, true);
  return len >= NLA_HDRLEN && len <= rem;
}

/** Attribute length field (header included, padding excluded). */
export const attrLen = (v: View, at: number): number => v.dv.getUint16(at, true);
/** Type with NLA_F_NESTED and NLA_F_NET_BYTEORDER masked off. */
export const attrType = (v: View, at: number): number => v.dv.getUint16(at + 2, true) & NLA_TYPE_MASK;
/** The raw 16-bit type field, flags included. */
export const attrTypeRaw = (v: View, at: number): number => v.dv.getUint16(at + 2, true);
/** Payload offset and length. */
export const payload = (at: number): number => at + NLA_HDRLEN;
export const payloadLen = (v: View, at: number): number => v.dv.getUint16(at, true) - NLA_HDRLEN;
/** Offset of the attribute after this one (nla_next). */
export const next = (v: View, at: number): number => at + ((v.dv.getUint16(at, true) + 3) & ~3);

/**
 * Call `cb(at, type)` for each well-formed attribute in [start, end), as nla_for_each_attr does.
 * `cb` may return false to stop early. Returns the bytes left unparsed: 0, or > 0 when a short
 * header, a length below 4 or a length past the end stopped the walk (the kernel's "leftover").
 * It can be negative when the last attribute's padding runs past `end`, which the kernel accepts.
 */
export function walk(v: View, start: number, end: number, cb: (at: number, type: number) => boolean | void): number {
  let at = start;
  let rem = end - start;
  const dv = v.dv;
  while (rem >= NLA_HDRLEN) {
    const len = dv.getUint16(at, true);
    if (len < NLA_HDRLEN || len > rem) break;
    if (cb(at, dv.getUint16(at + 2, true) & NLA_TYPE_MASK) === false) return 0;
    const step = (len + 3) & ~3;
    at += step;
    rem -= step;
  }
  return rem;
}

/**
 * tb[i] = -1 (absent) for every i. A loop: tables are maxtype + 1 entries, and TypedArray#fill is a
 * call into the runtime that cost more than filling them (measured per request in the daemon).
 */
export function absentAll(tb: Int32Array): Int32Array {
  for (let i = 0; i < tb.length; i++) tb[i] = -1;
  return tb;
}

/**
 * Index attributes by type into `tb` (like nla_parse without a policy): tb[type] = header offset,
 * -1 when absent, the last occurrence winning. Types above tb.length-1 are skipped. `tb` is reused
 * by the caller, so parsing allocates nothing. Returns what walk() returns.
 */
export function parseInto(v: View, start: number, end: number, tb: Int32Array): number {
  absentAll(tb);
  const max = tb.length - 1;
  let at = start;
  let rem = end - start;
  const dv = v.dv;
  while (rem >= NLA_HDRLEN) {
    const len = dv.getUint16(at, true);
    if (len < NLA_HDRLEN || len > rem) break;
    const type = dv.getUint16(at + 2, true) & NLA_TYPE_MASK;
    if (type <= max) tb[type] = at;
    const step = (len + 3) & ~3;
    at += step;
    rem -= step;
  }
  return rem;
}

// Typed getters take the attribute's header offset. They read what is there; validation (the
// policy walk) is what guarantees the lengths, as in the kernel.
export const getU8 = (v: View, at: number): number => v.buf[at + 4];
export const getS8 = (v: View, at: number): number => (v.buf[at + 4] << 24) >> 24;
export const getU16 = (v: View, at: number): number => v.dv.getUint16(at + 4, true);
export const getS16 = (v: View, at: number): number => v.dv.getInt16(at + 4, true);
export const getU32 = (v: View, at: number): number => v.dv.getUint32(at + 4, true);
export const getS32 = (v: View, at: number): number => v.dv.getInt32(at + 4, true);
export const getU64 = (v: View, at: number): bigint => v.dv.getBigUint64(at + 4, true);
export const getS64 = (v: View, at: number): bigint => v.dv.getBigInt64(at + 4, true);
export const getBe16 = (v: View, at: number): number => v.dv.getUint16(at + 4, false);
export const getBe32 = (v: View, at: number): number => v.dv.getUint32(at + 4, false);

/** 64-bit unsigned as a Number when exact (<= 2^53-1), else a BigInt. */
export function getU64Num(v: View, at: number): number | bigint {
  const lo = v.dv.getUint32(at + 4, true);
  const hi = v.dv.getUint32(at + 8, true);
  return hi < 0x200000 ? hi * 0x100000000 + lo : v.dv.getBigUint64(at + 4, true);
}

/** NLA_UINT: 4 or 8 bytes (nla_get_uint); other lengths read as 0, validation rejects them. */
export function getUint(v: View, at: number): number | bigint {
  const n = payloadLen(v, at);
  if (n === 4) return v.dv.getUint32(at + 4, true);
  if (n === 8) return getU64Num(v, at);
  return 0;
}

/** NLA_SINT: 4 or 8 bytes, sign-extended. Number when exact, else BigInt. */
export function getSint(v: View, at: number): number | bigint {
  const n = payloadLen(v, at);
  if (n === 4) return v.dv.getInt32(at + 4, true);
  if (n === 8) {
    const b = v.dv.getBigInt64(at + 4, true);
    return b >= -0x1fffffffffffffn && b <= 0x1fffffffffffffn ? Number(b) : b;
  }
  return 0;
}

export function getBitfield32(v: View, at: number): { value: number; selector: number } {
  return { value: v.dv.getUint32(at + 4, true), selector: v.dv.getUint32(at + 8, true) };
}

let decoder: TextDecoder | undefined;

/** A string payload, up to its first NUL (or the payload end when there is none). */
export function getString(v: View, at: number): string {
  const p = at + 4;
  const end = p + payloadLen(v, at);
  let e = p;
  const buf = v.buf;
  let ascii = true;
  while (e < end && buf[e] !== 0) {
    if (buf[e] >= 0x80) ascii = false;
    e++;
  }
  if (ascii && e - p < 64) {
    let s = '';
    for (let i = p; i < e; i++) s += String.fromCharCode(buf[i]);
    return s;
  }
  decoder ??= new TextDecoder();
  return decoder.decode(buf.subarray(p, e));
}

/** The payload as a view into the same memory (no copy). */
export const getBytes = (v: View, at: number): Uint8Array => v.buf.subarray(at + 4, at + 4 + payloadLen(v, at));
