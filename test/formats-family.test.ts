// Payload formats on the accel family (in-process hub): caps-get, format on ras-get (do, dump),
// ras-log-get with payloads split across messages, formatted subscriptions, configured subsets,
// and EOPNOTSUPP naming the format.
import * as A from '../attrs';
import * as G from '../genl';
import { readAttrs, writeAttrs } from '../genl/ynl';
import { ConfigError, manualClock, parseConfig, startDaemon } from '../device';
import { parseDaemonArgs } from '../bin/daemon';
import { type AccelEvent, connectAccel } from '../device/client';
import { type Doc, FORMATS, FRAGMENT, LOG_BATCH, decodePayload, formatBit } from '../device/formats';
import { type Accel, CMD, FEATURE, type RasFormat, spec } from '../device/gen/accel';
import { inject } from '../device/ras';

const PORT = 0x41434345;
const SUBSET = `devices:\n  - {}\n  - { formats: [json, cbor, netlink] }\n`;

function boot(config?: string, grpc?: string) {
  const hub = G.newHub();
  const d = startDaemon({ port: PORT, config, tick: false, clock: manualClock(), grpc,
    open: (onBatch) => G.openInproc(hub, { port: PORT, onBatch }) });
  const client = () => G.createClient({ serverPort: PORT, open: (onBatch) => G.openInproc(hub, { onBatch, uid: 0 }) });
  return { hub, d, client };
}

let t: ReturnType<typeof boot>;
let c: G.Client;
let fam: G.FamilyInfo;
async function start(config?: string, grpc?: string) {
  t = boot(config, grpc);
  c = t.client();
  fam = await c.resolve('accel');
}
afterEach(() => { c?.close(); t?.d.close(); });

const put = (a: Accel) => (w: A.Writer) => writeAttrs(w, spec, 'accel', a);
const read = (m: G.Message) => readAttrs<Accel>(m.v, m.attrs, m.end, spec, 'accel');
const req = async (cmd: number, a: Accel = {}) => (await c.request(fam.id, cmd, { fill: put(a) })).map(read);
const dump = async (cmd: number, a: Accel = {}) => {
  const out: Accel[] = [];
  for await (const m of c.dump(fam.id, cmd, { fill: put(a) })) out.push(read(m));
  return out;
};
const dev = (i: number) => t.d.rt.emu.devices.get(i)!;
const ALL_BUT_GRPC = 0xff & ~formatBit('grpc');

/** Reassemble payload documents from dump messages: concatenate until a message without payload-more. */
function documents(msgs: Accel[]): Uint8Array[] {
  const docs: Uint8Array[] = [];
  let cur: Buffer[] = [];
  for (const m of msgs) {
    if (!m.payload) continue;
    cur.push(Buffer.from(m.payload));
    if (!m.payloadMore) { docs.push(Buffer.concat(cur)); cur = []; }
  }
  expect(cur).toHaveLength(0);
  return docs;
}

describe('caps-get', () => {
  test('every format but gRPC (not serving), schema versions, and the features the family serves', async () => {
    await start();
    const [r] = await req(CMD.CAPS_GET, { devIndex: 0 });
    expect(r.formats).toBe(ALL_BUT_GRPC);
    expect(r.formatInfo!.map((i) => i.format)).toEqual(FORMATS.filter((f) => f !== 'grpc'));
    expect(r.formatInfo!.every((i) => i.schemaVersion === '1.0' && i.endpoint === undefined)).toBe(true);
    const f = Number(r.features);
    for (const bit of [FEATURE.SUBSCRIBE, FEATURE.LOG_CURSOR, FEATURE.INJECT, FEATURE.FORMATS]) expect(f & bit).toBe(bit);
    expect((await dump(CMD.CAPS_GET)).map((x) => x.devIndex)).toEqual([0, 1]);
  });
  test('a configured subset is reported, and the other formats get EOPNOTSUPP naming the format', async () => {
    await start(SUBSET);
    const caps = await dump(CMD.CAPS_GET);
    expect(caps[1].formats).toBe(formatBit('json') | formatBit('cbor') | formatBit('netlink'));
    expect(caps[1].formatInfo!.map((i) => i.format)).toEqual(['netlink', 'json', 'cbor']);
    await expect(req(CMD.RAS_GET, { devIndex: 1, format: 'protobuf' })).rejects.toMatchObject({
      errno: 95, extack: { msg: 'accel1 does not support format protobuf (has netlink json cbor)' },
    });
    await expect(dump(CMD.RAS_GET, { format: 'asn1' })).rejects.toMatchObject({ errno: 95, extack: { msg: expect.stringContaining('format asn1') } });
    await expect(dump(CMD.RAS_LOG_GET, { devIndex: 1, format: 'thrift' })).rejects.toMatchObject({ errno: 95 });
    await expect(req(CMD.SUBSCRIBE, { group: 'ras', format: 'key-val-32' })).rejects.toMatchObject({ errno: 95 });
    expect((await req(CMD.RAS_GET, { devIndex: 1, format: 'cbor' }))[0].format).toBe('cbor');
  });
  test('config: formats must be a list of known names', () => {
    expect(() => parseConfig('devices:\n  - { formats: [json, xml] }\n')).toThrow(new ConfigError('devices[0].formats[1]: unknown format "xml" (one of key-val-32, netlink, json, protobuf, grpc, thrift, cbor, asn1)'));
    expect(() => parseConfig('devices:\n  - { formats: json }\n')).toThrow(/devices\[0\].formats: expected a list/);
    expect(parseConfig(SUBSET).devices[1].formats).toEqual(['json', 'cbor', 'netlink']);
  });
  test('an out-of-range format number is refused by the policy', async () => {
    await start();
    await expect(c.request(fam.id, CMD.RAS_GET, { fill: (w) => { A.putU32(w, 1, 0); A.putU32(w, 49, 8); } })).rejects.toMatchObject({ errno: 34 });
  });
});

describe('ras-get and ras-log-get with a format', () => {
  const fmts = FORMATS.filter((f) => f !== 'grpc');
  test.each(fmts)('%s: counters, do and dump, decode to the device counters', async (f) => {
    await start();
    inject(t.d.rt.emu, dev(0), { block: 'dma', severity: 'deferred', count: 7 });
    const [r] = await req(CMD.RAS_GET, { devIndex: 0, format: f });
    expect(r.format).toBe(f);
    const doc = decodePayload(f, r.payload!, 'counters') as Extract<Doc, { type: 'counters' }>;
    expect(doc.counters.dev).toBe(0);
    expect(doc.counters.cursor).toBe(2n);
    expect(doc.counters.counters.find((x) => x.block === 'dma' && x.severity === 'deferred')).toMatchObject({ volatileCount: 7n, aggregateCount: 7n });
    const all = await dump(CMD.RAS_GET, { format: f });
    expect(all.map((m) => [m.devIndex, m.format])).toEqual([[0, f], [1, f]]);
  });

  test.each(fmts)('%s: a long log with maximal syndromes is split across messages and reassembles in order', async (f) => {
    await start('devices:\n  - {}\n');
    const syndrome = Uint8Array.from({ length: 256 }, (_, i) => i);
    const n = LOG_BATCH + 44;
    for (let i = 0; i < n; i++) inject(t.d.rt.emu, dev(0), { block: 'sram', severity: 'deferred', address: BigInt(i) << 12n, syndrome });
    const msgs = await dump(CMD.RAS_LOG_GET, { devIndex: 0, format: f });
    expect(msgs.every((m) => m.format === f && m.payload!.length <= FRAGMENT)).toBe(true);
    const docs = documents(msgs);
    expect(docs).toHaveLength(2); // LOG_BATCH records, then the rest
    const seqs = docs.flatMap((b) => (decodePayload(f, b, 'events') as Extract<Doc, { type: 'events' }>).events.map((e) => e.seq));
    expect(seqs).toEqual(Array.from({ length: n }, (_, i) => BigInt(i + 1)));
    const big = docs[0].length > FRAGMENT;
    expect(msgs.some((m) => m.payloadMore)).toBe(big);
    if (f === 'json') expect(big).toBe(true); // 256 records of 256-byte syndromes in hex: over 64 KiB
  });

  test('cursor and limit apply to formatted dumps; records lost to the ring are reported first', async () => {
    await start('devices:\n  - { log-capacity: 16 }\n');
    for (let i = 0; i < 20; i++) inject(t.d.rt.emu, dev(0), { block: 'pcie', severity: 'deferred' });
    const msgs = await dump(CMD.RAS_LOG_GET, { devIndex: 0, cursor: 1, limit: 5, format: 'protobuf' });
    expect(msgs[0]).toMatchObject({ lost: 4, format: 'protobuf' });
    const [doc] = documents(msgs).map((b) => decodePayload('protobuf', b) as Extract<Doc, { type: 'events' }>);
    expect(doc.events.map((e) => e.seq)).toEqual([5n, 6n, 7n, 8n, 9n]);
    expect(await dump(CMD.RAS_LOG_GET, { devIndex: 0, cursor: 21, format: 'json' })).toEqual([]);
  });
});

describe('subscriptions with a format', () => {
  test('each subscriber gets events in its format; native subscribers and formats switch cleanly', async () => {
    await start();
    const subs = new Map<RasFormat | 'native', { c: G.Client; got: Accel[] }>();
    for (const f of ['native', 'cbor', 'asn1', 'key-val-32'] as const) {
      const sc = t.client();
      await sc.resolve('accel');
      const got: Accel[] = [];
      sc.onEvent((m) => { if (m.type === fam.id && m.cmd === CMD.RAS_EVENT_NTF) got.push(read(m)); });
      await sc.request(fam.id, CMD.SUBSCRIBE, { fill: put(f === 'native' ? { group: 'ras' } : { group: 'ras', format: f }) });
      subs.set(f, { c: sc, got });
    }
    inject(t.d.rt.emu, dev(1), { block: 'hbm', severity: 'uncorrectable-nonfatal', address: 0x4000n, syndrome: Uint8Array.of(1, 2, 3) });
    const want = [...subs.values()];
    await waitFor(() => want.every((s) => s.got.length >= 2)); // the error and its row retirement
    expect(subs.get('native')!.got[0].event![0]).toMatchObject({ seq: 1, block: 'hbm' });
    for (const f of ['cbor', 'asn1', 'key-val-32'] as const) {
      const got = subs.get(f)!.got;
      expect(got.map((m) => m.format)).toEqual([f, f]);
      const evs = got.map((m) => (decodePayload(f, m.payload!) as Extract<Doc, { type: 'events' }>).events[0]);
      expect(evs.map((e) => [e.seq, e.kind])).toEqual([[1n, 'error'], [2n, 'row-retired']]);
      expect(evs[0].syndrome).toEqual(Uint8Array.of(1, 2, 3));
    }
    // Re-subscribing in another format replaces the old one; unsubscribe stops it.
    const cb = subs.get('cbor')!;
    await cb.c.request(fam.id, CMD.SUBSCRIBE, { fill: put({ group: 'ras', format: 'json' }) });
    const asn = subs.get('asn1')!;
    await asn.c.request(fam.id, CMD.UNSUBSCRIBE, { fill: put({ group: 'ras' }) });
    inject(t.d.rt.emu, dev(0), { block: 'dma', severity: 'deferred' });
    await waitFor(() => cb.got.length === 3 && subs.get('native')!.got.length === 3);
    expect(cb.got[2].format).toBe('json');
    expect(asn.got).toHaveLength(2);
    for (const s of subs.values()) s.c.close();
  });
  test('the client library: a formatted subscription decodes records and reads a gap back in the same format', async () => {
    await start();
    const ac = await connectAccel({ serverPort: PORT, open: (onBatch) => G.openInproc(t.hub, { onBatch, uid: 0 }) });
    const got: AccelEvent[] = [];
    const sub = await ac.subscribe(['ras'], (e) => got.push(e), { format: 'thrift' });
    expect(sub.mode).toBe('unicast');
    inject(t.d.rt.emu, dev(0), { block: 'dma', severity: 'deferred' });
    await waitFor(() => got.length === 1);
    // Lose three notifications (as a full socket buffer would), then one arrives: the gap is read back.
    // (The subscriptions are taken away and given back through the subscriptions module's functions.)
    const subs = G.subscriptionsOf(t.d.served.srv);
    const saved = G.familyByName(G.registryOf(t.d.served.srv), 'accel')!.mcgrps!
      .flatMap((g) => [...G.subscribersOf(subs, g.id!)].map(([c, f]) => ({ g: g.id!, c, f })));
    expect(saved.length).toBeGreaterThan(0);
    for (const x of saved) G.unsubscribe(subs, x.c, x.g);
    for (let i = 0; i < 3; i++) inject(t.d.rt.emu, dev(0), { block: 'dma', severity: 'deferred' });
    for (const x of saved) G.subscribe(subs, x.c, x.g, x.f);
    inject(t.d.rt.emu, dev(0), { block: 'dma', severity: 'deferred' });
    await waitFor(() => got.length === 5);
    expect(got.map((e) => [e.record!.seq, !!e.recovered, e.attrs.format])).toEqual([
      [1n, false, 'thrift'], [2n, true, 'thrift'], [3n, true, 'thrift'], [4n, true, 'thrift'], [5n, false, 'thrift']]);
    expect(sub.recovered).toBe(3);
    await sub.close();
    ac.close();
  });
  test('format only applies to the ras group', async () => {
    await start();
    await expect(req(CMD.SUBSCRIBE, { group: 'config', format: 'json' })).rejects.toMatchObject({ errno: 22, extack: { msg: 'format applies to the ras group only' } });
  });
});

describe('with the gRPC service', () => {
  test('accel daemon --grpc takes host:port', () => {
    expect(parseDaemonArgs(['--grpc', '127.0.0.1:50051'])).toMatchObject({ grpc: '127.0.0.1:50051' });
    expect(parseDaemonArgs(['--grpc', 'localhost'])).toBe('"--grpc" needs host:port, the port from 0 to 65535');
    expect(parseDaemonArgs(['--grpc'])).toBe('"--grpc" needs host:port, the port from 0 to 65535');
  });
  test('the grpc bit and endpoint appear only while it serves; grpc payloads are its response bodies', async () => {
    await start(undefined, '127.0.0.1:0');
    const endpoint = await t.d.grpc!.ready;
    expect(endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
    const [r] = await req(CMD.CAPS_GET, { devIndex: 0 });
    expect(r.formats).toBe(0xff);
    expect(r.formatInfo!.find((i) => i.format === 'grpc')).toEqual({ format: 'grpc', schemaVersion: '1.0', endpoint });
    inject(t.d.rt.emu, dev(0), { block: 'mmu', severity: 'deferred' });
    const [g] = await req(CMD.RAS_GET, { devIndex: 0, format: 'grpc' });
    expect((decodePayload('grpc', g.payload!, 'counters') as Extract<Doc, { type: 'counters' }>).counters.cursor).toBe(2n);
    t.d.grpc!.close();
    expect((await req(CMD.CAPS_GET, { devIndex: 0 }))[0].formats).toBe(ALL_BUT_GRPC);
    await expect(req(CMD.RAS_GET, { devIndex: 0, format: 'grpc' })).rejects.toMatchObject({
      errno: 95, extack: { msg: 'accel0 does not support format grpc (caps-get lists its formats)' } }); // the list would pass 80 bytes
  });
});

/** Wait for a condition the event loop will make true (bounded by the test timeout, not timed). */
async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}
