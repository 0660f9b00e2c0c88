// NLMSG_ERROR (ACKs and errors) and NLMSG_DONE, laid out as netlink_ack() and netlink_dump_done()
// lay them out, with the extended-ACK TLVs in the kernel's order.
import { type Extack, type View, type Writer, copyBytes, ensure, putBytes, putString, putU32, writePolicyAttr, NLA } from '../attrs';
import { NLMSG, NLMSGERR_ATTR, NLMSG_HDRLEN, NLM_F } from './consts';
import { msgEnd, msgStart } from './message';

/** What the kernel would know of the requesting socket's options; a userspace server must assume. */
export interface AckOptions {
  /** NETLINK_EXT_ACK: send TLVs. Default on, as modern clients set it. */
  extAck: boolean;
  /** NETLINK_CAP_ACK: don't echo the request payload in errors. Default off (the kernel's default). */
  capAck: boolean;
}

export const DEFAULT_ACK_OPTIONS: AckOptions = { extAck: true, capAck: false };

/** netlink_policy_dump_attr_size_estimate() > 0: whether a POLICY TLV counts toward ACK_TLVS. */
function policyHasSize(type: number): boolean {
  return type !== NLA.UNSPEC && type !== NLA.REJECT && type !== NLA.BE16 && type !== NLA.BE32;
}

/** Whether any TLV will be emitted (netlink_ack_tlv_len() != 0). */
function hasTlvs(err: number, ext: Extack | undefined, o: AckOptions): boolean {
  if (!ext || !o.extAck) return false;
  if (ext.msg !== undefined || (ext.cookie && ext.cookie.length)) return true;
  if (!err) return false;
  return ext.badAttr >= 0 || (ext.policy !== undefined && policyHasSize(ext.policy.type)) ||
    ext.missType !== 0 || ext.missNest >= 0;
}

/**
 * Append the TLVs. Offsets in `ext` are absolute in `req` (a datagram, or the socket's whole
 * receive area); OFFS and MISS_NEST are emitted relative to the request header at `reqAt`, and
 * only when inside the request, whose nlmsg_len dispatch has checked against its datagram.
 */
function writeTlvs(w: Writer, err: number, ext: Extack, req: View, reqAt: number): void {
  if (ext.msg !== undefined) putString(w, NLMSGERR_ATTR.MSG, ext.msg);
  if (ext.cookie && ext.cookie.length) putBytes(w, NLMSGERR_ATTR.COOKIE, ext.cookie);
  if (!err) return;
  const reqEnd = reqAt + req.dv.getUint32(reqAt, true);
  if (ext.badAttr >= reqAt && ext.badAttr < reqEnd) putU32(w, NLMSGERR_ATTR.OFFS, ext.badAttr - reqAt);
  if (ext.policy) writePolicyAttr(w, ext.policy, NLMSGERR_ATTR.POLICY);
  if (ext.missType) putU32(w, NLMSGERR_ATTR.MISS_TYPE, ext.missType);
  if (ext.missNest >= reqAt && ext.missNest <= reqEnd) putU32(w, NLMSGERR_ATTR.MISS_NEST, ext.missNest - reqAt);
}

/**
 * Write the NLMSG_ERROR answering the request at `reqAt` in `req`: `err` is 0 or -errno, `pid` the
 * requester's port. Success ACKs are always capped; errors echo the whole request unless capAck.
 */
export function writeAck(w: Writer, req: View, reqAt: number, err: number, ext: Extack | undefined,
  pid: number, o: AckOptions = DEFAULT_ACK_OPTIONS): void {
  const reqLen = req.dv.getUint32(reqAt, true);
  const echo = err !== 0 && !o.capAck;
  const tlvs = hasTlvs(err, ext, o);
  const flags = (echo ? 0 : NLM_F.CAPPED) | (tlvs ? NLM_F.ACK_TLVS : 0);
  const at = msgStart(w, NLMSG.ERROR, flags, req.dv.getUint32(reqAt + 8, true), pid);
  const body = 4 + (echo ? reqLen : NLMSG_HDRLEN);
  const p = ensure(w, body + 3);
  w.dv.setInt32(p, err, true);
  copyBytes(w.buf, p + 4, req.buf, reqAt, reqAt + (echo ? reqLen : NLMSG_HDRLEN)); // a loop for a header's 16 bytes
  const end = p + body;
  const aligned = (end + 3) & ~3;
  for (let i = end; i < aligned; i++) w.buf[i] = 0;
  w.len = aligned;
  if (tlvs) writeTlvs(w, err, ext!, req, reqAt);
  msgEnd(w, at);
}

/**
 * Write NLMSG_DONE for a dump: the final status, plus TLVs (offsets relative to the original
 * request) when there is something to say. `extraFlags` carries NLM_F_DUMP_INTR.
 */
export function writeDone(w: Writer, seq: number, pid: number, err: number, ext: Extack | undefined,
  req: View | undefined, reqAt: number, extraFlags: number, o: AckOptions = DEFAULT_ACK_OPTIONS): void {
  const tlvs = req !== undefined && hasTlvs(err, ext, o);
  const at = msgStart(w, NLMSG.DONE, NLM_F.MULTI | extraFlags | (tlvs ? NLM_F.ACK_TLVS : 0), seq, pid);
  const p = ensure(w, 4);
  w.dv.setInt32(p, err, true);
  w.len = p + 4;
  if (tlvs) writeTlvs(w, err, ext!, req!, reqAt);
  msgEnd(w, at);
}
