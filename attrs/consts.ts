// Wire constants of netlink attributes (include/uapi/linux/netlink.h), as numbers.

export const NLA_HDRLEN = 4;
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = 0x3fff;

/** NLA_ALIGN / NLMSG_ALIGN: round up to 4. */
export const align4 = (n: number): number => (n + 3) & ~3;

/** Kernel policy types (`enum nla_policy_type`); internal, never on the wire. */
export const NLA = {
  UNSPEC: 0, U8: 1, U16: 2, U32: 3, U64: 4, STRING: 5, FLAG: 6, MSECS: 7, NESTED: 8,
  NESTED_ARRAY: 9, NUL_STRING: 10, BINARY: 11, S8: 12, S16: 13, S32: 14, S64: 15,
  BITFIELD32: 16, REJECT: 17, BE16: 18, BE32: 19, SINT: 20, UINT: 21,
} as const;

/** `enum netlink_attribute_type`: the type names used in policy dumps. */
export const NL_ATTR_TYPE = {
  INVALID: 0, FLAG: 1, U8: 2, U16: 3, U32: 4, U64: 5, S8: 6, S16: 7, S32: 8, S64: 9,
  BINARY: 10, STRING: 11, NUL_STRING: 12, NESTED: 13, NESTED_ARRAY: 14, BITFIELD32: 15,
  SINT: 16, UINT: 17,
} as const;

/** `enum netlink_policy_type_attr`: the attributes inside one policy-dump entry. */
export const NL_POLICY_TYPE_ATTR = {
  UNSPEC: 0, TYPE: 1, MIN_VALUE_S: 2, MAX_VALUE_S: 3, MIN_VALUE_U: 4, MAX_VALUE_U: 5,
  MIN_LENGTH: 6, MAX_LENGTH: 7, POLICY_IDX: 8, POLICY_MAXTYPE: 9, BITFIELD32_MASK: 10,
  PAD: 11, MASK: 12,
} as const;
