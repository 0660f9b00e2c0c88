// The daemon on a real NETLINK_USERSOCK port and the accel client library: multicast as root,
// unicast subscription as nobody, the netlink npm package receiving an accel multicast event, and
// a slow subscriber under an event storm that ends with every event, in order, by sequence.
import { createNetlink } from 'netlink';
import { ECONNREFUSED, ENOENT, ETIMEDOUT } from '../attrs/errno';
import { CMD } from '../device/gen/accel';
import { serverStats } from '../genl';
import { type AccelEvent, connectAccel } from '../device/client';
import { BO_WRITE_MAX, boWrites, inject, startDaemon, type Daemon } from '../device';
import { bundleForNobody, type NobodyBundle } from './helpers/nobody';

const PORT = 0x41440000 + (process.pid & 0xfff);
let d: Daemon;
beforeAll(() => { d = startDaemon({ port: PORT, config: 'storm: { burst: 1000000 }\ndevices: [{}, {}]', tick: false }); });
afterAll(() => d.close());

const settle = (ms = 30) => new Promise((r) => setTimeout(r, ms));

test('root: multicast subscription sees injected events; the ready line names families and port', async () => {
  expect(d.ready).toMatch(/port 0x4144[0-9a-f]{4}, families nlctrl 0x10, accel 0x[0-9a-f]+, drm-ras 0x[0-9a-f]+, devlink 0x[0-9a-f]+, 2 devices \(accel0 accel1\)/);
  const c = await connectAccel({ serverPort: PORT });
  const seen: AccelEvent[] = [];
  const sub = await c.subscribe(['ras', 'config'], (e) => seen.push(e));
  expect(sub.mode).toBe('multicast');
  await c.do(CMD.RAS_INJECT, { devIndex: 0, block: 'thermal', severity: 'uncorrectable-nonfatal' });
  await settle();
  expect(seen.map((e) => e.cmd)).toEqual(expect.arrayContaining(['ras-event-ntf', 'health-ntf']));
  await sub.close();
  c.close();
});

/** A subscriber to device 1's RAS events ([seq, recovered] in seqs, from start + 1 on) and an admin client. */
async function watchDevice1() {
  const c = await connectAccel({ serverPort: PORT });
  const admin = await connectAccel({ serverPort: PORT });
  const seqs: [number, boolean][] = [];
  const sub = await c.subscribe(['ras'], (e) => { if (e.attrs.devIndex === 1) seqs.push([Number(e.attrs.event![0].seq), !!e.recovered]); });
  return { c, admin, seqs, sub, start: Number(sub.lastSeq.get(1)!) };
}

test('a subscriber that misses events (left the group) gets them back from the log, marked recovered, in order', async () => {
  const { c, admin, seqs, sub, start } = await watchDevice1();
  await admin.do(CMD.RAS_INJECT, { devIndex: 1, block: 'dma', severity: 'deferred' });
  await settle();
  c.genl.leave(c.family.groups.get('ras')!);
  for (let i = 0; i < 3; i++) await admin.do(CMD.RAS_INJECT, { devIndex: 1, block: 'dma', severity: 'deferred' });
  c.genl.join(c.family.groups.get('ras')!);
  await admin.do(CMD.RAS_INJECT, { devIndex: 1, block: 'dma', severity: 'deferred' });
  await settle(80);
  expect(seqs).toEqual([[start + 1, false], [start + 2, true], [start + 3, true], [start + 4, true], [start + 5, false]]);
  expect(sub.recovered).toBe(3);
  await sub.close();
  c.close();
  admin.close();
});

test('a health change reaches the subscriber after the RAS event that caused it, as the daemon sent them', async () => {
  const c = await connectAccel({ serverPort: PORT });
  const admin = await connectAccel({ serverPort: PORT });
  const seen: string[] = [];
  const sub = await c.subscribe(['ras', 'config'], (e) => { if (e.attrs.devIndex === 1) seen.push(e.cmd); });
  await admin.do(CMD.RAS_INJECT, { devIndex: 1, block: 'thermal', severity: 'uncorrectable-nonfatal' });
  const deadline = Date.now() + 3000;
  while (!seen.includes('health-ntf') && Date.now() < deadline) await settle(20);
  expect(seen.slice(0, 2)).toEqual(['ras-event-ntf', 'health-ntf']);
  await sub.close();
  c.close();
  admin.close();
});

test('a read-back that fails is tried again, though no later event comes to reveal the gap', async () => {
  const { c, admin, seqs, sub, start } = await watchDevice1();
  // The first read-back of the log fails, as it would with the daemon out of memory or busy.
  const dump = c.dump.bind(c);
  let failed = 0;
  c.dump = async (cmd, a) => {
    if (cmd === CMD.RAS_LOG_GET && failed++ === 0) throw new Error('injected: read-back failed');
    return dump(cmd, a);
  };
  c.genl.leave(c.family.groups.get('ras')!);
  for (let i = 0; i < 2; i++) await admin.do(CMD.RAS_INJECT, { devIndex: 1, block: 'dma', severity: 'deferred' });
  c.genl.join(c.family.groups.get('ras')!);
  await admin.do(CMD.RAS_INJECT, { devIndex: 1, block: 'dma', severity: 'deferred' }); // the last event: its gap read-back fails
  const deadline = Date.now() + 3000;
  while (seqs.length < 3 && Date.now() < deadline) await settle(20);
  expect(failed).toBeGreaterThanOrEqual(2);
  expect(seqs).toEqual([[start + 1, true], [start + 2, true], [start + 3, false]]);
  expect(sub.recovered).toBe(2);
  await sub.close();
  c.close();
  admin.close();
});

test('a slow subscriber with a tiny receive buffer under a storm ends with every event exactly once', async () => {
  const c = await connectAccel({ serverPort: PORT, rcvbuf: 4096 });
  const seqs: number[] = [];
  const sub = await c.subscribe(['ras'], (e) => { if (e.attrs.devIndex === 0) seqs.push(Number(e.attrs.event![0].seq)); });
  const first = Number(sub.lastSeq.get(0)!) + 1;
  // The storm comes from inside the daemon (no request round trips), faster than the client reads.
  const dev = d.rt.emu.devices.get(0)!;
  const N = 3000;
  for (let i = 0; i < N; i++) inject(d.rt.emu, dev, { block: 'pcie', severity: 'deferred' });
  // One more event after the storm lets a subscriber notice a trailing gap even without an overrun signal.
  await settle(200);
  inject(d.rt.emu, dev, { block: 'pcie', severity: 'deferred' });
  const deadline = Date.now() + 25000; // generous: CI machines may be busy
  while (seqs.length < N + 1 && Date.now() < deadline) await settle(50);
  expect(seqs.length).toBe(N + 1);
  expect(seqs).toEqual(Array.from({ length: N + 1 }, (_, i) => first + i));
  expect(sub.recovered).toBeGreaterThan(0); // the kernel really dropped some, and they came back
  await sub.close();
  c.close();
}, 40000);

test('a bo-write of data and two more-data parts (195,056 bytes) is one datagram the daemon reads whole', async () => {
  const c = await connectAccel({ serverPort: PORT });
  try {
    const size = BO_WRITE_MAX + 1000;
    const data = new Uint8Array(size).map((_, i) => (i * 13 + (i >> 11)) & 0xff);
    const [bo] = await c.do(CMD.BO_CREATE, { devIndex: 0, boSize: size });
    const writes = boWrites(bo.boHandle!, data);
    expect(writes.map((w) => [w.boOffset, w.data!.length, w.moreData?.map((p) => p.length)])).toEqual([[0, 65000, [65000, 65000]], [195000, 1000, undefined]]);
    const truncated = serverStats(d.served.srv).truncated;
    await Promise.all(writes.map((w) => c.do(CMD.BO_WRITE, w)));
    expect(serverStats(d.served.srv).truncated).toBe(truncated);
    const back = new Uint8Array(size);
    for (const m of await c.dump(CMD.BO_READ, { boHandle: bo.boHandle })) back.set(m.data!, Number(m.boOffset));
    expect(back).toEqual(data);
  } finally {
    c.close();
  }
});

test('a failed bo-write of 195,000 bytes answers at once, with its message, to a client that reads 64 KiB datagrams', async () => {
  const writes = boWrites(999999, new Uint8Array(BO_WRITE_MAX));
  // Our client says how long it reads: the error, whose echo of the request would not fit, comes capped.
  const c = await connectAccel({ serverPort: PORT, timeoutMs: 3000 });
  // One that does not say gets the kernel's shape, the whole request echoed, cut off at its 64 KiB:
  // the errno survives in the head, the message does not, and the request fails at once all the same.
  const plain = await connectAccel({ serverPort: PORT, timeoutMs: 3000, tellRecvLen: false });
  try {
    const e = await c.do(CMD.BO_WRITE, writes[0]).catch((x) => x);
    expect(e).toMatchObject({ errno: ENOENT, local: false });
    expect(e.extack.msg).toBe('no BO 999999');
    expect(e.extack.offset).toBeGreaterThan(0); // the offset still says which attribute, without the echo
    const e2 = await plain.do(CMD.BO_WRITE, writes[0]).catch((x) => x);
    expect(e2).toMatchObject({ errno: ENOENT, local: false });
    expect(e2.extack.msg).toMatch(/^the answer \(195[0-9]{3} bytes\) was longer than this socket reads \(65536\)/);
  } finally {
    c.close();
    plain.close();
  }
});

test('job-wait through the typed client waits as long as the job runs, past the client\'s own timeout; with timeout-ms it stops there', async () => {
  // The client gives up on a silent daemon after 100 ms; a 1024^3 job runs 150-500 ms here.
  const c = await connectAccel({ serverPort: PORT, timeoutMs: 100 });
  try {
    const n = 1024, bytes = n * n * 4;
    const h: number[] = [];
    for (let i = 0; i < 3; i++) h.push((await c.do(CMD.BO_CREATE, { devIndex: 0, boSize: bytes }))[0].boHandle!);
    const submit = async () => (await c.do(CMD.JOB_SUBMIT, {
      devIndex: 0, timeoutMs: 60000, gemm: { m: n, n, k: n, dtype: 'f32', aHandle: h[0], bHandle: h[1], cHandle: h[2] },
    }))[0].jobId!;
    const first = await submit();
    const t0 = Date.now();
    const [w] = await c.do(CMD.JOB_WAIT, { jobId: first });
    expect(w.job![0].status).toBe('done');
    expect(Date.now() - t0).toBeGreaterThan(100); // else this test proves nothing: make the job bigger
    const second = await submit();
    const late = await c.do(CMD.JOB_WAIT, { jobId: second, timeoutMs: 20 }).catch((e: unknown) => e);
    expect(late).toMatchObject({ errno: ETIMEDOUT, local: false, message: expect.stringContaining(`job ${second} did not finish within 20 ms`) });
    expect((await c.do(CMD.JOB_WAIT, { jobId: second }))[0].job![0].status).toBe('done');
    for (const boHandle of h) await c.do(CMD.BO_DESTROY, { boHandle });
  } finally {
    c.close();
  }
}, 30_000);

test('a client whose daemon went away after it connected is told so, as at connect', async () => {
  const port = PORT + 0x1000;
  const gone = startDaemon({ port, config: 'devices: [{}]', tick: false });
  const c = await connectAccel({ serverPort: port });
  try {
    await c.do(CMD.DEV_GET, { devIndex: 0 });
    gone.close();
    await settle(50);
    const e = await c.do(CMD.DEV_GET, { devIndex: 0 }).catch((x: unknown) => x);
    expect(e).toMatchObject({ errno: ECONNREFUSED, local: true, message: expect.stringContaining('is "accel daemon" running?') });
    const d2 = await c.dump(CMD.DEV_GET).catch((x: unknown) => x);
    expect(d2).toMatchObject({ errno: ECONNREFUSED, message: expect.stringContaining('cannot reach the accel daemon at netlink port 0x') });
  } finally {
    c.close();
  }
});

describe('as user nobody', () => {
  let nobody: NobodyBundle;
  beforeAll(() => {
    nobody = bundleForNobody({
      code: `
        import { connectAccel } from './device/client';
        import { CMD } from './device/gen/accel';
        (async () => {
          const port = Number(process.argv[2]);
          const c = await connectAccel({ serverPort: port });
          const out: string[] = [];
          try { await c.do(CMD.RAS_INJECT, { devIndex: 0, block: 'dma', severity: 'correctable' }); out.push('inject ok'); }
          catch (e) { out.push('inject ' + (e as { code: string }).code); }
          const sub = await c.subscribe(['ras'], (e) => { out.push('event ' + e.attrs.event![0].block); });
          out.push('mode ' + sub.mode);
          const until = Date.now() + 8000;
          while (!out.some((l) => l.startsWith('event')) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
          process.stdout.write(out.join('\\n') + '\\n');
          await sub.close();
          c.close();
        })();`,
    });
  });
  afterAll(() => nobody.dispose());

  test('admin ops get EPERM; the subscribe op delivers events by unicast', async () => {
    let done = false;
    const run = nobody.run([String(PORT)]).finally(() => { done = true; });
    // Inject until the nobody process has seen an event (it subscribes after starting up).
    const admin = await connectAccel({ serverPort: PORT });
    try {
      while (!done) {
        await admin.do(CMD.RAS_INJECT, { devIndex: 0, block: 'mmu', severity: 'deferred' });
        await settle(100);
      }
    } finally {
      admin.close();
    }
    const r = await run;
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 2)).toEqual(['inject EPERM', 'mode unicast']);
    expect(lines).toContain('event mmu');
  });
});

test('the netlink npm package receives an accel multicast event on its own socket', async () => {
  const nl = createNetlink(2);
  const c = await connectAccel({ serverPort: PORT });
  try {
    const ras = c.family.groups.get('ras')!;
    nl.socket.addMembership(ras);
    const got = new Promise<{ type: number; port: number; groups: number }>((res) => {
      nl.on('message', (msgs: { type: number }[], rinfo: { port: number; groups: number }) => {
        for (const m of msgs) if (m.type === c.family.id) res({ type: m.type, port: rinfo.port, groups: rinfo.groups });
      });
    });
    await c.do(CMD.RAS_INJECT, { devIndex: 0, block: 'sram', severity: 'correctable' });
    expect(await got).toEqual({ type: c.family.id, port: PORT, groups: 1 << (ras - 1) });
  } finally {
    nl.socket.close();
    c.close();
  }
});
