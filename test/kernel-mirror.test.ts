// test/helpers/mirror.ts without a kernel: a family with every kind of policy entry is served by one server,
// fetched and decoded as the kernel tests do it, and served again by a second server, which must
// answer nlctrl's questions with the same bytes (the round trip the kernel tests rely on).
import * as A from '../attrs';
import * as G from '../genl';
import { decodeFamily, fetchFamily } from './helpers/mirror';

const { NLA, pol } = A;

const inner = A.policy({
  1: pol.u8(), 2: pol.range(NLA.U32, 5, 10), 3: pol.mask(NLA.U64, 0xf0n), 4: pol.sint(), 5: pol.nulString(9),
}, undefined, 'inner');
const top = A.policy({
  1: pol.nested(inner), 2: pol.nestedArray(inner), 3: pol.bitfield32(7), 4: pol.binary(16), 5: pol.exactLen(6),
  6: pol.flag(), 7: pol.range(NLA.S16, -3, 3), 8: pol.be16(), 9: pol.string(20), 10: { type: NLA.MSECS },
}, undefined, 'top');
const ok = () => G.done();

function synth(): G.Family {
  return {
    name: 'synth', version: 3, maxattr: 0, mcgrps: [{ name: 'ev' }, { name: 'mon' }],
    ops: [
      { cmd: 1, do: { policy: top, handler: ok }, dump: { policy: top, handler: ok } },
      { cmd: 2, dump: { handler: ok } }, // split op without a policy: reject-all reported, none on dispatch
      { cmd: 3, perm: G.GENL_OP.ADMIN_PERM, do: { handler: ok, reportPolicy: null } }, // legacy, below resv_start_op
      { cmd: 4, do: { policy: inner, handler: ok }, dump: { handler: ok } },
    ],
  };
}

async function answers(c: G.Client, fam: G.Family): Promise<string[]> {
  const bytes = (m: G.Message) => Buffer.from(m.v.buf.subarray(m.at, m.at + m.len)).toString('hex').slice(32); // after nlmsghdr
  const name = (w: A.Writer) => A.putString(w, G.CTRL_ATTR.FAMILY_NAME, fam.name);
  const out = (await c.request(0x10, G.CTRL_CMD.GETFAMILY, { fill: name })).map(bytes);
  const dump = async (op?: number) => {
    try {
      for await (const m of c.dump(0x10, G.CTRL_CMD.GETPOLICY, { fill: (w) => { name(w); if (op) A.putU32(w, G.CTRL_ATTR.OP, op); } })) out.push(bytes(m));
    } catch (e) {
      out.push(`error ${(e as G.NetlinkError).errno}`);
    }
  };
  await dump();
  for (const op of fam.ops) await dump(op.cmd);
  return out;
}

test('a family decoded from our own nlctrl answers re-encodes to the same GETFAMILY and GETPOLICY bytes', async () => {
  const hub = G.newHub();
  const a = G.createGenlServer();
  const orig = G.addFamily(a, synth());
  const sa = G.serve(a, { port: 7001, open: (onBatch) => G.openInproc(hub, { port: 7001, onBatch }) });
  const ca = G.createClient({ serverPort: 7001, open: (onBatch) => G.openInproc(hub, { onBatch }) });
  const m = decodeFamily(await fetchFamily(ca, 'synth'));

  // Nested policies are linked objects; maxtype comes from the highest advertised type (BE16 is invisible).
  const mtop = m.ops[0].do!.policy!;
  expect(m.ops[0].dump!.policy).toBe(mtop);
  expect(mtop.maxtype).toBe(10);
  expect(mtop.entries[8]).toBeUndefined();
  expect(mtop.entries[10]).toMatchObject({ type: NLA.UINT }); // MSECS is dumped as UINT
  expect(mtop.entries[1]!.nested).toBe(mtop.entries[2]!.nested);
  expect(mtop.entries[1]!.nested).toBe(m.ops[3].do!.policy);
  expect(m.ops[1].dump!.policy).toBeUndefined(); // reported only, not used on dispatch
  expect(m.ops[1].dump!.reportMaxattr).toBe(1);
  expect(m.ops[1].dump!.reportPolicy!.entries[1]).toMatchObject({ type: NLA.REJECT });
  expect(m.ops[2].do).toMatchObject({ reportPolicy: null });
  expect(m.ops.map((o) => [o.cmd, G.opFlags(o), o.perm])).toEqual(orig.ops.map((o) => [o.cmd, G.opFlags(o), o.perm ?? 0]));
  expect(m.mcgrps).toEqual(orig.mcgrps);

  const b = G.createGenlServer();
  G.addFamily(b, m);
  const sb = G.serve(b, { port: 7002, open: (onBatch) => G.openInproc(hub, { port: 7002, onBatch }) });
  const cb = G.createClient({ serverPort: 7002, open: (onBatch) => G.openInproc(hub, { onBatch }) });
  const want = await answers(ca, orig);
  expect(want.length).toBeGreaterThan(10);
  expect(await answers(cb, m)).toEqual(want);
  for (const x of [ca, cb, sa, sb]) x.close();
});
