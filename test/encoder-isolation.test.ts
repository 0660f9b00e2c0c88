// Encoder isolation: one subscriber's format encoder throws. That subscriber gets an NLMSG_OVERRUN
// for the event (read it back from the log) and it is counted in the server's stats; every other
// subscriber gets its event; the client that injected gets its normal answer.
import * as A from '../attrs';
import * as G from '../genl';
import * as formats from '../device/formats';
import { type Daemon, startDaemon } from '../device';
import { CMD, spec } from '../device/gen/accel';
import { readAttrs, writeAttrs } from '../genl/ynl';

const PORT = 0x41434345;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Msg { type: number; seq: number; error?: number; attrs?: Record<string, unknown> }

let d: Daemon;
let hub: G.Hub;
let famId: number;
beforeEach(() => {
  hub = G.newHub();
  d = startDaemon({ port: PORT, config: 'devices: [{}]', tick: false,
    open: (onBatch) => G.openInproc(hub, { port: PORT, onBatch }), sockets: G.hubSockets(hub) });
  famId = G.familyByName(G.registryOf(d.served.srv), 'accel')!.id!;
});
let restore = (): void => undefined;
afterEach(() => { restore(); d.close(); });

function raw() {
  const got: Msg[] = [];
  const sock = G.openInproc(hub, {
    onBatch: (b) => {
      for (let i = 0; i < b.count; i++) {
        const data = new Uint8Array(b.data(i));
        const v = A.view(data);
        for (let at = 0; at + 16 <= data.length;) {
          const len = v.dv.getUint32(at, true);
          const m: Msg = { type: v.dv.getUint16(at + 4, true), seq: v.dv.getUint32(at + 8, true) };
          if (m.type === G.NLMSG.ERROR) m.error = v.dv.getInt32(at + 16, true);
          else if (m.type === famId) m.attrs = readAttrs(v, at + 20, at + len, spec, 'accel');
          got.push(m);
          at += (len + 3) & ~3;
        }
      }
    },
  });
  let seq = 0;
  const ask = async (cmd: number, attrs: object): Promise<Msg[]> => {
    const s = ++seq;
    const w = A.newWriter();
    const at = G.genlStart(w, famId, G.NLM_F.REQUEST | G.NLM_F.ACK, s, 0, cmd, 1);
    writeAttrs(w, spec, 'accel', attrs);
    G.msgEnd(w, at);
    sock.send(A.bytes(w), PORT);
    for (let i = 0; i < 100 && !got.some((m) => m.seq === s && m.type === G.NLMSG.ERROR); i++) await sleep(5);
    return got.filter((m) => m.seq === s);
  };
  return { got, ask, events: () => got.filter((m) => m.seq === 0) };
}

test('a throwing encoder costs only its own subscribers that event; the injector gets its ACK', async () => {
  // The cbor codec's encoder, broken on purpose (the codec table is the one the family encodes with).
  const codec = formats.CODECS.cbor;
  const real = codec.encode;
  codec.encode = () => { throw new Error('deliberately broken cbor encoder'); };
  restore = () => { codec.encode = real; };
  const native = raw();
  const json = raw();
  const cbor = raw();
  expect((await native.ask(CMD.SUBSCRIBE, { group: 'ras' })).pop()!.error).toBe(0);
  expect((await json.ask(CMD.SUBSCRIBE, { group: 'ras', format: 'json' })).pop()!.error).toBe(0);
  expect((await cbor.ask(CMD.SUBSCRIBE, { group: 'ras', format: 'cbor' })).pop()!.error).toBe(0);

  const injector = raw();
  const answer = await injector.ask(CMD.RAS_INJECT, { devIndex: 0, block: 'dma', severity: 'deferred' });
  expect(answer.map((m) => m.type)).toEqual([famId, G.NLMSG.ERROR]);
  expect(answer[1].error).toBe(0);
  expect((answer[0].attrs!.event as { block: string }[])[0].block).toBe('dma');
  await sleep(20);

  expect(native.events().map((m) => m.type)).toEqual([famId]);
  expect((native.events()[0].attrs!.event as { block: string }[])[0].block).toBe('dma');
  expect(json.events().map((m) => m.type)).toEqual([famId]);
  expect(json.events()[0].attrs!.format).toBe('json');
  expect(JSON.stringify(JSON.parse(Buffer.from(json.events()[0].attrs!.payload as Uint8Array).toString()))).toContain('dma');
  // The broken format's subscriber is told it missed one notification.
  expect(cbor.events().map((m) => m.type)).toEqual([G.NLMSG.OVERRUN]);
  const st = G.serverStats(d.served.srv);
  expect(st.encodeFailed).toBe(1);
  expect(st.encodeErrors).toEqual({ 'accel/6': 1 });
  expect([st.dropped, st.overruns]).toEqual([1, 1]); // what stats-get (accel server show) reports

  // Once the encoder works again, that subscriber gets its events as before.
  restore();
  await injector.ask(CMD.RAS_INJECT, { devIndex: 0, block: 'hbm', severity: 'correctable' });
  await sleep(20);
  expect(cbor.events().map((m) => m.type)).toEqual([G.NLMSG.OVERRUN, famId]);
  expect(cbor.events()[1].attrs!.format).toBe('cbor');
});
