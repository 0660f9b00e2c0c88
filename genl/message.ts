// nlmsghdr and genlmsghdr: written into an attrs Writer (several messages may share one buffer,
// as in a dump datagram) and read through a View.
import { type View, type Writer, ensure } from '../attrs';
import { GENL_HDRLEN, NLMSG_HDRLEN } from './consts';

export interface NlHeader {
  len: number;
  type: number;
  flags: number;
  seq: number;
  pid: number;
}

/** Start a netlink message at the writer's tail; returns its offset for msgEnd. */
export function msgStart(w: Writer, type: number, flags: number, seq: number, pid: number): number {
  const at = ensure(w, NLMSG_HDRLEN);
  const dv = w.dv;
  dv.setUint32(at, 0, true);
  dv.setUint16(at + 4, type, true);
  dv.setUint16(at + 6, flags, true);
  dv.setUint32(at + 8, seq >>> 0, true);
  dv.setUint32(at + 12, pid >>> 0, true);
  w.len = at + NLMSG_HDRLEN;
  return at;
}

/** Start a generic netlink message: nlmsghdr plus genlmsghdr (cmd, version, reserved 0). */
export function genlStart(w: Writer, type: number, flags: number, seq: number, pid: number, cmd: number, version: number): number {
  const at = msgStart(w, type, flags, seq, pid);
  const p = ensure(w, GENL_HDRLEN);
  w.buf[p] = cmd;
  w.buf[p + 1] = version;
  w.dv.setUint16(p + 2, 0, true);
  w.len = p + GENL_HDRLEN;
  return at;
}

/** Close a message: nlmsg_len = everything written since its start (always 4-aligned here). */
export function msgEnd(w: Writer, at: number): void {
  w.dv.setUint32(at, w.len - at, true);
}

/** OR flags into a finished or open message's header. */
export function msgAddFlags(w: Writer, at: number, flags: number): void {
  w.dv.setUint16(at + 6, w.dv.getUint16(at + 6, true) | flags, true);
}

export const hdrLen = (v: View, at: number): number => v.dv.getUint32(at, true);
export const hdrType = (v: View, at: number): number => v.dv.getUint16(at + 4, true);
export const hdrFlags = (v: View, at: number): number => v.dv.getUint16(at + 6, true);
export const hdrSeq = (v: View, at: number): number => v.dv.getUint32(at + 8, true);
export const hdrPid = (v: View, at: number): number => v.dv.getUint32(at + 12, true);
export const genlCmd = (v: View, at: number): number => v.buf[at + NLMSG_HDRLEN];
export const genlVersion = (v: View, at: number): number => v.buf[at + NLMSG_HDRLEN + 1];
export const genlReserved = (v: View, at: number): number => v.dv.getUint16(at + NLMSG_HDRLEN + 2, true);

export function readHeader(v: View, at: number): NlHeader {
  return { len: hdrLen(v, at), type: hdrType(v, at), flags: hdrFlags(v, at), seq: hdrSeq(v, at), pid: hdrPid(v, at) };
}

/**
 * Call `cb(at, len)` for each whole message in a datagram, as netlink_rcv_skb walks it: stop at a
 * header shorter than 16 or a length past the end; step by the aligned length. Returns leftover bytes.
 */
export function forEachMessage(v: View, start: number, end: number, cb: (at: number, len: number) => boolean | void): number {
  let at = start;
  while (end - at >= NLMSG_HDRLEN) {
    const len = v.dv.getUint32(at, true);
    if (len < NLMSG_HDRLEN || len > end - at) break;
    if (cb(at, len) === false) return 0;
    at += Math.min((len + 3) & ~3, end - at);
  }
  return end - at;
}
