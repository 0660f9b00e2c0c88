// Extended ACK state (struct netlink_ext_ack): what went wrong and where, filled by the validator
// and by handlers, turned into NLMSGERR_ATTR_* TLVs by genl/.
import type { Extack, PolicyEntry } from './shapes';

export type { Extack };

export function newExtack(): Extack {
  return { msg: undefined, badAttr: -1, policy: undefined, missType: 0, missNest: -1, cookie: undefined };
}

export function clearExtack(e: Extack): void {
  e.msg = undefined;
  e.badAttr = -1;
  e.policy = undefined;
  e.missType = 0;
  e.missNest = -1;
  e.cookie = undefined;
}

/** NL_SET_ERR_MSG_ATTR_POL: message, attribute and policy together. */
export function setErrAttrPol(e: Extack | undefined, at: number, pt: PolicyEntry | undefined, msg: string): void {
  if (!e) return;
  e.msg = msg;
  e.badAttr = at;
  e.policy = pt;
}

/** NL_SET_ERR_MSG_ATTR: the attribute, no policy. */
export function setErrAttr(e: Extack | undefined, at: number, msg: string): void {
  setErrAttrPol(e, at, undefined, msg);
}

/** NL_SET_ERR_MSG: the message alone. */
export function setErrMsg(e: Extack | undefined, msg: string): void {
  if (e) e.msg = msg;
}

/** NL_SET_BAD_ATTR: the attribute alone, message untouched. */
export function setBadAttr(e: Extack | undefined, at: number): void {
  if (!e) return;
  e.badAttr = at;
  e.policy = undefined;
}

/** NL_SET_ERR_ATTR_MISS: a required attribute is absent, optionally inside the nest at `nest`. */
export function setAttrMissing(e: Extack | undefined, nest: number, type: number): void {
  if (!e) return;
  e.missNest = nest;
  e.missType = type;
}
