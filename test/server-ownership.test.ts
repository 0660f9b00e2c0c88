// Buffer ownership: what outlives the receive callback owns a copy. The receive buffer here is ONE
// Buffer, overwritten with garbage and then with the next request before every message (as the
// native socket reuses its buffer between wake-ups), while async handlers and dumps are in flight.
// Every reply, ACK and dump message must answer its own request: port, seq, echoed header, content.
import * as A from '../attrs';
import * as G from '../genl';

const SERVER = 0x41434345;
const CLIENTS = 8;

interface Sent { port: number; data: Uint8Array }

function setup() {
  const srv = G.createGenlServer();
  const sent: Sent[] = [];
  const socket = {
    port: SERVER,
    sendMany(data: Uint8Array, spans: Int32Array, count = spans.length >> 2, results?: Int32Array): number {
      for (let i = 0; i < count; i++) {
        const off = spans[4 * i];
        // Group sends (nlctrl's NEWFAMILY) are not answers to anybody.
        if (!spans[4 * i + 3]) sent.push({ port: spans[4 * i + 2] >>> 0, data: data.slice(off, off + spans[4 * i + 1]) });
        if (results) results[i] = 0;
      }
      return count;
    },
  };
  G.attach(srv, socket);
  const pol = A.policy({ 1: A.pol.u32(), 2: A.pol.binary() });
  const fam = G.addFamily(srv, {
    name: 'ownership', version: 1,
    ops: [
      {
        cmd: 1,
        do: {
          policy: pol,
          handler: async (c) => {
            await new Promise((r) => setTimeout(r, (c.seq * 7) % 5)); // settle out of order
            const v = A.getU32(c.req, c.attrs[1]);
            A.putU32(c.reply(), 1, v);
            c.end();
            return v % 3 === 0 ? G.fail(22, c.ext, `refused ${v}`) : G.done();
          },
        },
        dump: {
          policy: pol,
          handler: (c) => {
            let i = (c.state.i as number) ?? 0;
            const base = A.getU32(c.req, c.attrs[1]); // read on every chunk, long after the receive
            for (; i < 20; i++) {
              const w = c.start();
              A.putU32(w, 1, base + i);
              A.putBytes(w, 2, new Uint8Array(600).fill(base & 0xff));
              if (!c.end()) break;
            }
            c.state.i = i;
            return i < 20 ? G.more() : G.done();
          },
        },
      },
    ],
  });
  return { srv, sent, fam };
}

function request(famId: number, seq: number, value: number, dump: boolean, pad: number): Uint8Array {
  const w = A.newWriter();
  const flags = G.NLM_F.REQUEST | G.NLM_F.ACK | (dump ? G.NLM_F.DUMP : 0);
  const at = G.genlStart(w, famId, flags, seq, seq ^ 0x5a5a, 1, 1); // nlmsg_pid tags the request
  A.putU32(w, 1, value);
  if (pad) A.putBytes(w, 2, new Uint8Array(pad).fill(seq & 0xff));
  G.msgEnd(w, at);
  return A.bytes(w);
}

test('replies, ACKs and dump chunks answer their own request while the receive buffer is overwritten', async () => {
  const t = setup();
  const rx = Buffer.allocUnsafeSlow(1 << 16);
  const asked = new Map<string, { value: number; dump: boolean; req: Uint8Array }>(); // port/seq
  let seq = 100;
  const busyDump = new Set<number>();
  for (let round = 0; round < 40; round++) {
    for (let k = 0; k < CLIENTS; k++) {
      const port = 5000 + k;
      const dump = round % 5 === k % 5 && !busyDump.has(port);
      const s = seq++;
      const value = s * 11;
      const req = request(t.fam.id!, s, value, dump, (s * 13) % 97);
      rx.fill(0xa5); // the next wake-up's bytes land where the last ones were
      rx.set(req, 0);
      asked.set(`${port}/${s}`, { value, dump, req });
      if (dump) busyDump.add(port);
      G.receiveBatch(t.srv, {
        count: 1, data: () => rx.subarray(0, req.length), port: () => port, uid: () => 0, gid: () => 0, pid: () => 1,
        truncated: () => 0,
      });
    }
    // Let some async handlers settle and dumps advance while the buffer keeps changing.
    await new Promise((r) => setImmediate(r));
    if (round % 10 === 9) busyDump.clear(), await new Promise((r) => setTimeout(r, 20));
  }
  // Wait for every answer: one ACK (or DONE) per request.
  const deadline = Date.now() + 5000;
  const finals = () => {
    let n = 0;
    for (const d of t.sent) for (const m of messages(d.data)) if (m.type === G.NLMSG.ERROR || m.type === G.NLMSG.DONE) n++;
    return n;
  };
  while (finals() < asked.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));

  const answered = new Map<string, number>();
  const dumpValues = new Map<string, number[]>();
  for (const d of t.sent) {
    for (const m of messages(d.data)) {
      const key = `${d.port}/${m.seq}`;
      const q = asked.get(key);
      expect({ key, known: !!q }).toEqual({ key, known: true });
      expect(m.pid).toBe(d.port);
      if (m.type === G.NLMSG.ERROR) {
        // The echoed header is this request's own: its seq and its nlmsg_pid tag.
        const echoSeq = m.dv.getUint32(m.at + 16 + 4 + 8, true);
        const echoPid = m.dv.getUint32(m.at + 16 + 4 + 12, true);
        expect([echoSeq, echoPid]).toEqual([m.seq, m.seq ^ 0x5a5a]);
        const err = m.dv.getInt32(m.at + 16, true);
        if (err) {
          // An uncapped error echoes the whole request: byte for byte the one this port sent.
          expect(err).toBe(-22);
          const echoed = new Uint8Array(m.dv.buffer, m.dv.byteOffset + m.at + 20, q!.req.length);
          expect(Buffer.from(echoed).equals(Buffer.from(q!.req))).toBe(true);
        }
        answered.set(key, (answered.get(key) ?? 0) + 1);
      } else if (m.type === G.NLMSG.DONE) {
        answered.set(key, (answered.get(key) ?? 0) + 1);
      } else {
        const v = m.dv.getUint32(m.at + 20 + 4, true);
        if (q!.dump) (dumpValues.get(key) ?? dumpValues.set(key, []).get(key)!).push(v);
        else expect(v).toBe(q!.value);
      }
    }
  }
  for (const [key, q] of asked) {
    expect({ key, answers: answered.get(key) ?? 0 }).toEqual({ key, answers: 1 });
    if (q.dump) expect(dumpValues.get(key)).toEqual(Array.from({ length: 20 }, (_, i) => q.value + i));
  }
}, 20000);

function* messages(d: Uint8Array): Generator<{ dv: DataView; at: number; type: number; seq: number; pid: number }> {
  const dv = new DataView(d.buffer, d.byteOffset, d.byteLength);
  for (let at = 0; at + 16 <= d.length;) {
    const len = dv.getUint32(at, true);
    if (len < 16) break;
    yield { dv, at, type: dv.getUint16(at + 4, true), seq: dv.getUint32(at + 8, true), pid: dv.getUint32(at + 12, true) };
    at += (len + 3) & ~3;
  }
}
