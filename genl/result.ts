// What a handler returns: a discriminated result, never a number. An errno travels only inside an
// `error` result, so no value can be mistaken for another (a positive number used to mean "dump
// started" or "answered later", and a handler returning one got no ACK).
//
//   do handler     -> Done | Failed | Promise<Done | Failed>
//   dump handler   -> More | Done | Failed        (More: call me again for the next datagram)
//   dump start     -> Done | Failed
//
// The extended ACK (message, bad attribute, missing type...) is written into ctx.ext by the
// handler, as the kernel's NL_SET_ERR_MSG writes into extack; `fail(errno, msg)` sets the message.
import { type Extack, setErrMsg } from '../attrs';

export interface Done { readonly kind: 'done' }
/** errno is positive (EINVAL = 22); the ACK carries -errno. */
export interface Failed { readonly kind: 'error'; readonly errno: number }
/** A dump handler has more to write: it is called again for the next datagram. */
export interface More { readonly kind: 'more' }

export type Result = Done | Failed;
export type DoResult = Result | Promise<Result>;
export type DumpResult = More | Done | Failed;

const DONE: Done = Object.freeze({ kind: 'done' });
const MORE: More = Object.freeze({ kind: 'more' });

export const done = (): Done => DONE;
export const more = (): More => MORE;

/**
 * A failure with `errno` (positive; a negative one is accepted and flipped, as kernel code writes
 * -EINVAL). With `ext` and `msg`, the extack message is set too.
 */
export function fail(errno: number, ext?: Extack, msg?: string): Failed {
  const e = Math.abs(errno | 0);
  if (!e) throw new RangeError('fail() needs a non-zero errno');
  if (ext && msg !== undefined) setErrMsg(ext, msg);
  return { kind: 'error', errno: e };
}

export const isResult = (r: unknown): r is DumpResult =>
  typeof r === 'object' && r !== null && typeof (r as { kind?: unknown }).kind === 'string' &&
  ((r as DumpResult).kind === 'done' || (r as DumpResult).kind === 'error' || (r as DumpResult).kind === 'more');

/** The status a result puts on the wire: 0 or -errno (NLMSG_ERROR / NLMSG_DONE's error field). */
export const wireStatus = (r: Result): number => (r.kind === 'error' ? -r.errno : 0);

/** Whether a value (a lookup's "thing or failure") is a failure. */
export const isFailed = (x: unknown): x is Failed =>
  typeof x === 'object' && x !== null && (x as { kind?: unknown }).kind === 'error' && typeof (x as Failed).errno === 'number';

/**
 * For kernel-style helpers that return 0 or -errno (device/ras.ts, device/health.ts): the Result
 * it means. Anything positive is a bug in the helper, not a success.
 */
export function fromStatus(status: number): Result {
  if (status === 0) return DONE;
  if (status < 0) return fail(-status);
  throw new RangeError(`status ${status} is neither 0 nor -errno`);
}
