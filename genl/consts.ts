// Netlink and generic netlink wire constants (include/uapi/linux/netlink.h, genetlink.h).

export const NLMSG_HDRLEN = 16;
export const GENL_HDRLEN = 4;

export const NLMSG = { NOOP: 1, ERROR: 2, DONE: 3, OVERRUN: 4, MIN_TYPE: 0x10 } as const;

export const NLM_F = {
  REQUEST: 0x01, MULTI: 0x02, ACK: 0x04, ECHO: 0x08, DUMP_INTR: 0x10, DUMP_FILTERED: 0x20,
  ROOT: 0x100, MATCH: 0x200, ATOMIC: 0x400, DUMP: 0x300,
  REPLACE: 0x100, EXCL: 0x200, CREATE: 0x400, APPEND: 0x800,
  CAPPED: 0x100, ACK_TLVS: 0x200,
} as const;

export const NLMSGERR_ATTR = { UNUSED: 0, MSG: 1, OFFS: 2, COOKIE: 3, POLICY: 4, MISS_TYPE: 5, MISS_NEST: 6 } as const;

export const GENL_NAMSIZ = 16;
export const GENL_ID_CTRL = 0x10;
export const GENL_ID_VFS_DQUOT = 0x11;
export const GENL_ID_PMCRAID = 0x12;
export const GENL_START_ALLOC = 0x13;
export const GENL_MAX_ID = 1023;

/** Op flags as nlctrl reports them (CTRL_ATTR_OP_FLAGS). */
export const GENL_OP = { ADMIN_PERM: 0x01, CAP_DO: 0x02, CAP_DUMP: 0x04, CAP_HASPOL: 0x08, UNS_ADMIN_PERM: 0x10 } as const;

export const CTRL_CMD = {
  UNSPEC: 0, NEWFAMILY: 1, DELFAMILY: 2, GETFAMILY: 3, NEWOPS: 4, DELOPS: 5, GETOPS: 6,
  NEWMCAST_GRP: 7, DELMCAST_GRP: 8, GETMCAST_GRP: 9, GETPOLICY: 10,
} as const;

/** nlctrl's command names by id, as `genl ctrl` and our CLI print them (nlctrl has no spec here). */
export const CTRL_CMD_NAMES: Readonly<Record<number, string>> = {
  0: 'unspec', 1: 'newfamily', 2: 'delfamily', 3: 'getfamily', 4: 'newops', 5: 'delops', 6: 'getops',
  7: 'newmcast_grp', 8: 'delmcast_grp', 9: 'getmcast_grp', 10: 'getpolicy',
};

export const CTRL_ATTR = {
  UNSPEC: 0, FAMILY_ID: 1, FAMILY_NAME: 2, VERSION: 3, HDRSIZE: 4, MAXATTR: 5, OPS: 6,
  MCAST_GROUPS: 7, POLICY: 8, OP_POLICY: 9, OP: 10,
} as const;
export const CTRL_ATTR_OP = { ID: 1, FLAGS: 2 } as const;
export const CTRL_ATTR_MCAST_GRP = { NAME: 1, ID: 2 } as const;
export const CTRL_ATTR_POLICY = { DO: 1, DUMP: 2 } as const;

/** NLMSG_GOODSIZE on x86_64 with 4 KiB pages: the kernel's first dump chunk on a fresh socket. */
export const NLMSG_GOODSIZE = 3776;
/** SKB_WITH_OVERHEAD(32768): the largest chunk the kernel ever sizes for a dump. */
export const NLMSG_MAX_DUMP = 32448;

export const NETLINK_GENERIC = 16;
export const NETLINK_USERSOCK = 2;
