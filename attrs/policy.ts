// Policies as plain data tables, shaped like the kernel's `struct nla_policy` arrays (the shapes
// are in shapes.ts): VALIDATE kinds, a builder and the NLA_POLICY_* shorthands.
import { NLA } from './consts';
import type { Policy, PolicyEntry } from './shapes';

export type { Policy, PolicyEntry };

/** `enum nla_policy_validation`. */
export const VALIDATE = {
  NONE: 0, RANGE: 1, RANGE_WARN_TOO_LONG: 2, MIN: 3, MAX: 4, MASK: 5, RANGE_PTR: 6, FUNCTION: 7,
} as const;

/** Build a policy from `{ type: entry }`. */
export function policy(entries: Record<number, PolicyEntry>, maxtype?: number, name?: string): Policy {
  const types = Object.keys(entries).map(Number);
  const max = maxtype ?? (types.length ? Math.max(...types) : 0);
  const arr: (PolicyEntry | undefined)[] = new Array(max + 1).fill(undefined);
  for (const t of types) if (t <= max) arr[t] = entries[t];
  return { maxtype: max, entries: arr, name };
}

/** Shorthands for common entries (NLA_POLICY_* macros). */
export const pol = {
  u8: (): PolicyEntry => ({ type: NLA.U8 }),
  u16: (): PolicyEntry => ({ type: NLA.U16 }),
  u32: (): PolicyEntry => ({ type: NLA.U32 }),
  u64: (): PolicyEntry => ({ type: NLA.U64 }),
  s8: (): PolicyEntry => ({ type: NLA.S8 }),
  s16: (): PolicyEntry => ({ type: NLA.S16 }),
  s32: (): PolicyEntry => ({ type: NLA.S32 }),
  s64: (): PolicyEntry => ({ type: NLA.S64 }),
  uint: (): PolicyEntry => ({ type: NLA.UINT }),
  sint: (): PolicyEntry => ({ type: NLA.SINT }),
  flag: (): PolicyEntry => ({ type: NLA.FLAG }),
  be16: (): PolicyEntry => ({ type: NLA.BE16 }),
  be32: (): PolicyEntry => ({ type: NLA.BE32 }),
  string: (maxLen?: number): PolicyEntry => ({ type: NLA.STRING, len: maxLen }),
  nulString: (maxLen?: number): PolicyEntry => ({ type: NLA.NUL_STRING, len: maxLen }),
  binary: (maxLen?: number): PolicyEntry => ({ type: NLA.BINARY, len: maxLen }),
  exactLen: (n: number): PolicyEntry => ({ type: NLA.BINARY, validation: VALIDATE.RANGE, min: n, max: n }),
  minLen: (n: number): PolicyEntry => ({ type: NLA.BINARY, validation: VALIDATE.MIN, min: n }),
  range: (type: number, min: number | bigint, max: number | bigint): PolicyEntry =>
    ({ type, validation: VALIDATE.RANGE, min, max }),
  min: (type: number, min: number | bigint): PolicyEntry => ({ type, validation: VALIDATE.MIN, min }),
  max: (type: number, max: number | bigint): PolicyEntry => ({ type, validation: VALIDATE.MAX, max }),
  mask: (type: number, mask: number | bigint): PolicyEntry => ({ type, validation: VALIDATE.MASK, mask }),
  bitfield32: (valid: number): PolicyEntry => ({ type: NLA.BITFIELD32, mask: valid }),
  nested: (p: Policy, maxtype = p.maxtype): PolicyEntry => ({ type: NLA.NESTED, nested: p, len: maxtype }),
  nestedArray: (p: Policy, maxtype = p.maxtype): PolicyEntry => ({ type: NLA.NESTED_ARRAY, nested: p, len: maxtype }),
  reject: (message?: string): PolicyEntry => ({ type: NLA.REJECT, rejectMessage: message }),
} as const;
