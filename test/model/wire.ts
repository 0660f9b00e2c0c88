// Bytes on the wire for the model test: accel requests with a chosen seq, and the messages of a
// received datagram, decoded with the same codec the client library uses.
import { newWriter, view } from '../../attrs';
import { type Message, decodeStatus } from '../../genl/client';
import { GENL_HDRLEN, NLMSG, NLMSG_HDRLEN, NLM_F } from '../../genl/consts';
import { genlStart, msgEnd } from '../../genl/message';
import { writeAttrs } from '../../genl/ynl';
import { decode } from '../../device/client';
import { type Accel, spec } from '../../device/gen/accel';

export { NLMSG, NLM_F, decodeStatus, decode, type Accel, type Message };

/** One accel request: do (REQUEST|ACK) or dump (REQUEST|ACK|DUMP). */
export function encodeRequest(family: number, cmd: number, seq: number, dump: boolean, a: Accel): Buffer {
  const w = newWriter(256);
  const at = genlStart(w, family, NLM_F.REQUEST | NLM_F.ACK | (dump ? NLM_F.DUMP : 0), seq, 0, cmd, 1);
  writeAttrs(w, spec, 'accel', a);
  msgEnd(w, at);
  return Buffer.from(w.buf.subarray(0, w.len));
}

/**
 * The whole messages of a datagram. `junk` is true when bytes are left over that are not a whole
 * message (a server never sends that).
 */
export function messagesOf(data: Uint8Array, port: number, groups: number): { msgs: Message[]; junk: boolean } {
  const v = view(data);
  const msgs: Message[] = [];
  let at = 0;
  while (data.length - at >= NLMSG_HDRLEN) {
    const len = v.dv.getUint32(at, true);
    if (len < NLMSG_HDRLEN || len > data.length - at) return { msgs, junk: true };
    msgs.push({
      v, at, len, type: v.dv.getUint16(at + 4, true), flags: v.dv.getUint16(at + 6, true), seq: v.dv.getUint32(at + 8, true),
      cmd: data[at + 16] ?? 0, version: data[at + 17] ?? 0, attrs: at + NLMSG_HDRLEN + GENL_HDRLEN, end: at + len, port, groups,
    });
    at += (len + 3) & ~3;
  }
  return { msgs, junk: at < data.length };
}

/** The request header an NLMSG_ERROR echoes: len, type, flags, seq. */
export function echoedHeader(m: Message): { len: number; type: number; flags: number; seq: number } | undefined {
  if (m.len < NLMSG_HDRLEN + 4 + NLMSG_HDRLEN) return undefined;
  const o = m.at + NLMSG_HDRLEN + 4;
  const dv = m.v.dv;
  return { len: dv.getUint32(o, true), type: dv.getUint16(o + 4, true), flags: dv.getUint16(o + 6, true), seq: dv.getUint32(o + 8, true) };
}

/** The echoed request bytes of an uncapped error (the whole request), else undefined. */
export function echoedBody(m: Message): Uint8Array | undefined {
  const h = echoedHeader(m);
  if (!h || m.flags & NLM_F.CAPPED) return undefined;
  const o = m.at + NLMSG_HDRLEN + 4;
  return o + h.len <= m.at + m.len ? m.v.buf.subarray(o, o + h.len) : undefined;
}
