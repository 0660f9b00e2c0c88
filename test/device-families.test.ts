// The accel and drm-ras families over the in-process hub: every op, do and dump, errors with
// extack, subscriptions and events, and the RAS log read back after missed events.
import * as A from '../attrs';
import * as G from '../genl';
import { readAttrs, writeAttrs } from '../genl/ynl';
import { inject, manualClock, startDaemon } from '../device';
import { type Accel, CMD, spec } from '../device/gen/accel';

const PORT = 0x41434345;

function boot(config?: string) {
  const hub = G.newHub();
  const d = startDaemon({ port: PORT, config, tick: false, clock: manualClock(),
    open: (onBatch) => G.openInproc(hub, { port: PORT, onBatch }) });
  const client = (uid = 0) => G.createClient({ serverPort: PORT, open: (onBatch) => G.openInproc(hub, { onBatch, uid }) });
  return { hub, d, client };
}

let t: ReturnType<typeof boot>;
let c: G.Client;
let fam: G.FamilyInfo;
beforeEach(async () => {
  t = boot();
  c = t.client();
  fam = await c.resolve('accel');
});
afterEach(() => { c.close(); t.d.close(); });

const put = (a: Accel) => (w: A.Writer) => writeAttrs(w, spec, 'accel', a);
const read = (m: G.Message) => readAttrs<Accel>(m.v, m.attrs, m.end, spec, 'accel');
const req = async (cmd: number, a: Accel = {}) => (await c.request(fam.id, cmd, { fill: put(a) })).map(read);
const dump = async (cmd: number, a: Accel = {}) => {
  const out: Accel[] = [];
  for await (const m of c.dump(fam.id, cmd, { fill: put(a) })) out.push(read(m));
  return out;
};

describe('accel: devices', () => {
  test('nlctrl shows the family with its ops, admin flags and three groups', () => {
    expect(fam.version).toBe(1);
    expect([...fam.groups.keys()]).toEqual(['config', 'ras', 'jobs']);
    const flags = new Map(fam.ops.map((o) => [o.id, o.flags]));
    expect(flags.get(CMD.DEV_GET)).toBe(0x0e);
    expect(flags.get(CMD.RAS_INJECT)).toBe(0x0b);
    expect(flags.get(CMD.RAS_LOG_GET)).toBe(0x0c);
  });
  test('dev-get do by index, name and bus address; dump of all; filter by state', async () => {
    for (const h of [{ devIndex: 1 }, { devName: 'accel1' }, { busAddr: '0000:04:00.0' }, { busAddr: 'pci/0000:04:00.0' }]) {
      const [r] = await req(CMD.DEV_GET, h);
      expect(r).toMatchObject({ devIndex: 1, devName: 'accel1', devPath: '/dev/accel/accel1', busName: 'pci', state: 'operational', health: 'ok' });
      expect(r.version!.map((v) => v.kind)).toEqual(expect.arrayContaining(['fixed', 'running', 'stored']));
    }
    expect((await dump(CMD.DEV_GET)).map((r) => r.devName)).toEqual(['accel0', 'accel1']);
    await req(CMD.DEV_SET, { devIndex: 0, action: 'offline' });
    expect((await dump(CMD.DEV_GET, { state: 'offline' })).map((r) => r.devName)).toEqual(['accel0']);
  });
  test('unknown device: ENODEV with a message and offset; missing handle: EINVAL with MISS_TYPE', async () => {
    await expect(req(CMD.DEV_GET, { devIndex: 9 })).rejects.toMatchObject({ errno: 19, extack: { msg: 'no such device', offset: 20 } });
    await expect(req(CMD.DEV_GET, {})).rejects.toMatchObject({ errno: 22, extack: { missType: 1 } });
    await expect(c.request(fam.id, CMD.DEV_GET, { fill: (w) => A.putU16(w, 1, 0) }))
      .rejects.toMatchObject({ errno: 22, extack: { msg: 'invalid attribute length', offset: 20 } });
  });
  test('dev-set reset goes through in-reset back to operational; dev-new and dev-del hot-plug', async () => {
    await req(CMD.DEV_SET, { devIndex: 0, action: 'reset' });
    expect((await req(CMD.DEV_GET, { devIndex: 0 }))[0].state).toBe('in-reset');
    await expect(req(CMD.DEV_SET, { devIndex: 0, action: 'reset' })).rejects.toMatchObject({ errno: 16 });
    await new Promise((r) => setTimeout(r, 80));
    expect((await req(CMD.DEV_GET, { devIndex: 0 }))[0]).toMatchObject({ state: 'operational', resets: 1 });
    const [n] = await req(CMD.DEV_NEW, { busAddr: '0000:0a:00.0', memTotal: 1 << 30 });
    expect(n).toMatchObject({ devIndex: 2, devName: 'accel2', busAddr: '0000:0a:00.0', memTotal: 1 << 30 });
    await expect(req(CMD.DEV_NEW, { busAddr: '0000:0a:00.0' })).rejects.toMatchObject({ errno: 17, extack: { msg: 'bus address 0000:0a:00.0 in use' } });
    await req(CMD.DEV_DEL, { devName: 'accel2' });
    expect((await dump(CMD.DEV_GET)).length).toBe(2);
  });
});

describe('accel: RAS', () => {
  test('inject replies with the records; counters, clear (volatile, then aggregate)', async () => {
    const [r] = await req(CMD.RAS_INJECT, { devIndex: 0, block: 'hbm', severity: 'uncorrectable-nonfatal', address: 0x1234, count: 2, syndrome: new Uint8Array([1, 2, 3]) });
    expect(r.event!.map((e) => e.kind)).toEqual(['error', 'row-retired']);
    expect(r.event![0]).toMatchObject({ seq: 1, block: 'hbm', severity: 'uncorrectable-nonfatal', count: 2, address: 0x1234, action: 'restart-app', errorId: 1, errorName: 'hbm' });
    expect(Array.from(r.event![0].syndrome!)).toEqual([1, 2, 3]);
    const [ras] = await req(CMD.RAS_GET, { devIndex: 0 });
    const hbm = ras.counter!.find((x) => x.block === 'hbm' && x.severity === 'uncorrectable-nonfatal')!;
    expect(hbm).toMatchObject({ volatile: 2, aggregate: 2 });
    expect(ras.counter!.length).toBe(44);
    expect(ras.memory).toMatchObject({ rowsPending: 1, badPage: [0x1000], rma: 0 });
    await req(CMD.RAS_CLEAR, { devIndex: 0 });
    let [x] = await req(CMD.RAS_GET, { devIndex: 0 });
    expect(x.counter!.find((k) => k.block === 'hbm' && k.severity === 'uncorrectable-nonfatal')).toMatchObject({ volatile: 0, aggregate: 2 });
    await req(CMD.RAS_CLEAR, { devIndex: 0, aggregate: true });
    [x] = await req(CMD.RAS_GET, { devIndex: 0 });
    expect(x.counter!.every((k) => k.aggregate === 0)).toBe(true);
    expect((await dump(CMD.RAS_GET)).map((d) => d.devIndex)).toEqual([0, 1]);
  });
  test('inject validation: missing block, unknown enum value, zero count', async () => {
    await expect(req(CMD.RAS_INJECT, { devIndex: 0, severity: 'correctable' })).rejects.toMatchObject({ errno: 22, extack: { missType: 27 } });
    await expect(c.request(fam.id, CMD.RAS_INJECT, { fill: (w) => { A.putU32(w, 1, 0); A.putU32(w, 27, 99); A.putU32(w, 28, 0); } }))
      .rejects.toMatchObject({ errno: 34, extack: { msg: 'integer out of range', offset: 28 } }); // enum range from the spec
    await expect(req(CMD.RAS_INJECT, { devIndex: 0, block: 'dma', severity: 'correctable', count: 0 }))
      .rejects.toMatchObject({ errno: 34, extack: { msg: 'integer out of range' } });
  });
  test('an injection the storm limiter folds is answered with the window\'s storm-overflow record so far (no seq), not nothing (F6)', async () => {
    c.close(); t.d.close();
    t = boot('storm: { burst: 2, interval-ms: 5000 }\ndevices: [{}]');
    c = t.client();
    fam = await c.resolve('accel');
    const inj = (n: number) => req(CMD.RAS_INJECT, { devIndex: 0, block: 'dma', severity: 'correctable', count: n, address: 0x1000 + n, syndrome: new Uint8Array([n]) });
    for (const n of [1, 1]) expect((await inj(n))[0].event).toEqual([expect.objectContaining({ kind: 'error', seq: expect.anything() })]);
    const [third] = await inj(3);
    expect(third.event).toHaveLength(1);
    const f = third.event![0];
    expect(f).toMatchObject({ kind: 'storm-overflow', block: 'dma', severity: 'correctable', folded: 3, count: 3, address: 0x1003, syndrome: new Uint8Array([3]) });
    expect(f.seq).toBeUndefined(); // not in the log yet
    const [fourth] = await inj(2);
    expect(fourth.event![0]).toMatchObject({ kind: 'storm-overflow', folded: 5, count: 2 });
    expect(fourth.event![0].lastTsNs! >= f.firstTsNs!).toBe(true);
    // The counters have every error; the log has the two records so far, nothing of the folded ones.
    const [ras] = await req(CMD.RAS_GET, { devIndex: 0 });
    expect(ras.counter!.find((x) => x.block === 'dma' && x.severity === 'correctable')!.volatile).toBe(7);
    expect((await dump(CMD.RAS_LOG_GET, { devIndex: 0 })).map((m) => m.event![0].kind)).toEqual(['error', 'error']);
  });
  test('the log reads back from a cursor, with limits and lost counts', async () => {
    for (let i = 0; i < 5; i++) await req(CMD.RAS_INJECT, { devIndex: 1, block: 'dma', severity: 'deferred' });
    const all = await dump(CMD.RAS_LOG_GET, { devIndex: 1 });
    expect(all.map((m) => m.event![0].seq)).toEqual([1, 2, 3, 4, 5]);
    expect((await dump(CMD.RAS_LOG_GET, { devIndex: 1, cursor: 4 })).map((m) => m.event![0].seq)).toEqual([4, 5]);
    expect((await dump(CMD.RAS_LOG_GET, { devIndex: 1, cursor: 2, limit: 2 })).map((m) => m.event![0].seq)).toEqual([2, 3]);
    await expect(dump(CMD.RAS_LOG_GET, { devIndex: 7 })).rejects.toMatchObject({ errno: 19 });
  });
});

describe('accel: health', () => {
  test('get, set, test, diagnose, dump, recover', async () => {
    const [h] = await req(CMD.HEALTH_GET, { devIndex: 0 });
    expect(h.reporter!.map((r) => r.name)).toEqual(['fw', 'mem', 'pcie', 'thermal', 'core']);
    await req(CMD.HEALTH_SET, { devIndex: 0, reporterName: 'fw', gracePeriodMs: 1000, autoRecover: 0 });
    await req(CMD.HEALTH_TEST, { devIndex: 0, reporterName: 'fw' });
    const [fw] = await req(CMD.HEALTH_GET, { devIndex: 0, reporterName: 'fw' });
    expect(fw.health).toBe('warning');
    expect(fw.reporter).toEqual([expect.objectContaining({ name: 'fw', state: 'error', errCount: 1, gracePeriodMs: 1000, autoRecover: 0, lastError: 'test error' })]);
    const [diag] = await req(CMD.HEALTH_DIAGNOSE, { devIndex: 0, reporterName: 'fw' });
    expect(diag.kv).toEqual(expect.arrayContaining([{ key: 'state', value: 'error' }, { key: 'fw', value: '1.4.2' }]));
    const [dmp] = await req(CMD.HEALTH_DUMP, { devIndex: 0, reporterName: 'fw' });
    expect(dmp.kv![0]).toEqual({ key: 'reporter', value: 'fw' });
    await req(CMD.HEALTH_RECOVER, { devIndex: 0, reporterName: 'fw' });
    expect((await req(CMD.HEALTH_GET, { devIndex: 0, reporterName: 'fw' }))[0].reporter![0]).toMatchObject({ state: 'healthy', recoverCount: 1 });
    await expect(req(CMD.HEALTH_TEST, { devIndex: 0, reporterName: 'gpu' })).rejects.toMatchObject({ errno: 2, extack: { msg: 'no reporter "gpu" (fw, mem, pcie, thermal, core)' } });
    expect((await dump(CMD.HEALTH_GET)).length).toBe(2);
  });
});

describe('accel: admin checks and subscriptions', () => {
  test('admin ops are refused to non-root callers with EPERM; reads are open', async () => {
    const u = t.client(65534);
    await u.resolve('accel');
    for (const [cmd, a] of [[CMD.RAS_INJECT, { devIndex: 0, block: 'dma', severity: 'correctable' }], [CMD.DEV_SET, { devIndex: 0, action: 'reset' }],
      [CMD.DEV_NEW, {}], [CMD.DEV_DEL, { devIndex: 0 }], [CMD.RAS_CLEAR, { devIndex: 0 }], [CMD.HEALTH_RECOVER, { devIndex: 0, reporterName: 'fw' }],
      [CMD.HEALTH_TEST, { devIndex: 0, reporterName: 'fw' }], [CMD.HEALTH_SET, { devIndex: 0, reporterName: 'fw' }]] as const) {
      await expect(u.request(fam.id, cmd, { fill: put(a as Accel) })).rejects.toMatchObject({ errno: 1, extack: {} });
    }
    await expect(u.request(fam.id, CMD.DEV_GET, { fill: put({ devIndex: 0 }) })).resolves.toHaveLength(1);
    u.close();
  });
  test('a non-root client subscribes (unicast) and receives RAS events and config changes; unsubscribe stops them', async () => {
    const u = t.client(65534);
    expect(() => u.join(fam.groups.get('ras')!)).toThrow(/EPERM/);
    await u.request(fam.id, CMD.SUBSCRIBE, { fill: put({ group: 'ras' }) });
    await u.request(fam.id, CMD.SUBSCRIBE, { fill: put({ group: 'config' }) });
    const got: { cmd: number; a: Accel }[] = [];
    u.onEvent((m) => got.push({ cmd: m.cmd, a: read(m) }));
    await req(CMD.RAS_INJECT, { devIndex: 1, block: 'compute-core', severity: 'uncorrectable-fatal' });
    await new Promise((r) => setTimeout(r, 20));
    const cmds = got.map((g) => g.cmd);
    expect(cmds).toContain(CMD.RAS_EVENT_NTF);
    expect(cmds).toContain(CMD.DEV_STATE_NTF);
    expect(cmds).toContain(CMD.HEALTH_NTF);
    const ev = got.find((g) => g.cmd === CMD.RAS_EVENT_NTF)!.a;
    expect(ev).toMatchObject({ devIndex: 1, event: [expect.objectContaining({ block: 'compute-core', severity: 'uncorrectable-fatal', action: 'reset-device', seq: 1 })] });
    expect(got.find((g) => g.cmd === CMD.DEV_STATE_NTF)!.a).toMatchObject({ devIndex: 1, state: 'needs-reset', health: 'critical' });
    await expect(u.request(fam.id, CMD.SUBSCRIBE, { fill: put({ group: 'nope' }) })).rejects.toMatchObject({ errno: 2, extack: { msg: 'no group "nope"' } });
    await u.request(fam.id, CMD.UNSUBSCRIBE, { fill: put({ group: 'ras' }) });
    got.length = 0;
    await req(CMD.RAS_INJECT, { devIndex: 0, block: 'dma', severity: 'deferred' });
    await new Promise((r) => setTimeout(r, 20));
    expect(got.filter((g) => g.cmd === CMD.RAS_EVENT_NTF)).toEqual([]);
    u.close();
  });
  test('root joins the multicast group; a subscriber that missed events reads them back from the log', async () => {
    const g = fam.groups.get('ras')!;
    c.join(g);
    const seqs: number[] = [];
    c.onEvent((m) => { if (m.cmd === CMD.RAS_EVENT_NTF) seqs.push(Number(read(m).event![0].seq)); });
    await req(CMD.RAS_INJECT, { devIndex: 0, block: 'dma', severity: 'deferred' });
    c.leave(g); // miss two
    await req(CMD.RAS_INJECT, { devIndex: 0, block: 'dma', severity: 'deferred' });
    await req(CMD.RAS_INJECT, { devIndex: 0, block: 'dma', severity: 'deferred' });
    c.join(g);
    await req(CMD.RAS_INJECT, { devIndex: 0, block: 'dma', severity: 'deferred' });
    await new Promise((r) => setTimeout(r, 20));
    expect(seqs).toEqual([1, 4]);
    // gap 2..3 detected: read it back by cursor
    const back = await dump(CMD.RAS_LOG_GET, { devIndex: 0, cursor: 2, limit: 2 });
    expect(back.map((m) => Number(m.event![0].seq))).toEqual([2, 3]);
  });
});

describe('drm-ras: ABI shape checked by a client written from the upstream spec', () => {
  // Numbers from the upstream spec, not from our generated code.
  const LIST_NODES = 1, GET_ERROR_COUNTER = 2, CLEAR_ERROR_COUNTER = 3, ERROR_EVENT = 4;
  const NODE = { ID: 1, DEVICE_NAME: 2, NODE_NAME: 3, NODE_TYPE: 4 };
  const EC = { NODE_ID: 1, ERROR_ID: 2, ERROR_NAME: 3, ERROR_VALUE: 4 };
  const attrs = (m: G.Message) => {
    const out: [number, number, number][] = []; // type, len, offset
    A.walk(m.v, m.attrs, m.end, (at, type) => { out.push([type, A.attrLen(m.v, at), at]); });
    return out;
  };
  let drm: G.FamilyInfo;
  beforeEach(async () => { drm = await c.resolve('drm-ras'); });

  test('family: version 1, ops 1-3 all admin-perm, group error-report', () => {
    expect(drm.version).toBe(1);
    expect(drm.ops).toEqual([{ id: 1, flags: 0x0d }, { id: 2, flags: 0x0f }, { id: 3, flags: 0x0b }]);
    expect([...drm.groups.keys()]).toEqual(['error-report']);
  });
  test('list-nodes: two nodes per device, every attribute, in order, flags 0 on dump parts', async () => {
    const msgs: G.Message[] = [];
    for await (const m of c.dump(drm.id, LIST_NODES)) msgs.push(m);
    expect(msgs.length).toBe(4);
    msgs.forEach((m, i) => {
      expect(m.flags).toBe(0);
      expect(m.cmd).toBe(LIST_NODES);
      const a = attrs(m);
      expect(a.map((x) => x[0])).toEqual([NODE.ID, NODE.DEVICE_NAME, NODE.NODE_NAME, NODE.NODE_TYPE]);
      expect(A.getU32(m.v, a[0][2])).toBe(i);
      expect(A.getString(m.v, a[1][2])).toBe(i < 2 ? '0000:03:00.0' : '0000:04:00.0');
      expect(A.getString(m.v, a[2][2])).toBe(i % 2 ? 'uncorrectable-errors' : 'correctable-errors');
      expect(a[3][1]).toBe(8);
      expect(A.getU32(m.v, a[3][2])).toBe(1);
    });
  });
  test('get-error-counter do and dump, u32 values from the RAS model; clear', async () => {
    await req(CMD.RAS_INJECT, { devIndex: 0, block: 'sram', severity: 'deferred', count: 3 });
    await req(CMD.RAS_INJECT, { devIndex: 0, block: 'sram', severity: 'uncorrectable-nonfatal', count: 2, address: 0x9000 });
    const ask = (node: number, id?: number) => (w: A.Writer) => { A.putU32(w, EC.NODE_ID, node); if (id) A.putU32(w, EC.ERROR_ID, id); };
    const [r] = await c.request(drm.id, GET_ERROR_COUNTER, { fill: ask(1, 2) });
    const a = attrs(r);
    expect(a.map((x) => x[0])).toEqual([EC.ERROR_ID, EC.ERROR_NAME, EC.ERROR_VALUE]); // node-id not echoed
    expect([A.getU32(r.v, a[0][2]), A.getString(r.v, a[1][2]), A.getU32(r.v, a[2][2])]).toEqual([2, 'sram', 5]);
    const all: number[] = [];
    for await (const m of c.dump(drm.id, GET_ERROR_COUNTER, { fill: ask(1) })) all.push(A.getU32(m.v, attrs(m)[2][2]));
    expect(all).toEqual([0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    await c.request(drm.id, CLEAR_ERROR_COUNTER, { fill: ask(1, 2) });
    const [z] = await c.request(drm.id, GET_ERROR_COUNTER, { fill: ask(1, 2) });
    expect(A.getU32(z.v, attrs(z)[2][2])).toBe(0);
  });
  test('errors as drm_ras.c gives them', async () => {
    await expect(c.request(drm.id, GET_ERROR_COUNTER, { fill: (w) => A.putU32(w, EC.ERROR_ID, 1) }))
      .rejects.toMatchObject({ errno: 22, extack: { missType: EC.NODE_ID } });
    await expect(c.request(drm.id, GET_ERROR_COUNTER, { fill: (w) => A.putU32(w, EC.NODE_ID, 0) }))
      .rejects.toMatchObject({ errno: 22, extack: { missType: EC.ERROR_ID } });
    await expect(c.request(drm.id, GET_ERROR_COUNTER, { fill: (w) => { A.putU32(w, 1, 42); A.putU32(w, 2, 1); } }))
      .rejects.toMatchObject({ errno: 2 });
    await expect(c.request(drm.id, GET_ERROR_COUNTER, { fill: (w) => { A.putU32(w, 1, 0); A.putU32(w, 2, 12); } }))
      .rejects.toMatchObject({ errno: 22 });
    // Dump: the node checks happen in dumpit, so the error arrives in NLMSG_DONE.
    const it = c.dump(drm.id, GET_ERROR_COUNTER);
    await expect(it.next()).rejects.toMatchObject({ errno: 22, extack: { missType: 1 } });
    // error-id in a dump request exceeds that op's maxattr 1: strict start() failure.
    const it2 = c.dump(drm.id, GET_ERROR_COUNTER, { fill: (w) => { A.putU32(w, 1, 0); A.putU32(w, 2, 1); } });
    await expect(it2.next()).rejects.toMatchObject({ errno: 22, extack: { msg: 'Unknown attribute type' } });
    const u = t.client(65534);
    await expect(u.request(drm.id, GET_ERROR_COUNTER, { fill: (w) => { A.putU32(w, 1, 0); A.putU32(w, 2, 1); } })).rejects.toMatchObject({ errno: 1 });
    u.close();
  });
  test('error-event on error-report carries the six event attributes', async () => {
    c.join(drm.groups.get('error-report')!);
    const ev = new Promise<G.Message>((res) => c.onEvent((m) => { if (m.type === drm.id) res(m); }));
    await req(CMD.RAS_INJECT, { devIndex: 1, block: 'pcie', severity: 'correctable' });
    const m = await ev;
    expect(m.cmd).toBe(ERROR_EVENT);
    const a = attrs(m);
    expect(a.map((x) => x[0])).toEqual([1, 2, 3, 4, 5, 6]);
    expect(A.getString(m.v, a[0][2])).toBe('0000:04:00.0');
    expect(A.getU32(m.v, a[1][2])).toBe(2);
    expect(A.getString(m.v, a[2][2])).toBe('correctable-errors');
    expect(A.getU32(m.v, a[3][2])).toBe(7);
    expect(A.getU32(m.v, a[5][2])).toBe(1);
  });
});

describe('daemon configuration of ACK shapes', () => {
  test('netlink.cap-ack: errors no longer echo the request; ext-ack off: no TLVs', async () => {
    // A 32-byte GETFAMILY whose name lacks its NUL: EINVAL with MSG, OFFS and POLICY TLVs (40 + 8 + 20 bytes).
    for (const [cfg, len, flags] of [['netlink: { cap-ack: true }', 36 + 68, 0x300], ['netlink: { ext-ack: false }', 16 + 4 + 32, 0]] as const) {
      const tt = boot(`${cfg}\ndevices: [{}]`);
      const raw: Uint8Array[] = [];
      const sock = G.openInproc(tt.hub, { onBatch: (b) => { for (let i = 0; i < b.count; i++) raw.push(new Uint8Array(b.data(i))); } });
      const w = A.newWriter();
      const at = G.genlStart(w, 0x10, 5, 1, 0, 3, 1);
      A.putStringNoNul(w, 2, 'nlctrl');
      G.msgEnd(w, at);
      sock.send(A.bytes(w), PORT);
      for (let i = 0; i < 200 && !raw.length; i++) await new Promise((r) => setTimeout(r, 5)); // a busy machine
      const v = A.view(raw[0]);
      expect([raw[0].length, v.dv.getUint16(6, true), v.dv.getInt32(16, true)]).toEqual([len, flags, -22]);
      sock.close();
      tt.d.close();
    }
  });
  test('bad netlink options are refused with the key named', () => {
    expect(() => boot('netlink: { cap-ack: 1 }')).toThrow('netlink.cap-ack: expected true or false, got 1');
    expect(() => boot('netlink: { caps: true }')).toThrow('netlink.caps: unknown key (ext-ack, cap-ack)');
  });
});

describe('log dumps under a storm', () => {
  test('a log dump ends where the log ended when it started, however fast records arrive', async () => {
    const dev = t.d.rt.emu.devices.get(0)!;
    t.d.rt.emu.cfg.stormBurst = 1e9;
    for (let i = 0; i < 2000; i++) inject(t.d.rt.emu, dev, { block: 'dma', severity: 'correctable' });
    let n = 0;
    for await (const m of c.dump(fam.id, CMD.RAS_LOG_GET, { fill: put({ devIndex: 0 }) })) {
      if (read(m).event) n++;
      // Keep appending while the dump runs.
      for (let i = 0; i < 10; i++) inject(t.d.rt.emu, dev, { block: 'dma', severity: 'correctable' });
    }
    expect(n).toBe(2000);
  });
});
