// The in-band socket-option message of `accel wrap`'s shim (docs/wrap.md): what USERSOCK does not
// let the server see or allow, told on the client's socket itself. One datagram, nlmsg_type 0x0f
// (below NLMSG_MIN_TYPE, a control type the kernel's genl ignores), no flags, payload u32 optname,
// u32 value:
//   NETLINK_EXT_ACK (11)          value 0/1: whether this socket wants extack TLVs;
//   NETLINK_ADD_MEMBERSHIP (1)    value: a group id (ours, from nlctrl) to receive by unicast,
//   NETLINK_DROP_MEMBERSHIP (2)   because the kernel refused the program's own join (EPERM).
// The server applies it to the sending client (a socket, never a port number) through a target.
import type { View } from '../attrs';
import { SockOpt } from './socket';

export const ACCELNL_MSG_SOCKOPT = 0x0f;
const NLMSG_HDRLEN = 16;

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
}

/** Apply one option; an unknown option or group is ignored (the message gets no answer). */
export function applySockopt(o: Sockopt, t: SockoptTarget): 'ext-ack' | 'join' | 'leave' | 'ignored' {
  switch (o.optname) {
    case SockOpt.NETLINK_EXT_ACK: t.setExtAck(o.value !== 0); return 'ext-ack';
    case SockOpt.NETLINK_ADD_MEMBERSHIP: return o.value >= 1 && t.join(o.value) ? 'join' : 'ignored';
    case SockOpt.NETLINK_DROP_MEMBERSHIP: if (o.value >= 1) t.leave(o.value); return 'leave';
    default: return 'ignored';
  }
}
