// Extended ACK state (struct netlink_ext_ack): what went wrong and where, filled by the validator
// and by handlers, turned into NLMSGERR_ATTR_* TLVs by genl/.
import type { PolicyEntry } from './policy';

export interface Extack {
  /** NLMSGERR_ATTR_MSG; also sent with error 0 as a warning. */
  msg: string | undefined;
  /** Absolute buffer offset of the offending attribute (NLMSGERR_ATTR_OFFS), or -1. */
  badAttr: number;
  /** The policy entry that rejected it (NLMSGERR_ATTR_POLICY). */
  policy: PolicyEntry | undefined;
  /** A missing attribute's type (NLMSGERR_ATTR_MISS_TYPE), 0 for none. */
  missType: number;
  /** Absolute offset of the nest that lacks it (NLMSGERR_ATTR_MISS_NEST), or -1. */
  missNest: number;
  /** NLMSGERR_ATTR_COOKIE, at most 8 bytes. */
  cookie: Uint8Array | undefined;
}

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
