// sock_diag as the server's source of truth for "which socket holds this port": real sockets,
// the real kernel, as root and as nobody.
import { loadNative } from '../genl/native/load';
import { NDIAG_FLAG, diagRequest, parseDiag, procSockets, querySockets, sameSocket } from '../genl/sockdiag';
import { bundleForNobody } from './helpers/nobody';

const NETLINK_USERSOCK = 2;
const native = loadNative().native;
const isRoot = process.getuid?.() === 0;
const withNative = native ? it : it.skip;
const asRoot = native && isRoot ? it : it.skip;
if (!native) console.warn(`sockdiag.test: native addon not loaded, sock_diag cases skipped: ${loadNative().error}`);
if (!isRoot) console.warn('sockdiag.test: not root, the nobody case is skipped (runuser needs root)');

describe('sock_diag', () => {
  withNative('sendManyHeld sends to a port only while the socket with the expected inode holds it', () => {
    const n = native!;
    const srv = n.open(NETLINK_USERSOCK, 0, 0, 0);
    let a = n.open(NETLINK_USERSOCK, 0, 0, 0);
    const port = n.localPort(a);
    try {
      const inodeA = querySockets(NETLINK_USERSOCK)!.table.get(port)!.inode;
      const data = Buffer.alloc(32, 1);
      data.writeUInt32LE(16, 0); data.writeUInt32LE(16, 16);
      const spans = new Int32Array([0, 16, port, 0, 16, 16, port, 0]);
      const results = new Int32Array(2);
      // Right inode for the first span, a wrong one for the second.
      expect(n.sendManyHeld!(srv, data, spans, 2, results, new Int32Array([inodeA, inodeA + 1]), NETLINK_USERSOCK)).toBe(1);
      expect([...results]).toEqual([0, -116]);
      // The socket closes and another binds the port: nothing meant for the first reaches it.
      n.close(a);
      a = n.open(NETLINK_USERSOCK, port, 0, 0);
      expect(n.sendManyHeld!(srv, data, spans, 2, results, new Int32Array([inodeA, 0]), NETLINK_USERSOCK)).toBe(1);
      expect([...results]).toEqual([-116, 0]);  // 0: unchecked, sent
      // Nobody on the port: ESTALE too (not ECONNREFUSED: nothing was tried).
      n.close(a);
      expect(n.sendManyHeld!(srv, data, spans, 1, results, new Int32Array([inodeA]), NETLINK_USERSOCK)).toBe(0);
      expect(results[0]).toBe(-116);
    } finally {
      n.close(srv);
      try { n.close(a); } catch { /* closed */ }
    }
  });

  withNative('sendManyHeld with `after`: the table read again once sent says the port did not change hands', () => {
    const n = native!;
    const srv = n.open(NETLINK_USERSOCK, 0, 0, 0);
    const a = n.open(NETLINK_USERSOCK, 0, 0, 0);
    const port = n.localPort(a);
    try {
      const inodeA = querySockets(NETLINK_USERSOCK)!.table.get(port)!.inode;
      const data = Buffer.alloc(48, 1);
      for (const at of [0, 16, 32]) data.writeUInt32LE(16, at);
      // Checked and delivered; checked with a wrong inode (not sent); unchecked (sent).
      const spans = new Int32Array([0, 16, port, 0, 16, 16, port, 0, 32, 16, port, 0]);
      const results = new Int32Array(3);
      const inodes = new Int32Array([inodeA, inodeA + 1, 0]);
      const after = new Int32Array(3).fill(-1);
      expect(n.sendManyHeld!(srv, data, spans, 3, results, inodes, NETLINK_USERSOCK, after)).toBe(2);
      expect([...results]).toEqual([0, -116, 0]);
      // The delivered checked span: the same inode after the send (not raced); the others: as given.
      expect([...after]).toEqual([inodeA, inodeA + 1, 0]);
      // No `after` (undefined): the same sends, nothing re-read.
      expect(n.sendManyHeld!(srv, data, spans, 1, results, inodes, NETLINK_USERSOCK, undefined)).toBe(1);
      expect(() => n.sendManyHeld!(srv, data, spans, 3, results, inodes, NETLINK_USERSOCK, new Int32Array(2))).toThrow(/count exceeds/);
    } finally {
      n.close(srv);
      n.close(a);
    }
  });

  withNative('reports each USERSOCK socket with its port, inode, cookie and CAP_ACK flag', () => {
    const n = native!;
    const a = n.open(NETLINK_USERSOCK, 0, 0, 0);
    const b = n.open(NETLINK_USERSOCK, 0, 0, 0);
    try {
      expect(n.setInt(b, n.constants.SOL_NETLINK, n.constants.NETLINK_CAP_ACK, 1)).toBe(0);
      const q = querySockets(NETLINK_USERSOCK)!;
      expect(q.source).toBe('sock_diag');
      const sa = q.table.get(n.localPort(a))!;
      const sb = q.table.get(n.localPort(b))!;
      expect(sa.port).toBe(n.localPort(a));
      expect(sa.inode).toBeGreaterThan(0);
      expect(sa.inode).not.toBe(sb.inode);
      expect(sa.cookie).not.toBe(sb.cookie);
      expect(sa.flags! & NDIAG_FLAG.CAP_ACK).toBe(0);
      expect(sb.flags! & NDIAG_FLAG.CAP_ACK).toBe(NDIAG_FLAG.CAP_ACK);
      // /proc/net/netlink names the same inodes (the fallback agrees on identity).
      const proc = procSockets(NETLINK_USERSOCK)!;
      expect(proc.get(sa.port)!.inode).toBe(sa.inode);
      expect(sameSocket(sa, proc.get(sa.port)!)).toBe(true);
    } finally {
      n.close(a);
      n.close(b);
    }
  });

  withNative('tells a socket from its successor on the same port', () => {
    const n = native!;
    const first = n.open(NETLINK_USERSOCK, 0, 0, 0);
    const port = n.localPort(first);
    const before = querySockets(NETLINK_USERSOCK)!.table.get(port)!;
    n.close(first);
    expect(querySockets(NETLINK_USERSOCK)!.table.has(port)).toBe(false);
    const second = n.open(NETLINK_USERSOCK, port, 0, 0);  // bound explicitly to the recycled port
    try {
      const after = querySockets(NETLINK_USERSOCK)!.table.get(port)!;
      expect(after.port).toBe(port);
      expect(sameSocket(before, after)).toBe(false);
      expect(after.cookie).not.toBe(before.cookie);
    } finally {
      n.close(second);
    }
  });

  it('parses an error answer as an error, not as an empty table', () => {
    const err = new Uint8Array(36);
    const dv = new DataView(err.buffer);
    dv.setUint32(0, 36, true);
    dv.setUint16(4, 2, true);   // NLMSG_ERROR
    dv.setInt32(16, -1, true);  // -EPERM
    expect(() => parseDiag(err, NETLINK_USERSOCK)).toThrow(/errno 1/);
    // A request names AF_NETLINK, the protocol, and asks for flags.
    const req = diagRequest(NETLINK_USERSOCK, 7);
    expect([req[16], req[17]]).toEqual([16, NETLINK_USERSOCK]);
    expect(new DataView(req.buffer).getUint32(24, true) & 0x8).toBe(0x8);
  });

  asRoot('answers an unprivileged caller, CAP_ACK included', async () => {
    const b = bundleForNobody({
      code: `
        import { loadNative } from './genl/native/load';
        import { querySockets } from './genl/sockdiag';
        const n = loadNative().native!;
        const h = n.open(2, 0, 0, 0);
        n.setInt(h, n.constants.SOL_NETLINK, n.constants.NETLINK_CAP_ACK, 1);
        const q = querySockets(2)!;
        const me = q.table.get(n.localPort(h))!;
        console.log(JSON.stringify({ source: q.source, flags: me.flags, inode: me.inode }));
      `,
    });
    try {
      const r = await b.run([], { ACCELNL_NATIVE: `${b.dir}/accelnl_sock.node` });
      expect(r.stderr).toBe('');
      const out = JSON.parse(r.stdout);
      expect(out.source).toBe('sock_diag');
      expect(out.flags & NDIAG_FLAG.CAP_ACK).toBe(NDIAG_FLAG.CAP_ACK);
      expect(out.inode).toBeGreaterThan(0);
    } finally {
      b.dispose();
    }
  });
});
