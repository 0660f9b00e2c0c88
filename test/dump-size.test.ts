// How large a dump datagram is. The kernel fills each one up to the reader's max_recvmsg_len (the
// largest length it has read with, capped at 32448), or NLMSG_GOODSIZE (3776) before any read. A
// USERSOCK server cannot see reads, so a client says its length in-band (genl/sockopt.ts
// ACCELNL_OPT_MAX_RECVMSG_LEN); our client library does, once, and so does the shim for wrapped
// programs. Measured against the kernel's own nlctrl on the same kind of socket.
import * as A from '../attrs';
import * as G from '../genl';
import { type Daemon, startDaemon } from '../device';
import { CMD } from '../device/gen/accel';
import { connectAccel } from '../device/client';
import { openSocket } from '../genl/socket';
import { ACCELNL_OPT_JOIN_ANSWERS, ACCELNL_OPT_MAX_RECVMSG_LEN, MAX_RECVMSG_LEN, sockoptMessage } from '../genl/sockopt';

const PORT = 0x414c0000 + (process.pid & 0xfff);
const GOODSIZE = 3776;
let d: Daemon;
let famId: number;
beforeAll(() => {
  d = startDaemon({ port: PORT, config: `devices: [${Array(96).fill('{}').join(', ')}]`, tick: false });
  famId = G.familyByName(G.registryOf(d.served.srv), 'accel')!.id!;
});
afterAll(() => d.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A raw socket that records the length of every datagram until a DONE with `seq` arrives. */
function sizes(protocol: number, dest: number) {
  const lens: number[] = [];
  const done = new Set<number>();
  const sock = openSocket({
    protocol,
    onBatch: (b) => {
      for (let i = 0; i < b.count; i++) {
        const data = b.data(i);
        lens.push(data.length);
        const v = A.view(new Uint8Array(data));
        for (let at = 0; at + 16 <= data.length;) {
          const len = v.dv.getUint32(at, true);
          if (len < 16) break;
          const type = v.dv.getUint16(at + 4, true);
          if (type === G.NLMSG.DONE || type === G.NLMSG.ERROR) done.add(v.dv.getUint32(at + 8, true));
          at += (len + 3) & ~3;
        }
      }
    },
  });
  const dump = async (type: number, cmd: number, seq: number, family?: string): Promise<number[]> => {
    const w = A.newWriter();
    const at = G.genlStart(w, type, G.NLM_F.REQUEST | G.NLM_F.DUMP, seq, 0, cmd, 1);
    if (family) A.putString(w, G.CTRL_ATTR.FAMILY_NAME, family);
    G.msgEnd(w, at);
    lens.length = 0;
    expect(sock.send(A.bytes(w), dest)).toBe(0);
    for (let i = 0; i < 600 && !done.has(seq); i++) await sleep(5);
    expect(done.has(seq)).toBe(true);
    return [...lens];
  };
  return { sock, dump };
}

test('the kernel fills dump datagrams past NLMSG_GOODSIZE once the socket has read with a large buffer', async () => {
  const k = sizes(G.NETLINK_GENERIC, 0);
  try {
    await k.dump(G.GENL_ID_CTRL, G.CTRL_CMD.GETFAMILY, 1); // the first read, 64 KiB long (the native socket's)
    const lens = await k.dump(G.GENL_ID_CTRL, G.CTRL_CMD.GETPOLICY, 2, 'ethtool'); // every ethtool op's policies
    expect(lens.reduce((x, y) => x + y, 0)).toBeGreaterThan(4 * GOODSIZE);
    expect(Math.max(...lens)).toBeGreaterThan(GOODSIZE);
    expect(Math.max(...lens)).toBeLessThanOrEqual(MAX_RECVMSG_LEN);
  } finally {
    k.sock.close();
  }
});

test('ours: 3776-byte datagrams by default, up to the told length (capped at 32448) once told', async () => {
  const plain = sizes(G.NETLINK_USERSOCK, PORT);
  const told = sizes(G.NETLINK_USERSOCK, PORT);
  const small = sizes(G.NETLINK_USERSOCK, PORT);
  try {
    const a = await plain.dump(famId, CMD.DEV_GET, 1);
    expect(a.length).toBeGreaterThan(4);
    expect(Math.max(...a)).toBeLessThanOrEqual(GOODSIZE);

    told.sock.send(sockoptMessage(ACCELNL_OPT_MAX_RECVMSG_LEN, 65536), PORT);
    const b = await told.dump(famId, CMD.DEV_GET, 1);
    expect(Math.max(...b)).toBeGreaterThan(GOODSIZE);
    expect(Math.max(...b)).toBeLessThanOrEqual(MAX_RECVMSG_LEN);
    expect(b.length).toBeLessThan(a.length / 4);
    // The same records, in fewer datagrams.
    expect(b.reduce((x, y) => x + y, 0)).toBe(a.reduce((x, y) => x + y, 0));

    // A length below NLMSG_GOODSIZE changes nothing (the kernel's minimum allocation is GOODSIZE),
    // nor does 0, nor a truncated control message.
    small.sock.send(sockoptMessage(ACCELNL_OPT_MAX_RECVMSG_LEN, 1000), PORT);
    small.sock.send(sockoptMessage(ACCELNL_OPT_MAX_RECVMSG_LEN, 0), PORT);
    small.sock.send(sockoptMessage(ACCELNL_OPT_MAX_RECVMSG_LEN, 65536).subarray(0, 20), PORT);
    expect(await small.dump(famId, CMD.DEV_GET, 1)).toEqual(a);

    // A length beyond any datagram is capped as the kernel caps max_recvmsg_len.
    const huge = sizes(G.NETLINK_USERSOCK, PORT);
    try {
      huge.sock.send(sockoptMessage(ACCELNL_OPT_MAX_RECVMSG_LEN, 0xffffffff), PORT);
      const h = await huge.dump(famId, CMD.DEV_GET, 1);
      expect(Math.max(...h)).toBeGreaterThan(GOODSIZE);
      expect(Math.max(...h)).toBeLessThanOrEqual(MAX_RECVMSG_LEN);
    } finally {
      huge.sock.close();
    }
  } finally {
    plain.sock.close();
    told.sock.close();
    small.sock.close();
  }
});

test('the client library tells the server its read length; tellRecvLen: false keeps NLMSG_GOODSIZE', async () => {
  for (const tellRecvLen of [true, false]) {
    const c = await connectAccel({ serverPort: PORT, tellRecvLen });
    try {
      const datagrams = new Set<unknown>(); // the messages of one datagram share its view
      let n = 0;
      for await (const m of c.genl.dump(famId, CMD.DEV_GET)) { n++; datagrams.add(m.v); }
      expect(n).toBe(96);
      if (tellRecvLen) expect(datagrams.size).toBeLessThan(10);
      else expect(datagrams.size).toBeGreaterThan(15);
      expect(c.genl.socket.recvLen).toBe(65536);
    } finally {
      c.close();
    }
  }
});

test('answers to one batch share datagrams only for a socket that asked (ACCELNL_OPT_JOIN_ANSWERS)', async () => {
  // Three GETFAMILY requests with ACK in one datagram: six answers (three replies, three ACKs).
  const w = A.newWriter();
  for (let seq = 1; seq <= 3; seq++) {
    const at = G.genlStart(w, G.GENL_ID_CTRL, G.NLM_F.REQUEST | G.NLM_F.ACK, seq, 0, G.CTRL_CMD.GETFAMILY, 1);
    A.putString(w, G.CTRL_ATTR.FAMILY_NAME, 'accel');
    G.msgEnd(w, at);
  }
  const req = A.bytes(w);
  const run = async (join: boolean) => {
    const datagrams: { type: number; seq: number }[][] = [];
    const sock = openSocket({
      protocol: G.NETLINK_USERSOCK,
      onBatch: (b) => {
        for (let i = 0; i < b.count; i++) {
          const data = new Uint8Array(b.data(i));
          const v = A.view(data);
          const msgs: { type: number; seq: number }[] = [];
          for (let at = 0; at + 16 <= data.length; at += (v.dv.getUint32(at, true) + 3) & ~3) {
            msgs.push({ type: v.dv.getUint16(at + 4, true), seq: v.dv.getUint32(at + 8, true) });
          }
          datagrams.push(msgs);
        }
      },
    });
    try {
      if (join) sock.send(sockoptMessage(ACCELNL_OPT_JOIN_ANSWERS, 1), PORT);
      sock.send(req, PORT);
      for (let i = 0; i < 400 && datagrams.flat().length < 6; i++) await sleep(5);
      await sleep(20);
      return datagrams;
    } finally {
      sock.close();
    }
  };
  const apart = await run(false);
  const joined = await run(true);
  const expected = [1, 1, 2, 2, 3, 3].map((seq, i) => ({ seq, type: i % 2 ? G.NLMSG.ERROR : G.GENL_ID_CTRL }));
  expect(apart.flat()).toEqual(expected);
  expect(apart.length).toBe(6); // as the kernel: each answer its own datagram
  expect(joined.flat()).toEqual(expected); // the same messages, in the same order
  expect(joined.length).toBe(1);
});
