// The data shapes that policies and extended ACKs share, in one module because they refer to each
// other: a policy entry's validation function reports into an Extack, and an Extack names the
// policy entry that rejected an attribute. policy.ts and extack.ts build on them.
import type { View } from './reader';

export interface PolicyEntry {
  /** An NLA.* policy type. */
  type: number;
  /** The kernel's `.len`: max string length, max/min binary length, nested maxtype, or min length. */
  len?: number;
  /** A VALIDATE.* kind (policy.ts); NONE when absent. */
  validation?: number;
  /** Bounds for RANGE/MIN/MAX/RANGE_PTR (value range for integers, length range for binary). */
  min?: number | bigint;
  max?: number | bigint;
  /** Allowed bits: NLA_POLICY_MASK, or the valid mask of a BITFIELD32. */
  mask?: number | bigint;
  /** Policy of a NESTED or NESTED_ARRAY attribute (its maxtype is `len`, defaulting to nested.maxtype). */
  nested?: Policy;
  /** NLA_REJECT's message. */
  rejectMessage?: string;
  /** NLA_VALIDATE_FUNCTION: returns 0 or -errno, may set the extack. */
  fn?: (v: View, at: number, ext: Extack | undefined) => number;
}

export interface Policy {
  /** The highest attribute type the table describes. */
  maxtype: number;
  /** entries[type]; missing slots are NLA_UNSPEC, as in a C array. */
  entries: ReadonlyArray<PolicyEntry | undefined>;
  /** policy[0].strict_start_type: types at or above it are always validated strictly. */
  strictStartType?: number;
  /** A name for docs and debugging only. */
  name?: string;
}

/**
 * An extended ACK being built (the kernel's struct netlink_ext_ack): what the validator and a
 * handler found wrong, with absolute offsets into the request, for genl/ack.ts to send. What a
 * client decodes from an answer is another thing, genl/client.ts ReceivedExtack.
 */
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
