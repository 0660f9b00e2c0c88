// What handling one message comes to, and the shape of its answer. Internal to the server core
// (dispatch and dumps): a handler's result, checked, or "answered later" (a dump that runs on, an
// async handler that ACKs when it settles), or "answered to nobody" (a closed socket's request).
// Never an errno: no value can be mistaken for another.
import type { Extack } from '../attrs';
import { EINVAL } from '../attrs/errno';
import { type AckOptions, DEFAULT_ACK_OPTIONS } from './ack';
import { NLMSG_HDRLEN } from './consts';
import type { SocketClient } from './clients';
import { type DumpResult, type Result, isResult } from './result';

export type Outcome = Result | { readonly kind: 'dump' } | { readonly kind: 'async' } | { readonly kind: 'nobody' };
export const ANSWER_NOBODY: Outcome = { kind: 'nobody' };
export const LATER_DUMP: Outcome = { kind: 'dump' };
export const LATER_ASYNC: Outcome = { kind: 'async' };
export const failed = (errno: number): Result => ({ kind: 'error', errno });

export const DO_KINDS = ['done', 'error'] as const;
export const DUMP_KINDS = ['done', 'error', 'more'] as const;

/** A handler's return value, checked: anything but a Result is a handler bug, answered EINVAL. */
export function checked<T extends DumpResult>(r: unknown, ext: Extack, allowed: readonly string[]): T | Result {
  if (isResult(r) && allowed.includes(r.kind)) return r as T;
  ext.msg = `internal error: handler returned ${typeof r === 'object' ? JSON.stringify(r) : String(r)}`.slice(0, 79);
  return failed(EINVAL);
}

/** Room left for an error's extack TLVs (message, offset, policy) when judging whether its echo fits. */
const EXTACK_ROOM = 256;

/**
 * The ACK shape `c`'s socket asked for (NETLINK_CAP_ACK, NETLINK_EXT_ACK), under the server's
 * overrides. An error echoing a request of `reqLen` bytes that would not fit the length the client
 * said it reads is capped: the kernel would send it whole, and the reader would get it cut off
 * (MSG_TRUNC) with the errno but not the message. Only clients that said their length (our
 * in-band option) get this; the others get the kernel's shape.
 */
export function ackFor(o: Partial<AckOptions>, c: SocketClient, reqLen = 0): AckOptions {
  const tooLong = c.recvLen > 0 && NLMSG_HDRLEN + 4 + reqLen + EXTACK_ROOM > c.recvLen;
  return {
    extAck: o.extAck ?? c.extAck ?? DEFAULT_ACK_OPTIONS.extAck,
    capAck: o.capAck ?? (c.capAck || tooLong || DEFAULT_ACK_OPTIONS.capAck),
  };
}
