// Which socket holds a netlink port right now. A port id is not an identity: when a socket closes,
// its port can be bound again at once (by the same process, which gets its pid as the port again,
// or by anyone binding that number explicitly). The kernel's sock_diag (NETLINK_SOCK_DIAG,
// SOCK_DIAG_BY_FAMILY for AF_NETLINK) lists every netlink socket of a protocol with its port id,
// inode and cookie (a 64-bit number the kernel never gives to another socket while it runs), and
// the socket's flags (NETLINK_CAP_ACK among them). It answers unprivileged callers.
//
// The query is synchronous on purpose: the server asks between receiving a datagram and acting
// on it. Without the native addon it falls back to /proc/net/netlink (port and inode, no cookie
// and no flags).
import * as fs from 'fs';
import { loadNative } from './native/load';

const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const AF_NETLINK = 16;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NDIAG_SHOW_GROUPS = 0x2;
const NDIAG_SHOW_FLAGS = 0x8;
const NETLINK_DIAG_GROUPS = 1;
const NETLINK_DIAG_FLAGS = 4;
const DIAG_MSG_LEN = 28;  // struct netlink_diag_msg

/** Socket flags as sock_diag reports them (NETLINK_DIAG_FLAGS). */
export const NDIAG_FLAG = {
  CB_RUNNING: 0x1, PKTINFO: 0x2, BROADCAST_ERROR: 0x4, NO_ENOBUFS: 0x8, LISTEN_ALL_NSID: 0x10, CAP_ACK: 0x20,
} as const;

export interface NetlinkSocket {
  port: number;
  inode: number;
  /** The kernel's socket cookie; undefined from the /proc fallback. */
  cookie: bigint | undefined;
  /** NDIAG_FLAG bits; undefined from the /proc fallback. */
  flags: number | undefined;
  /** Connected peer port (0 when not connected). */
  dstPort: number;
  /** The first 32 multicast groups joined, as a bitmask (bind's nl_groups view). */
  groups: number;
}

export type SocketTable = Map<number, NetlinkSocket>;

/** Where a table came from: sock_diag through the addon, or /proc/net/netlink. */
export type SocketSource = 'sock_diag' | 'proc';

let seq = 1;

/** The SOCK_DIAG_BY_FAMILY dump request for the netlink sockets of `protocol`. */
export function diagRequest(protocol: number, seqNo: number): Uint8Array {
  const b = new Uint8Array(16 + 20);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, b.length, true);
  dv.setUint16(4, SOCK_DIAG_BY_FAMILY, true);
  dv.setUint16(6, NLM_F_REQUEST | NLM_F_DUMP, true);
  dv.setUint32(8, seqNo, true);
  b[16] = AF_NETLINK;
  b[17] = protocol;
  dv.setUint32(24, NDIAG_SHOW_FLAGS | NDIAG_SHOW_GROUPS, true);  // ndiag_show
  dv.setUint32(28, 0xffffffff, true);  // ndiag_cookie: INET_DIAG_NOCOOKIE
  dv.setUint32(32, 0xffffffff, true);
  return b;
}

/**
 * Parses a sock_diag dump for AF_NETLINK into a table keyed by port id. Throws on an NLMSG_ERROR
 * (its errno in the message) so that a caller does not take an empty table for "nobody is bound".
 */
export function parseDiag(buf: Uint8Array, protocol: number): SocketTable {
  const out: SocketTable = new Map();
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let at = 0; at + 16 <= buf.length;) {
    const len = dv.getUint32(at, true);
    if (len < 16 || at + len > buf.length) break;
    const type = dv.getUint16(at + 4, true);
    if (type === NLMSG_ERROR) {
      const err = len >= 20 ? -dv.getInt32(at + 16, true) : 0;
      if (err) throw Object.assign(new Error(`sock_diag: errno ${err}`), { errno: err });
    } else if (type === SOCK_DIAG_BY_FAMILY && len >= 16 + DIAG_MSG_LEN) {
      const m = at + 16;
      if (buf[m] === AF_NETLINK && buf[m + 2] === protocol) {
        const s: NetlinkSocket = {
          port: dv.getUint32(m + 4, true),
          dstPort: dv.getUint32(m + 8, true),
          inode: dv.getUint32(m + 16, true),
          cookie: BigInt(dv.getUint32(m + 20, true)) | (BigInt(dv.getUint32(m + 24, true)) << 32n),
          flags: undefined,
          groups: 0,
        };
        for (let a = m + DIAG_MSG_LEN; a + 4 <= at + len;) {
          const alen = dv.getUint16(a, true);
          if (alen < 4 || a + alen > at + len) break;
          const atype = dv.getUint16(a + 2, true) & 0x3fff;
          if (atype === NETLINK_DIAG_FLAGS && alen >= 8) s.flags = dv.getUint32(a + 4, true);
          if (atype === NETLINK_DIAG_GROUPS && alen >= 8) s.groups = dv.getUint32(a + 4, true);
          a += (alen + 3) & ~3;
        }
        out.set(s.port, s);
      }
    } else if (type === NLMSG_DONE) {
      break;
    }
    at += (len + 3) & ~3;
  }
  return out;
}

/** The same table from /proc/net/netlink: ports and inodes only. Undefined when unreadable. */
export function procSockets(protocol: number): SocketTable | undefined {
  let text: string;
  try { text = fs.readFileSync('/proc/net/netlink', 'utf8'); } catch { return undefined; }
  const out: SocketTable = new Map();
  // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || Number(f[1]) !== protocol) continue;
    const port = Number(f[2]) >>> 0;
    out.set(port, { port, inode: Number(f[9]), cookie: undefined, flags: undefined, dstPort: 0, groups: parseInt(f[3], 16) >>> 0 });
  }
  return out;
}

/**
 * Every socket of `protocol` in this network namespace, by port id, as the kernel sees it now;
 * undefined when neither sock_diag nor /proc/net/netlink can be read.
 */
export function querySockets(protocol: number): { table: SocketTable; source: SocketSource } | undefined {
  const { native } = loadNative();
  if (native && typeof native.dumpSync === 'function') {
    try {
      const s = seq = (seq + 1) >>> 0 || 1;
      return { table: parseDiag(native.dumpSync(NETLINK_SOCK_DIAG, diagRequest(protocol, s)), protocol), source: 'sock_diag' };
    } catch {
      // sock_diag refused (an old kernel, a seccomp filter): /proc still names ports and inodes.
    }
  }
  const table = procSockets(protocol);
  return table && { table, source: 'proc' };
}

/**
 * Whether two sightings are the same socket. The inode is in both sources and the kernel does not
 * hand it to another socket until its 32-bit counter wraps; the cookie, when both have it, is
 * unique for the kernel's lifetime.
 */
export const sameSocket = (a: NetlinkSocket, b: NetlinkSocket): boolean =>
  a.inode === b.inode && (a.cookie === undefined || b.cookie === undefined || a.cookie === b.cookie);
