// Golden bytes against the running kernel: every family nlctrl lists is mirrored (test/helpers/mirror.ts)
// into our server, then the kernel's nlctrl and ours get the same request bytes and must answer
// with the same datagrams (nlmsg_pid aside). Runs as root on Linux, on real sockets: the kernel
// over NETLINK_GENERIC, ours over NETLINK_USERSOCK. See docs/wire-format.md.
import * as A from '../attrs';
import * as G from '../genl';
import { type KernelFamily, adoptPolicies, decodeFamily, fetchFamily, listFamilies } from './helpers/mirror';
import { type Peer, firstDiff, kernelPeer, norm, req, serveOurs, stream } from './helpers/kernel';

const { REQUEST, ACK, DUMP } = G.NLM_F;
const { GETFAMILY, GETPOLICY } = G.CTRL_CMD;
const { FAMILY_ID, FAMILY_NAME, OP } = G.CTRL_ATTR;

let fetched: KernelFamily[];
let mirrors: G.Family[];
let kernel: Peer;
let kernelCapped: Peer;
let ours: ReturnType<typeof serveOurs>;
let srv: G.Server;
let seq = 1000;

beforeAll(async () => {
  const c = G.createClient({ protocol: G.NETLINK_GENERIC, serverPort: 0 });
  try {
    fetched = [];
    for (const name of await listFamilies(c)) fetched.push(await fetchFamily(c, name));
  } finally {
    c.close();
  }
  mirrors = fetched.map(decodeFamily);
  srv = G.createGenlServer();
  for (const f of mirrors) if (f.name !== 'nlctrl') G.addFamily(srv, f);
  ours = serveOurs(srv);
  kernel = kernelPeer();
  kernelCapped = kernelPeer({ capAck: true });
});

afterAll(() => {
  ours?.close();
  kernel?.close();
  kernelCapped?.close();
});

/** Send the same bytes to both; returns a mismatch description, or undefined when identical. */
async function compare(what: string, spec: Parameters<typeof req>[0], o: { boundaries?: boolean; k?: Peer } = {}) {
  const s = spec.seq;
  const bytes = req(spec);
  const barrier = !((spec.flags ?? REQUEST | ACK) & ACK);
  const k = await (o.k ?? kernel).exchange(bytes, s, barrier);
  const u = await ours.peer.exchange(bytes, s, barrier);
  if (o.boundaries !== false) {
    const kn = norm(k), un = norm(u);
    if (kn.length !== un.length || kn.some((d, i) => d !== un[i])) {
      return `${what}: datagrams kernel [${kn.map((d) => d.length / 2)}] ours [${un.map((d) => d.length / 2)}]; ${firstDiff(kn.join(''), un.join(''))}`;
    }
  } else if (stream(k) !== stream(u)) return `${what}: ${firstDiff(stream(k), stream(u))}`;
  if (!k.length) return `${what}: no answer`;
  return undefined;
}

const byName = (name: string) => (w: A.Writer) => A.putString(w, FAMILY_NAME, name);
const byId = (id: number) => (w: A.Writer) => A.putU16(w, FAMILY_ID, id);

test('the kernel lists several families, and each decodes with its id, ops and groups', () => {
  expect(mirrors.length).toBeGreaterThan(1);
  expect(mirrors[0]).toMatchObject({ name: 'nlctrl', id: 0x10, version: 2 });
  for (const f of mirrors) {
    const info = G.parseFamily(fetched.find((k) => G.parseFamily(k.info).name === f.name)!.info);
    expect(f.ops.map((o) => [o.cmd, G.opFlags(o)])).toEqual(info.ops.map((o) => [o.id, o.flags]));
  }
  console.log(`kernel families mirrored: ${mirrors.length} (${mirrors.map((f) => f.name).join(', ')}); ` +
    `ops: ${mirrors.reduce((n, f) => n + f.ops.length, 0)}`);
});

test('GETFAMILY (by name and by id) and GETPOLICY (family-wide and every single op): identical datagrams', async () => {
  const bad: string[] = [];
  let cases = 0;
  for (const f of mirrors) {
    const cmp = async (what: string, spec: Parameters<typeof req>[0]) => {
      cases++;
      const d = await compare(`${f.name} ${what}`, spec);
      if (d) bad.push(d);
    };
    await cmp('GETFAMILY name', { seq: seq++, cmd: GETFAMILY, fill: byName(f.name) });
    await cmp('GETFAMILY id', { seq: seq++, cmd: GETFAMILY, fill: byId(f.id!) });
    await cmp('GETPOLICY', { seq: seq++, cmd: GETPOLICY, flags: REQUEST | ACK | DUMP, fill: byName(f.name) });
    await cmp('GETPOLICY id', { seq: seq++, cmd: GETPOLICY, flags: REQUEST | DUMP, fill: byId(f.id!) });
    for (const op of f.ops) {
      await cmp(`GETPOLICY op ${op.cmd}`, {
        seq: seq++, cmd: GETPOLICY, flags: REQUEST | ACK | DUMP, fill: (w) => { byName(f.name)(w); A.putU32(w, OP, op.cmd); },
      });
    }
  }
  console.log(`golden per-family cases: ${cases}, mismatches: ${bad.length}`);
  expect(bad).toEqual([]);
});

test('GETFAMILY dump of the whole mirrored set: identical datagrams, boundaries included', async () => {
  expect(await compare('family dump', { seq: seq++, cmd: GETFAMILY, flags: REQUEST | ACK | DUMP })).toBeUndefined();
  expect(await compare('family dump, no ACK', { seq: seq++, cmd: GETFAMILY, flags: REQUEST | DUMP })).toBeUndefined();
});

test('with 64 KiB receive slots the kernel sizes its chunks differently, the message stream stays the same', async () => {
  // Chunk size follows the client's largest recvmsg (up to 32448), which a USERSOCK server cannot see.
  const big = kernelPeer({ slot: 65536 });
  const bad: string[] = [];
  try {
    for (const f of mirrors) {
      const d = await compare(`${f.name} GETPOLICY`, { seq: seq++, cmd: GETPOLICY, flags: REQUEST | ACK | DUMP, fill: byName(f.name) },
        { boundaries: false, k: big });
      if (d) bad.push(d);
    }
    const d = await compare('family dump', { seq: seq++, cmd: GETFAMILY, flags: REQUEST | ACK | DUMP }, { boundaries: false, k: big });
    if (d) bad.push(d);
  } finally {
    big.close();
  }
  expect(bad).toEqual([]);
});

test('error ACKs for malformed requests, with CAP_ACK off and on', async () => {
  const cases: [string, Omit<Parameters<typeof req>[0], 'seq'>][] = [
    ['unknown family ENOENT', { cmd: GETFAMILY, fill: byName('nosuchfamily') }],
    ['unknown family id', { cmd: GETFAMILY, fill: byId(999) }],
    ['unknown nlmsg_type', { type: 0x3ff, cmd: 1 }],
    ['unknown op', { cmd: 99 }],
    ['do on a dump-only op', { cmd: GETPOLICY, fill: byName('nlctrl') }],
    ['GETFAMILY without attributes EINVAL', { cmd: GETFAMILY }],
    ['GETPOLICY without family EINVAL', { cmd: GETPOLICY, flags: REQUEST | ACK | DUMP }],
    ['GETPOLICY unknown family', { cmd: GETPOLICY, flags: REQUEST | ACK | DUMP, fill: byName('nosuchfamily') }],
    ['GETPOLICY unknown op ENOENT+OFFS', { cmd: GETPOLICY, flags: REQUEST | ACK | DUMP, fill: (w) => { byName('nlctrl')(w); A.putU32(w, OP, 77); } }],
    ['GETPOLICY ENODATA', { cmd: GETPOLICY, flags: REQUEST | ACK | DUMP, fill: byName('VFS_DQUOT') }],
    ['GETPOLICY unknown attribute', { cmd: GETPOLICY, flags: REQUEST | ACK | DUMP, fill: (w) => { byName('nlctrl')(w); A.putU32(w, 20, 1); } }],
    ['GETPOLICY u16 of 4 bytes', { cmd: GETPOLICY, flags: REQUEST | ACK | DUMP, fill: (w) => A.putU32(w, FAMILY_ID, 0x10) }],
    ['GETFAMILY u16 of 1 byte', { cmd: GETFAMILY, fill: (w) => A.putU8(w, FAMILY_ID, 0x10) }],
    ['GETFAMILY name too long', { cmd: GETFAMILY, fill: byName('abcdefghijklmnopqrst') }],
    ['GETFAMILY trailing bytes (warning)', { cmd: GETFAMILY, fill: byName('nlctrl'), tail: [0xaa, 0xbb] }],
    ['GETPOLICY trailing bytes', { cmd: GETPOLICY, flags: REQUEST | ACK | DUMP, fill: byName('nlctrl'), tail: [0xaa, 0xbb] }],
    ['short genl header', { cmd: GETFAMILY, len: 18 }],
    // "netdev\0" is an 11-byte attribute: nlmsg_len 31, as the npm netlink package sends it.
    ['unaligned nlmsg_len, unpadded datagram', { cmd: GETFAMILY, fill: byName('netdev'), len: 31, datagram: 31 }],
    ['unaligned nlmsg_len, padded datagram', { cmd: GETFAMILY, fill: byName('netdev'), len: 31 }],
    ['unaligned nlmsg_len, missing NUL', { cmd: GETFAMILY, fill: (w) => A.putStringNoNul(w, FAMILY_NAME, 'netdev'), len: 30, datagram: 30 }],
    ['nlmsg_len cuts the attribute', { cmd: GETFAMILY, fill: byName('thermal'), len: 31 }],
    ['reserved genl bits', { cmd: 11, reserved: 1 }],
    ['reserved nlmsg flags', { cmd: 11, flags: REQUEST | ACK | 0x20 }],
  ];
  // Every mirrored family must refuse an op it does not have, after its header checks.
  for (const f of mirrors) cases.push([`${f.name} unknown op`, { type: f.id, cmd: 0xfe }]);
  const bad: string[] = [];
  for (const capAck of [false, true]) {
    G.setServerOptions(srv, { ack: { extAck: true, capAck } });
    for (const [what, spec] of cases) {
      const d = await compare(`${what} (CAP_ACK ${capAck ? 'on' : 'off'})`, { ...spec, seq: seq++ }, { k: capAck ? kernelCapped : kernel });
      if (d) bad.push(d);
    }
  }
  G.setServerOptions(srv, { ack: G.DEFAULT_ACK_OPTIONS });
  console.log(`golden error cases: ${cases.length * 2}, mismatches: ${bad.length}`);
  expect(bad).toEqual([]);
});

test('nlctrl rebuilt from its own kernel policy dump answers like the kernel', async () => {
  const kctrl = mirrors.find((f) => f.name === 'nlctrl')!;
  // The dump gives back exactly the policy tables our nlctrl declares (maxtype from the highest attribute).
  expect(kctrl.ops[0].do!.policy).toMatchObject({ maxtype: 2, entries: G.CTRL_POLICY_FAMILY.entries });
  expect(kctrl.ops[1].dump!.policy).toMatchObject({ maxtype: 10, entries: G.CTRL_POLICY_POLICY.entries });
  const s2 = G.createServer();
  const reg2 = G.registryOf(s2);
  const ctrl = G.register(reg2, adoptPolicies(G.nlctrlFamily(s2), kctrl));
  G.onFamilyChange(reg2, G.ctrlNotifier(s2, ctrl));
  for (const f of mirrors) if (f.name !== 'nlctrl') G.register(reg2, f);
  const saved = ours;
  ours = serveOurs(s2);
  try {
    expect(await compare('mirrored nlctrl GETFAMILY', { seq: seq++, cmd: GETFAMILY, fill: byName('nlctrl') })).toBeUndefined();
    expect(await compare('mirrored nlctrl GETPOLICY', { seq: seq++, cmd: GETPOLICY, flags: REQUEST | ACK | DUMP, fill: byName('nlctrl') })).toBeUndefined();
    expect(await compare('mirrored family dump', { seq: seq++, cmd: GETFAMILY, flags: REQUEST | ACK | DUMP })).toBeUndefined();
  } finally {
    ours.close();
    ours = saved;
  }
});
