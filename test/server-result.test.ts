// Handler results are a discriminated union: done, error (errno + extack), more (dumps), or a
// promise of done/error. Nothing a handler returns can be mistaken for "answered later": a handler
// that returns a bare number (the old errno convention) is a bug, answered EINVAL with a message.
import * as A from '../attrs';
import * as G from '../genl';

function setup() {
  const hub = G.newHub();
  const srv = G.createGenlServer();
  const served = G.serve(srv, { port: 0x41434345, open: (onBatch) => G.openInproc(hub, { port: 0x41434345, onBatch }) });
  const got: Uint8Array[] = [];
  let wake: (() => void) | undefined;
  const raw = G.openInproc(hub, {
    port: 4300, onBatch: (b) => { for (let i = 0; i < b.count; i++) got.push(new Uint8Array(b.data(i))); wake?.(); },
  });
  const recv = async (n: number) => {
    while (got.length < n) await new Promise<void>((r) => { wake = r; });
    return got.splice(0, n);
  };
  const fam = G.addFamily(srv, {
    name: 'results', version: 1,
    ops: [
      { cmd: 1, do: { handler: () => 5 as unknown as G.Result } },            // a bare number: a bug
      { cmd: 2, do: { handler: () => G.done() } },
      { cmd: 3, do: { handler: async (c) => { await new Promise((r) => setTimeout(r, 5)); return G.fail(2, c.ext, "gone"); } } },
      { cmd: 4, do: { handler: async () => G.done() } },
      { cmd: 5, dump: { handler: () => 1 as unknown as G.DumpResult } },      // the old "more": a bug
      { cmd: 6, do: { handler: async () => 7 as unknown as G.Result } },
      { cmd: 7, dump: { handler: () => G.done(), start: (c) => G.fail(95, c.ext, 'no start') } },
    ],
  });
  const send = (cmd: number, seq: number, flags = G.NLM_F.REQUEST | G.NLM_F.ACK) => {
    const w = A.newWriter();
    const at = G.genlStart(w, fam.id!, flags, seq, 0, cmd, 1);
    G.msgEnd(w, at);
    raw.send(A.bytes(w), 0x41434345);
  };
  const decode = (d: Uint8Array) => {
    const v = A.view(d);
    const type = v.dv.getUint16(4, true);
    const m = { v, at: 0, len: d.length, type, flags: v.dv.getUint16(6, true), seq: v.dv.getUint32(8, true), cmd: 0, version: 0, attrs: 20, end: d.length, port: 0, groups: 0 };
    return { type, seq: m.seq, ...G.decodeStatus(m) };
  };
  return { served, send, recv, decode };
}

describe('handler results', () => {
  test('done() with NLM_F_ACK is ACKed 0; a promise of done() too', async () => {
    const t = setup();
    t.send(2, 10);
    t.send(4, 11);
    const [a, b] = (await t.recv(2)).map(t.decode);
    expect(a).toMatchObject({ type: G.NLMSG.ERROR, seq: 10, error: 0 });
    expect(b).toMatchObject({ type: G.NLMSG.ERROR, seq: 11, error: 0 });
    t.served.close();
  });

  test('fail(errno, ext, msg) from a promise is answered with -errno and the message', async () => {
    const t = setup();
    t.send(3, 12);
    const [a] = (await t.recv(1)).map(t.decode);
    expect(a).toMatchObject({ seq: 12, error: -2, extack: { msg: 'gone' } });
    t.served.close();
  });

  test('a bare positive number is not a result: EINVAL "internal error", never a missing ACK', async () => {
    const t = setup();
    t.send(1, 13);
    t.send(6, 14);
    t.send(5, 15, G.NLM_F.REQUEST | G.NLM_F.DUMP);
    const r = (await t.recv(3)).map(t.decode).sort((x, y) => x.seq - y.seq); // the async one comes last
    expect(r[0]).toMatchObject({ seq: 13, error: -22 });
    expect(r[0].extack?.msg).toMatch(/^internal error: handler returned 5/);
    expect(r[1]).toMatchObject({ seq: 14, error: -22 });
    expect(r[1].extack?.msg).toMatch(/^internal error: handler returned 7/);
    expect(r[2]).toMatchObject({ type: G.NLMSG.DONE, seq: 15, error: -22 });
    // Every error answered is counted once, also those that end a dump or an async request.
    const st = G.serverStats(t.served.srv);
    expect(st.errors).toBe(3);
    expect(st.errors).toBe(Object.values(st.rejected).reduce((x, y) => x + y, 0));
    t.served.close();
  });

  test('a dump start that fails is an NLMSG_ERROR with its extack', async () => {
    const t = setup();
    t.send(7, 16, G.NLM_F.REQUEST | G.NLM_F.DUMP);
    const [a] = (await t.recv(1)).map(t.decode);
    expect(a).toMatchObject({ type: G.NLMSG.ERROR, seq: 16, error: -95, extack: { msg: 'no start' } });
    t.served.close();
  });

  test('fail() refuses errno 0 and flips a negative errno', () => {
    expect(() => G.fail(0)).toThrow(RangeError);
    expect(G.fail(-22)).toEqual({ kind: 'error', errno: 22 });
    expect(G.fromStatus(0)).toEqual(G.done());
    expect(G.fromStatus(-5)).toEqual({ kind: 'error', errno: 5 });
    expect(() => G.fromStatus(1)).toThrow(RangeError);
  });
});
