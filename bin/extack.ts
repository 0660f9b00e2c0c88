// What a daemon's extended ACK says, in words a user can act on: the attribute the offset points
// at (named from the spec, nests included, e.g. gemm.m) and the range its policy allows.
import { NL_POLICY_TYPE_ATTR as P, getS64, getU32, getU64, view, walk } from '../attrs';
import type { ReceivedExtack } from '../genl';
import { ATTR_NAMES, type SetName } from '../device/gen/accel';

/** `count`, `gemm.m`: the names along the attribute path, from the accel attribute sets. */
export function attrName(path: number[] | undefined): string | undefined {
  if (!path?.length) return undefined;
  const names: string[] = [];
  let set: SetName = 'accel';
  for (const t of path) {
    const a = ATTR_NAMES[set][t];
    if (!a) return names.length ? `${names.join('.')}.${t}` : undefined;
    names.push(a.name);
    if (!a.nested) break;
    set = a.nested as SetName;
  }
  return names.join('.');
}

/** "from 1 to 4294967295" (values) or "of 0 to 64 bytes" (lengths), from NLMSGERR_ATTR_POLICY. */
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

/** The extack message, completed with the attribute's name and allowed range when known. */
export function extackText(e: ReceivedExtack): string | undefined {
  const name = attrName(e.attrPath);
  const range = policyRange(e.policy);
  // A message of the daemon's own already says what is wrong; a policy's generic one does not.
  if (!name || (e.msg && !range)) return e.msg;
  const what = range ? `${name} must be ${range}` : `attribute ${name}`;
  return e.msg ? `${e.msg}: ${what}` : what;
}
