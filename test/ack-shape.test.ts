// The ACK shape per client socket, as the kernel does it: the same bad requests go to the kernel's
// nlctrl (NETLINK_GENERIC) and to ours (the daemon on NETLINK_USERSOCK) from sockets with and
// without NETLINK_CAP_ACK, and with NETLINK_EXT_ACK on and off (for ours, said by the in-band
// control message the wrap shim sends). Every answer must be byte-identical (nlmsg_pid aside).
import * as A from '../attrs';
import * as G from '../genl';
import { type Daemon, startDaemon } from '../device';
import { SockOpt } from '../genl/socket';
import { type Peer, norm, openPeer, req } from './helpers/kernel';

const PORT = 0x414a0000 + (process.pid & 0xfff);

let kernelOk = true;
try { openPeer({ protocol: G.NETLINK_GENERIC, to: 0 }).close(); } catch (e) {
  kernelOk = false;
  console.warn(`ack-shape: no NETLINK_GENERIC socket here (${(e as Error).message}): kernel comparison skipped`);
}
const it_ = kernelOk ? test : test.skip;

let d: Daemon;
beforeAll(() => { d = startDaemon({ port: PORT, config: 'devices: [{}]', tick: false }); });
afterAll(() => d.close());

/** Tell the daemon this socket's NETLINK_EXT_ACK, as the wrap shim does (type 0x0f, u32 optname, u32 value). */
function sayExtAck(p: Peer, on: boolean): void {
  const b = new Uint8Array(24);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 24, true);
  dv.setUint16(4, G.ACCELNL_MSG_SOCKOPT, true);
  dv.setUint32(16, SockOpt.NETLINK_EXT_ACK, true);
  dv.setUint32(20, on ? 1 : 0, true);
  expect(p.sock.send(b, PORT)).toBe(0);
}

// Requests the kernel answers with an error: a FAMILY_ID of the wrong size (EINVAL, with OFFS and
// the POLICY nest), an unknown family name (ENOENT, no TLVs), an odd-sized request echoed whole
// when uncapped; and a success ACK (always capped).
const CASES: [string, (seq: number) => Uint8Array][] = [
  ['bad attribute', (seq) => req({ seq, cmd: G.CTRL_CMD.GETFAMILY, fill: (w) => A.putU32(w, G.CTRL_ATTR.FAMILY_ID, 0x10) })],
  ['unknown family', (seq) => req({ seq, cmd: G.CTRL_CMD.GETFAMILY, fill: (w) => A.putString(w, G.CTRL_ATTR.FAMILY_NAME, 'no-such-fam') })],
  ['odd length', (seq) => req({ seq, cmd: G.CTRL_CMD.GETFAMILY, fill: (w) => A.putString(w, G.CTRL_ATTR.FAMILY_NAME, 'nope') })],
  ['name too long', (seq) => req({ seq, cmd: G.CTRL_CMD.GETFAMILY, fill: (w) => A.putString(w, G.CTRL_ATTR.FAMILY_NAME, 'x'.repeat(40)) })],
  ['success', (seq) => req({ seq, cmd: G.CTRL_CMD.GETFAMILY, fill: (w) => A.putString(w, G.CTRL_ATTR.FAMILY_NAME, 'nlctrl') })],
];

for (const capAck of [false, true]) {
  for (const extAck of [true, false]) {
    it_(`NETLINK_CAP_ACK ${capAck ? 'on' : 'off'}, NETLINK_EXT_ACK ${extAck ? 'on' : 'off'}: our ACKs are the kernel's, per socket`, async () => {
      const kernel = openPeer({ protocol: G.NETLINK_GENERIC, to: 0, capAck, extAck });
      const ours = openPeer({ protocol: G.NETLINK_USERSOCK, to: PORT });
      // A USERSOCK socket's CAP_ACK is a plain socket option, visible to the daemon via sock_diag.
      expect(ours.sock.setOption(SockOpt.SOL_NETLINK, SockOpt.NETLINK_CAP_ACK, capAck ? 1 : 0)).toBe(0);
      if (!extAck) sayExtAck(ours, false);
      try {
        let seq = 500;
        let tlvs = 0;
        for (const [name, make] of CASES) {
          seq++;
          const k = norm(await kernel.exchange(make(seq), seq));
          const o = norm(await ours.exchange(make(seq), seq));
          expect({ name, o }).toEqual({ name, o: k });
          const ack = Buffer.from(k[k.length - 1], 'hex');
          const flags = ack.readUInt16LE(6);
          const errno = ack.readInt32LE(16);
          // The kernel's rules (shared/reference/kernel-genl.md §ACK): an error is capped only with
          // CAP_ACK; a success ACK always is; TLVs only with EXT_ACK.
          expect({ name, capped: !!(flags & G.NLM_F.CAPPED) }).toEqual({ name, capped: errno ? capAck : true });
          if (flags & G.NLM_F.ACK_TLVS) tlvs++;
          if (name === 'unknown family') expect(errno).toBe(-2);
        }
        expect(tlvs > 0).toBe(extAck); // the policy error carries OFFS/POLICY only with EXT_ACK
      } finally {
        kernel.close();
        ours.close();
      }
    });
  }
}

test('two sockets at once, one capped and one not, each get their own shape', async () => {
  const capped = openPeer({ protocol: G.NETLINK_USERSOCK, to: PORT });
  const plain = openPeer({ protocol: G.NETLINK_USERSOCK, to: PORT });
  expect(capped.sock.setOption(SockOpt.SOL_NETLINK, SockOpt.NETLINK_CAP_ACK, 1)).toBe(0);
  try {
    const bad = (seq: number) => req({ seq, cmd: G.CTRL_CMD.GETFAMILY, fill: (w) => A.putString(w, G.CTRL_ATTR.FAMILY_NAME, 'no-such-fam') });
    const [a] = await capped.exchange(bad(1), 1);
    const [b] = await plain.exchange(bad(2), 2);
    const flags = (x: Uint8Array) => new DataView(x.buffer, x.byteOffset).getUint16(6, true);
    expect(flags(a) & G.NLM_F.CAPPED).toBe(G.NLM_F.CAPPED);
    expect(a.length).toBe(36); // error + the request's header only
    expect(flags(b) & G.NLM_F.CAPPED).toBe(0);
    expect(b.length).toBe(20 + bad(2).length); // error + the whole request
  } finally {
    capped.close();
    plain.close();
  }
});
