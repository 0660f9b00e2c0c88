// A peer's extended ACK in words a user can act on: the message, the attribute it points at (when a
// typed client named it from the spec, e.g. `gemm.m`) and the range its policy allows, or the
// attribute it reports missing. NetlinkError's message and the `accel` tool's errors both say this.
import { NL_POLICY_TYPE_ATTR as P, getS64, getU32, getU64, view, walk } from '../attrs';

/** What extackText reads: ReceivedExtack's fields (genl/client.ts). */
export interface ExtackFields {
  msg?: string;
  policy?: Uint8Array;
  missType?: number;
  attrName?: string;
  missName?: string;
}

/** "from 1 to 4294967295" (values) or "0 to 64 bytes long" (lengths), from NLMSGERR_ATTR_POLICY. */
export function policyRange(policy: Uint8Array | undefined): string | undefined {
  if (!policy?.length) return undefined;
  const v = view(policy);
  let lo: bigint | undefined, hi: bigint | undefined, minLen: number | undefined, maxLen: number | undefined;
  walk(v, 0, policy.length, (at, t) => {
    if (t === P.MIN_VALUE_U) lo = getU64(v, at);
    else if (t === P.MAX_VALUE_U) hi = getU64(v, at);
    else if (t === P.MIN_VALUE_S) lo = getS64(v, at);
    else if (t === P.MAX_VALUE_S) hi = getS64(v, at);
    else if (t === P.MIN_LENGTH) minLen = getU32(v, at);
    else if (t === P.MAX_LENGTH) maxLen = getU32(v, at);
  });
  if (lo !== undefined && hi !== undefined) return `from ${lo} to ${hi}`;
  if (maxLen !== undefined) return `${minLen ?? 0} to ${maxLen} bytes long`;
  return undefined;
}

/**
 * The extack's message completed with the attribute's name and allowed range when known, or what is
 * missing ("missing attribute gemm.n"; by type number when no spec named it) when the peer gave no
 * message. undefined when the answer said nothing beyond its errno.
 */
export function extackText(e: ExtackFields): string | undefined {
  // A message of the peer's own already says what is wrong (more than the one type MISS_TYPE can
  // name); a policy's generic one does not say which attribute or what range.
  if (e.missType) return e.msg ?? `missing attribute ${e.missName ?? `of type ${e.missType}`}`;
  const name = e.attrName, range = policyRange(e.policy);
  if (!name || (e.msg && !range)) return e.msg;
  const what = range ? `${name} must be ${range}` : `attribute ${name}`;
  return e.msg ? `${e.msg}: ${what}` : what;
}
