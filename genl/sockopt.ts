// The in-band socket-option message of `accel wrap`'s shim (docs/wrap.md): what USERSOCK does not
// let the server see or allow, told on the client's socket itself. One datagram, nlmsg_type 0x0f
// (below NLMSG_MIN_TYPE, a control type the kernel's genl ignores), no flags, payload u32 optname,
// u32 value:
//   NETLINK_EXT_ACK (11)          value 0/1: whether this socket wants extack TLVs;
//   NETLINK_ADD_MEMBERSHIP (1)    value: a group id (ours, from nlctrl) to receive by unicast,
//   NETLINK_DROP_MEMBERSHIP (2)   because the kernel refused the program's own join (EPERM);
//   ACCELNL_OPT_MAX_RECVMSG_LEN   value: the length the socket reads datagrams with. The kernel
//   (0x10001, ours)               learns it from recvmsg (max_recvmsg_len) and fills dump
//                                 datagrams up to it (capped at 32448); a USERSOCK server cannot
//                                 see recvmsg, so the client says it (genl/client.ts, the shim).
//   ACCELNL_OPT_JOIN_ANSWERS      value 0/1: answers to this socket's requests (replies, ACKs,
//   (0x10002, ours)               errors) read in one batch may share a datagram, up to the
//                                 socket's told length (at least NLMSG_GOODSIZE). The kernel
//                                 sends each in its own datagram; a reader that walks every
//                                 message of a datagram (ours, libmnl, ynl) sees no difference
//                                 but fewer wake-ups. Off unless the client asks.
//   ACCELNL_OPT_CLOSING           the socket is about to close: the server checks it against
//   (0x10003, ours)               the kernel's table now, and so frees what it held at once
//                                 instead of at the next sweep. Options said on it (the two
//                                 above) cannot pass to a socket the same process opens next
//                                 on the same port, which the server would otherwise take for
//                                 this one until a check (its datagrams carry the same uid and
//                                 pid: docs/transport.md). value: the socket's inode when it
//                                 read the answer to every request it sent, else 0. With it,
//                                 the server needs no table read, and knows that what it sent
//                                 the socket arrived: the next socket on the port, the same
//                                 process's, is not reported as a raced send.
// Options of our own start at 0x10000, above the kernel's SOL_NETLINK option numbers.
// The server applies it to the sending client (a socket, never a port number) through a target.
import type { View } from '../attrs';
import { SockOpt } from './socket';

export const ACCELNL_MSG_SOCKOPT = 0x0f;
const NLMSG_HDRLEN = 16;

/** The largest datagram length this socket reads with (the kernel's max_recvmsg_len, told). */
export const ACCELNL_OPT_MAX_RECVMSG_LEN = 0x10001;

/** Answers to this socket may share datagrams (value 0/1). */
export const ACCELNL_OPT_JOIN_ANSWERS = 0x10002;

/** The socket is about to close (value: its inode when it read every answer it asked for, else 0). */
export const ACCELNL_OPT_CLOSING = 0x10003;

/**
 * The kernel caps max_recvmsg_len at SKB_WITH_OVERHEAD(32768) = 32448 on x86_64 (kernel-genl.md
 * 5.3), and a dump datagram is at most that.
 */
export const MAX_RECVMSG_LEN = 32448;

/**
 * What a client tells a userspace server before its first request: its read length (when known
 * and wanted) and joined answers (when wanted). genl/client.ts sends these; so do the benches and
 * the model test that stand in for it.
 */
export function helloMessages(o: { recvLen?: number; joinAnswers?: boolean }): Uint8Array[] {
  const out: Uint8Array[] = [];
  if (o.recvLen) out.push(sockoptMessage(ACCELNL_OPT_MAX_RECVMSG_LEN, o.recvLen));
  if (o.joinAnswers) out.push(sockoptMessage(ACCELNL_OPT_JOIN_ANSWERS, 1));
  return out;
}

/** The control message that tells the server one option of this socket. */
export function sockoptMessage(optname: number, value: number): Uint8Array {
  const b = new Uint8Array(NLMSG_HDRLEN + 8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, b.length, true);
  dv.setUint16(4, ACCELNL_MSG_SOCKOPT, true);
  dv.setUint32(NLMSG_HDRLEN, optname >>> 0, true);
  dv.setUint32(NLMSG_HDRLEN + 4, value >>> 0, true);
  return b;
}

export interface Sockopt { optname: number; value: number }

/** The option a message carries, or undefined when it is not a well-formed sockopt message. */
export function parseSockopt(v: View, at: number, len: number): Sockopt | undefined {
  if (len < NLMSG_HDRLEN + 8 || v.dv.getUint16(at + 4, true) !== ACCELNL_MSG_SOCKOPT) return undefined;
  return { optname: v.dv.getUint32(at + NLMSG_HDRLEN, true), value: v.dv.getUint32(at + NLMSG_HDRLEN + 4, true) };
}

/** What the server does with an option, for the client that sent it. */
export interface SockoptTarget {
  setExtAck(on: boolean): void;
  /** Deliver this group's notifications to the client by unicast; false when no such group. */
  join(group: number): boolean;
  leave(group: number): void;
  /** The socket reads datagrams of up to `len` bytes (ACCELNL_OPT_MAX_RECVMSG_LEN). */
  setMaxRecvLen(len: number): void;
  /** Whether answers to the socket may share datagrams (ACCELNL_OPT_JOIN_ANSWERS). */
  setJoinAnswers(on: boolean): void;
  /** The socket is closing: forget it (ACCELNL_OPT_CLOSING). */
  closing(): void;
}

/** Apply one option; an unknown option or group is ignored (the message gets no answer). */
export function applySockopt(o: Sockopt, t: SockoptTarget): 'ext-ack' | 'join' | 'leave' | 'recv-len' | 'join-answers' | 'closing' | 'ignored' {
  switch (o.optname) {
    case SockOpt.NETLINK_EXT_ACK: t.setExtAck(o.value !== 0); return 'ext-ack';
    case SockOpt.NETLINK_ADD_MEMBERSHIP: return o.value >= 1 && t.join(o.value) ? 'join' : 'ignored';
    case SockOpt.NETLINK_DROP_MEMBERSHIP: if (o.value >= 1) t.leave(o.value); return 'leave';
    case ACCELNL_OPT_MAX_RECVMSG_LEN: t.setMaxRecvLen(o.value); return 'recv-len';
    case ACCELNL_OPT_JOIN_ANSWERS: t.setJoinAnswers(o.value !== 0); return 'join-answers';
    case ACCELNL_OPT_CLOSING: t.closing(); return 'closing';
    default: return 'ignored';
  }
}
