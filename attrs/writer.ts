// Attribute writer: one growing buffer, nests back-patched, padding zeroed after each attribute,
// exactly as the kernel's nla_put*() family lays them out (lib/nlattr.c, include/net/netlink.h).
import { TextEncoder } from 'util';
import { NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_HDRLEN } from './consts';

/** nla_len is 16 bits and includes the 4-byte header. */
export const MAX_PAYLOAD = 0xffff - NLA_HDRLEN;

export interface Writer {
  buf: Uint8Array;
  dv: DataView;
  /** Bytes written so far; the next attribute starts here (always 4-aligned between puts). */
  len: number;
  /**
   * Type of the pad attribute to emit before 64-bit values when the payload would be
   * misaligned, as `nla_put_u64_64bit` does on arches without efficient unaligned access.
   * 0 (the default) never pads, which is what x86_64 does.
   */
  pad64: number;
}

export function newWriter(capacity = 4096): Writer {
  const buf = new Uint8Array(capacity);
  return { buf, dv: new DataView(buf.buffer), len: 0, pad64: 0 };
}

/** Forget the contents, keep the memory. */
export function resetWriter(w: Writer): void {
  w.len = 0;
}

/** Make room for `n` more bytes; returns the offset where they start. Does not advance. */
export function ensure(w: Writer, n: number): number {
  const need = w.len + n;
  if (need > w.buf.length) {
    let cap = w.buf.length * 2;
    while (cap < need) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(w.buf.subarray(0, w.len));
    w.buf = nb;
    w.dv = new DataView(nb.buffer);
  }
  return w.len;
}

/** Append bytes as they are (encoded attributes, or whole messages), growing the buffer as needed. */
export function putRaw(w: Writer, bytes: Uint8Array): void {
  const at = ensure(w, bytes.length);
  copyBytes(w.buf, at, bytes);
  w.len = at + bytes.length;
}

/**
 * dst[at ..] = src[from .. to). Up to 64 bytes, a loop: a subarray() for set() costs more than
 * the copy (an ACK's 16-byte echo). V8 copies to or from a SharedArrayBuffer in relaxed atomic
 * words only when the two addresses agree modulo 8, and byte by byte otherwise: 0.8 ms per MiB on
 * our 2-vCPU VM against 0.1, and 0.05 for a plain memcpy. An attribute's payload lies at any
 * 4-byte offset, so such a copy goes through an ordinary buffer placed at the shared side's
 * alignment: one plain copy and one word-wise copy.
 */
export function copyBytes(dst: Uint8Array, at: number, src: Uint8Array, from = 0, to = src.length): void {
  const n = to - from;
  if (n <= 64) {
    for (let i = 0; i < n; i++) dst[at + i] = src[from + i];
    return;
  }
  const part = from === 0 && to === src.length ? src : src.subarray(from, to);
  if (n >= 256 && ((part.byteOffset - dst.byteOffset - at) & 7) !== 0) {
    const srcShared = isShared(part);
    if (srcShared || isShared(dst)) {
      const b = bounceAt(srcShared ? part.byteOffset : dst.byteOffset + at, n);
      b.set(part);
      dst.set(b, at);
      return;
    }
  }
  dst.set(part, at);
}

const isShared = (a: Uint8Array): boolean => typeof SharedArrayBuffer !== 'undefined' && a.buffer instanceof SharedArrayBuffer;

/** The bounce buffer of copyBytes: kept up to 256 KiB (an attribute holds under 64 KiB). */
let bounce = new Uint8Array(0);
function bounceAt(align: number, n: number): Uint8Array {
  let b = bounce;
  if (b.length < n + 8) {
    b = new Uint8Array(n + 8);
    if (b.length <= 256 << 10) bounce = b;
  }
  return b.subarray(align & 7, (align & 7) + n);
}

/** Zero the bytes from `len` up to the next 4-byte boundary and move there. */
function finish(w: Writer, end: number): void {
  const aligned = (end + 3) & ~3;
  for (let i = end; i < aligned; i++) w.buf[i] = 0;
  w.len = aligned;
}

/** Reserve an attribute of `payload` bytes; returns the payload offset (`__nla_reserve`). */
export function reserve(w: Writer, type: number, payload: number): number {
  if (payload > MAX_PAYLOAD) throw new RangeError(`attribute payload of ${payload} bytes exceeds ${MAX_PAYLOAD}`);
  const at = ensure(w, NLA_HDRLEN + payload + 3);
  w.dv.setUint16(at, NLA_HDRLEN + payload, true);
  w.dv.setUint16(at + 2, type, true);
  finish(w, at + NLA_HDRLEN + payload);
  return at + NLA_HDRLEN;
}

export function putBytes(w: Writer, type: number, data: Uint8Array): void {
  const p = reserve(w, type, data.length); // first: it may replace w.buf
  copyBytes(w.buf, p, data);
}

export function putFlag(w: Writer, type: number): void {
  reserve(w, type, 0);
}

export function putU8(w: Writer, type: number, v: number): void {
  const p = reserve(w, type, 1);
  w.buf[p] = v;
}
export const putS8 = putU8;

export function putU16(w: Writer, type: number, v: number): void {
  const p = reserve(w, type, 2);
  w.dv.setUint16(p, v, true);
}
export function putS16(w: Writer, type: number, v: number): void {
  const p = reserve(w, type, 2);
  w.dv.setInt16(p, v, true);
}

export function putU32(w: Writer, type: number, v: number): void {
  const p = reserve(w, type, 4);
  w.dv.setUint32(p, v >>> 0, true);
}
export function putS32(w: Writer, type: number, v: number): void {
  const p = reserve(w, type, 4);
  w.dv.setInt32(p, v | 0, true);
}

/** Network-order 16/32-bit values. `net` sets NLA_F_NET_BYTEORDER, as nla_put_net16/32 do (nla_put_be* does not). */
export function putBe16(w: Writer, type: number, v: number, net = false): void {
  const p = reserve(w, net ? type | NLA_F_NET_BYTEORDER : type, 2);
  w.dv.setUint16(p, v, false);
}
export function putBe32(w: Writer, type: number, v: number, net = false): void {
  const p = reserve(w, net ? type | NLA_F_NET_BYTEORDER : type, 4);
  w.dv.setUint32(p, v >>> 0, false);
}

/** A network-order 64-bit value: no NLA_F_NET_BYTEORDER, and no pad attribute before it (the YNL writer's big-endian u64/s64). */
export function putBe64(w: Writer, type: number, v: bigint | number): void {
  const p = reserve(w, type, 8);
  w.dv.setBigUint64(p, BigInt.asUintN(64, BigInt(v)), false);
}

function pad64(w: Writer): void {
  // nla_align_64bit: pad when the payload (4 bytes after the tail) would not be 8-aligned.
  if (w.pad64 && (w.len & 7) === 0) reserve(w, w.pad64, 0);
}

export function putU64(w: Writer, type: number, v: bigint | number): void {
  pad64(w);
  const p = reserve(w, type, 8);
  if (typeof v === 'number' && v >= 0 && v <= Number.MAX_SAFE_INTEGER && Number.isInteger(v)) {
    // Two 32-bit halves: no BigInt allocation for the common case.
    w.dv.setUint32(p, v >>> 0, true);
    w.dv.setUint32(p + 4, Math.floor(v / 0x100000000), true);
  } else w.dv.setBigUint64(p, BigInt.asUintN(64, BigInt(v)), true);
}
export function putS64(w: Writer, type: number, v: bigint | number): void {
  pad64(w);
  const p = reserve(w, type, 8);
  w.dv.setBigInt64(p, BigInt.asIntN(64, BigInt(v)), true);
}

/** NLA_UINT (nla_put_uint): 4 bytes when the value fits in 32 bits, else 8. */
export function putUint(w: Writer, type: number, v: bigint | number): void {
  if (typeof v === 'number' && v >= 0 && v <= 0xffffffff && Number.isInteger(v)) {
    const p = reserve(w, type, 4);
    w.dv.setUint32(p, v, true);
    return;
  }
  const b = BigInt.asUintN(64, BigInt(v));
  const p = reserve(w, type, b <= 0xffffffffn ? 4 : 8);
  if (b <= 0xffffffffn) w.dv.setUint32(p, Number(b), true);
  else w.dv.setBigUint64(p, b, true);
}

/** NLA_SINT (nla_put_sint): 4 bytes when the value fits in s32, else 8. */
export function putSint(w: Writer, type: number, v: bigint | number): void {
  if (typeof v === 'number' && Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff) {
    const p = reserve(w, type, 4);
    w.dv.setInt32(p, v, true);
    return;
  }
  const b = BigInt.asIntN(64, BigInt(v));
  const small = b >= -0x80000000n && b <= 0x7fffffffn;
  const p = reserve(w, type, small ? 4 : 8);
  if (small) w.dv.setInt32(p, Number(b), true);
  else w.dv.setBigInt64(p, b, true);
}

export function putBitfield32(w: Writer, type: number, value: number, selector: number): void {
  const p = reserve(w, type, 8);
  w.dv.setUint32(p, value >>> 0, true);
  w.dv.setUint32(p + 4, selector >>> 0, true);
}

let encoder: TextEncoder | undefined;

/**
 * Write `s` as UTF-8 at the writer's tail + 4 and return its byte length.
 * ASCII (the common case: names, handles) is copied by a plain loop; anything else goes through TextEncoder.
 */
function writeUtf8(w: Writer, s: string, extra: number): number {
  const n = s.length;
  const start = ensure(w, NLA_HDRLEN + n * 3 + extra + 3) + NLA_HDRLEN;
  const buf = w.buf;
  let p = start;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) {
      encoder ??= new TextEncoder();
      return encoder.encodeInto(s, buf.subarray(start, start + n * 3)).written;
    }
    buf[p++] = c;
  }
  return n;
}

/** A string's encoded payload must fit nla_len; the writer is left as it was (w.len not yet moved). */
function checkString(payload: number): void {
  if (payload > MAX_PAYLOAD) throw new RangeError(`string attribute of ${payload} bytes exceeds ${MAX_PAYLOAD}`);
}

/** nla_put_string: the payload is the string plus its NUL. */
export function putString(w: Writer, type: number, s: string): void {
  const at = w.len;
  const n = writeUtf8(w, s, 1);
  checkString(n + 1);
  w.buf[at + NLA_HDRLEN + n] = 0;
  w.dv.setUint16(at, NLA_HDRLEN + n + 1, true);
  w.dv.setUint16(at + 2, type, true);
  finish(w, at + NLA_HDRLEN + n + 1);
}

/** A string without its NUL (what NLA_STRING accepts, and what some peers send). */
export function putStringNoNul(w: Writer, type: number, s: string): void {
  const at = w.len;
  const n = writeUtf8(w, s, 0);
  checkString(n);
  w.dv.setUint16(at, NLA_HDRLEN + n, true);
  w.dv.setUint16(at + 2, type, true);
  finish(w, at + NLA_HDRLEN + n);
}

/** Open a nest (`nla_nest_start`, with NLA_F_NESTED); returns the offset to pass to nestEnd. */
export function nestStart(w: Writer, type: number): number {
  const at = ensure(w, NLA_HDRLEN);
  w.dv.setUint32(at, 0, true);
  w.dv.setUint16(at + 2, type | NLA_F_NESTED, true);
  w.len = at + NLA_HDRLEN;
  return at;
}

/** Open a nest without NLA_F_NESTED (`nla_nest_start_noflag`), as nlctrl's OPS and MCAST_GROUPS are. */
export function nestStartNoflag(w: Writer, type: number): number {
  const at = ensure(w, NLA_HDRLEN);
  w.dv.setUint32(at, 0, true);
  w.dv.setUint16(at + 2, type, true);
  w.len = at + NLA_HDRLEN;
  return at;
}

/** Close a nest: its length covers the header and every child with its padding. */
export function nestEnd(w: Writer, at: number): void {
  const n = w.len - at;
  if (n > 0xffff) throw new RangeError(`nest of ${n} bytes does not fit nla_len`);
  w.dv.setUint16(at, n, true);
}

/** Drop everything written since `at` (nla_nest_cancel / nlmsg_trim). */
export function trim(w: Writer, at: number): void {
  w.len = at;
}

/** A copy of the bytes written so far. */
export function bytes(w: Writer): Uint8Array {
  return w.buf.slice(0, w.len);
}
