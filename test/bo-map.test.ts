// Mapped BOs (bo-map) on a real NETLINK_USERSOCK port: the client's mapping and the daemon's BO
// are the same bytes (bo-read, bo-write and a GEMM on the compute workers see them); the memfd is
// sealed; a token is good once, for its own BO, and only its owner gets it; a mapped BO's memory
// never goes to another BO; a gone client's memfds are closed; a job's BO is EBUSY; a daemon
// without the shm addon leaves the op out; and a nobody process maps its own BO.
import * as fs from 'fs';
import { EBUSY, EMFILE, ENOENT, EOPNOTSUPP } from '../attrs/errno';
import { gemm } from '../compute';
import { type AccelClient, connectAccel } from '../device/client';
import { CMD, FEATURE } from '../device/gen/accel';
import { type Daemon, createBo, freeBo, mapBo, shareBo, startDaemon } from '../device';
import { TOKENS_PER_BO } from '../device/bomap';
import { loadShm } from '../genl/native/load';
import { bundleForNobody } from './helpers/nobody';

const PORT = 0x41450000 + (process.pid & 0xfff);
const shm = loadShm().shm!;
let d: Daemon;
beforeAll(() => {
  if (!shm) throw new Error(`these tests need the shm addon: ${loadShm().error}`);
  d = startDaemon({ port: PORT, tick: false, computeThreads: 1, config: 'devices: [{ mem-total: 256MiB }]' });
});
afterAll(() => d.close());

const clients: AccelClient[] = [];
afterEach(() => { for (const c of clients.splice(0)) c.close(); });
async function client(): Promise<AccelClient> {
  const c = await connectAccel({ serverPort: PORT });
  clients.push(c);
  return c;
}
const bo = async (c: AccelClient, size: number) => (await c.do(CMD.BO_CREATE, { devIndex: 0, boSize: size }))[0].boHandle!;
async function readBo(c: AccelClient, handle: number, size: number): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  for (const m of await c.dump(CMD.BO_READ, { boHandle: handle, boSize: size })) out.set(m.data!, Number(m.boOffset));
  return out;
}
/** The descriptor a token fetches, or the negative errno of the refusal. */
async function fetchRaw(path: string, token: Uint8Array): Promise<number> {
  const sock = shm.connect(`\0${path.slice(1)}`);
  try {
    expect(shm.write(sock, token)).toBe(token.length);
    for (let i = 0; i < 500; i++) {
      const fd = shm.recvFd(sock);
      if (fd !== -11) return fd;
      await new Promise((r) => setTimeout(r, 2));
    }
    throw new Error('no answer');
  } finally { shm.close(sock); }
}
/** This process's mappings of BO memfds, counted per memfd (by inode). */
const memfdMaps = (): Map<string, number> => {
  const out = new Map<string, number>();
  for (const l of fs.readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    if (!l.includes('/memfd:accelnl-bo')) continue;
    const inode = l.split(/\s+/)[4];
    out.set(inode, (out.get(inode) ?? 0) + 1);
  }
  return out;
};
/** The daemon's open BO memfds (it runs in this process). */
const memfds = () => fs.readdirSync('/proc/self/fd').filter((f) => {
  try { return fs.readlinkSync(`/proc/self/fd/${f}`).startsWith('/memfd:accelnl-bo'); } catch { return false; }
}).length;

test('the mapping is the BO: bo-write, bo-read and a GEMM on a compute worker see the same bytes', async () => {
  const c = await client();
  const caps = (await c.do(CMD.CAPS_GET, { devIndex: 0 }))[0];
  expect(Number(caps.features) & FEATURE.BO_MAP).toBe(FEATURE.BO_MAP);
  expect(c.family.ops.map((o) => o.id)).toContain(CMD.BO_MAP);

  const h = await bo(c, 100000);
  await c.do(CMD.BO_WRITE, { boHandle: h, boOffset: 10, data: Uint8Array.of(1, 2, 3) });
  const bytes = await mapBo(c, h);
  expect(bytes.length).toBe(100000);
  expect([...bytes.subarray(9, 14)]).toEqual([0, 1, 2, 3, 0]); // written before the map: kept
  bytes.fill(7, 50000, 50010);
  expect([...(await readBo(c, h, 100000)).subarray(49999, 50011)]).toEqual([0, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 0]);
  await c.do(CMD.BO_WRITE, { boHandle: h, boOffset: 99998, data: Uint8Array.of(9, 9) });
  expect([...bytes.subarray(99997)]).toEqual([0, 9, 9]);

  // A 64x48x32 f32 GEMM whose A, B and C are all mapped: inputs written in place, C read in place.
  const [m, n, k] = [64, 48, 32];
  const [ha, hb, hc] = [await bo(c, m * k * 4), await bo(c, k * n * 4), await bo(c, m * n * 4)];
  const [A, B, C] = [await mapBo(c, ha), await mapBo(c, hb), await mapBo(c, hc)];
  expect(A.every((x) => x === 0)).toBe(true); // never written: a fresh memfd, all zeros
  const [a, b] = [new Float32Array(A.buffer), new Float32Array(B.buffer)];
  a.forEach((_, i) => { a[i] = ((i * 7) % 13) - 6; });
  b.forEach((_, i) => { b[i] = ((i * 5) % 11) - 5; });
  const [s] = await c.do(CMD.JOB_SUBMIT, { devIndex: 0, gemm: { m, n, k, dtype: 'f32', aHandle: ha, bHandle: hb, cHandle: hc } });
  const [w] = await c.do(CMD.JOB_WAIT, { jobId: s.jobId, timeoutMs: 10000 });
  expect(w.job![0].status).toBe('done');
  expect(new Float32Array(C.buffer)).toEqual(gemm({ dtype: 'f32', m, n, k, a, b, c: new Float32Array(m * n) }));
});

test('the memfd is sealed: its size can never change, and the seals are final', async () => {
  const c = await client();
  const h = await bo(c, 8192);
  const [r] = await c.do(CMD.BO_MAP, { boHandle: h });
  expect(r).toMatchObject({ boHandle: h, boSize: 8192, mapPath: expect.stringMatching(/^@accelnl-bo-[0-9a-f]{16}$/) });
  expect(r.mapToken!.length).toBe(16);
  // bo-get (accel bo show) says which BOs are mapped.
  const h2 = await bo(c, 4096);
  const listed = (await c.dump(CMD.BO_GET)).flatMap((m) => m.bo ?? []).filter((b) => b.owner === c.genl.port);
  expect(listed.map((b) => [b.handle, !!b.mapped])).toEqual([[h, true], [h2, false]]);
  const fd = await fetchRaw(r.mapPath!, r.mapToken!);
  expect(fd).toBeGreaterThanOrEqual(0);
  try {
    expect(shm.seals(fd)).toBe(0x1 | 0x2 | 0x4); // F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW
    expect(fs.fstatSync(fd).size).toBe(8192);
    expect(() => fs.ftruncateSync(fd, 0)).toThrow(expect.objectContaining({ code: 'EPERM' }));
    expect(() => fs.writeSync(fd, Buffer.alloc(1), 0, 1, 8192)).toThrow(expect.objectContaining({ code: 'EPERM' }));
    // Mapping a wrong size, or an unsealed file, is refused rather than risking SIGBUS.
    expect(() => shm.map(fd, 8193)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    const plain = fs.openSync('/proc/self/cmdline', 'r');
    try { expect(() => shm.map(plain, 1)).toThrow(expect.objectContaining({ code: 'EINVAL' })); } finally { fs.closeSync(plain); }
  } finally { shm.close(fd); }
});

test('a token is good once, for its BO while it lives; other bytes are refused; a handle is per client', async () => {
  const [c, other] = [await client(), await client()];
  const h = await bo(c, 4096);
  const [r] = await c.do(CMD.BO_MAP, { boHandle: h });
  const fd = await fetchRaw(r.mapPath!, r.mapToken!);
  expect(fd).toBeGreaterThanOrEqual(0);
  shm.close(fd);
  const ENOMSG = -42;
  expect(await fetchRaw(r.mapPath!, r.mapToken!)).toBe(ENOMSG);            // used
  expect(await fetchRaw(r.mapPath!, new Uint8Array(16).fill(0xab))).toBe(ENOMSG); // guessed
  const [r2] = await c.do(CMD.BO_MAP, { boHandle: h });
  await c.do(CMD.BO_DESTROY, { boHandle: h });
  expect(await fetchRaw(r2.mapPath!, r2.mapToken!)).toBe(ENOMSG);          // its BO is gone
  await expect(mapBo(c, h)).rejects.toMatchObject({ errno: ENOENT, extack: { msg: `no BO ${h}` } });
  // Tokens are bounded per BO: asking again and again pushes out that BO's oldest, and never keeps
  // another client from mapping (there is no daemon-wide cap to fill).
  const hb = await bo(c, 4096);
  const asked = [];
  for (let i = 0; i < TOKENS_PER_BO + 12; i++) asked.push((await c.do(CMD.BO_MAP, { boHandle: hb }))[0].mapToken!);
  expect(await fetchRaw(r.mapPath!, asked[0])).toBe(ENOMSG);
  const last = await fetchRaw(r.mapPath!, asked[asked.length - 1]);
  expect(last).toBeGreaterThanOrEqual(0);
  shm.close(last);
  expect((await mapBo(other, await bo(other, 4096))).length).toBe(4096);
  // Another client's handle space does not hold c's BOs.
  const h2 = await bo(c, 4096);
  await expect(other.do(CMD.BO_MAP, { boHandle: h2 })).rejects.toMatchObject({ errno: ENOENT });
  await expect(c.do(CMD.BO_MAP, {})).rejects.toMatchObject({ errno: 22, extack: { missType: expect.any(Number) } });
});

test('a mapped BO\'s memory never goes to another BO; a gone client\'s memfds are closed', async () => {
  const [a, b] = [await client(), await client()];
  const before = memfds();
  const ha = await bo(a, 65536);
  const mine = await mapBo(a, ha);
  mine.fill(0xaa);
  expect(memfds()).toBe(before + 1);
  await a.do(CMD.BO_DESTROY, { boHandle: ha });
  expect(memfds()).toBe(before);
  // Same size, next allocation: fresh zeroed memory, not the pages a still maps.
  const hb = await bo(b, 65536);
  expect((await readBo(b, hb, 65536)).every((x) => x === 0)).toBe(true);
  mine.fill(0x55);
  expect((await readBo(b, hb, 65536)).every((x) => x === 0)).toBe(true);
  expect(mine[0]).toBe(0x55); // a's own memory now (pages written after the BO went are a's)

  await mapBo(b, hb);
  await mapBo(b, await bo(b, 4096));
  expect(memfds()).toBe(before + 2);
  b.close();
  clients.splice(clients.indexOf(b), 1);
  for (let i = 0; i < 100 && memfds() > before; i++) {
    d.served.sweeper.run();
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(memfds()).toBe(before);
});

test('a freed mapped BO leaves the daemon at once: its mapping is dropped, not left to the garbage collector', async () => {
  const c = await client();
  // Counted for this BO's memfd alone: mappings of earlier tests' BOs go whenever the collector
  // frees their arrays, which once made a count of all of them drop under this test.
  const before = memfdMaps();
  const h = await bo(c, 1 << 20);
  const mine = await mapBo(c, h);
  mine.fill(3);
  const fresh = [...memfdMaps()].filter(([inode]) => !before.has(inode));
  expect(fresh.map(([, n]) => n)).toEqual([2]); // the daemon's mapping and ours (one process here)
  const [inode] = fresh[0];
  await c.do(CMD.BO_DESTROY, { boHandle: h });
  expect(memfdMaps().get(inode)).toBe(1); // ours alone
  // The pages went back with the BO (whoever faulted them in): our mapping stays valid and reads zeros.
  expect(mine[12345]).toBe(0);
  mine[12345] = 9;
  expect(mine[12345]).toBe(9);
});

test('the map socket reads a token and nothing more: a writer of junk is answered and cut off', async () => {
  const c = await client();
  const [r] = await c.do(CMD.BO_MAP, { boHandle: await bo(c, 4096) });
  const sock = shm.connect(`\0${r.mapPath!.slice(1)}`);
  try {
    const junk = new Uint8Array(256).fill(0x5a);
    const start = Date.now();
    let n = 0;
    // Write without pause: the daemon must close the connection after the first 16 bytes, where it
    // used to read and discard whatever came for as long as it came.
    for (;;) {
      const w = shm.write(sock, junk);
      if (w < 0 && w !== -11) break; // EPIPE or ECONNRESET: cut off
      if (w > 0) n += w;
      // Well inside the 1 s every connection gets: the cut must come from the token read.
      if (Date.now() - start > 500) throw new Error(`still connected after ${n} bytes`);
      if (w === -11) await new Promise((res) => setTimeout(res, 1));
    }
    expect(n).toBeGreaterThanOrEqual(16);
  } finally { shm.close(sock); }
  // The token itself was not taken by the junk, and still maps.
  expect(await fetchRaw(r.mapPath!, r.mapToken!)).toBeGreaterThanOrEqual(0);
});

test('a non-admin uid may hold only mapLimit mapped BOs (EMFILE), and gets one back when it frees one', () => {
  const e = d.engine;
  const dev = d.rt.emu.devices.get(0)!;
  const limit = e.mapLimit;
  e.mapLimit = 2;
  const owner = 0x7fff0000;
  const bos = [0, 1, 2].map(() => createBo(e, dev, 4096, owner, 1000));
  try {
    shareBo(e, bos[0]);
    shareBo(e, bos[1]);
    shareBo(e, bos[1]); // already shared: no second count
    expect(() => shareBo(e, bos[2])).toThrow(expect.objectContaining({ errno: EMFILE, message: 'uid 1000 holds 2 mapped BOs, the most a non-admin user may; destroy one first' }));
    freeBo(e, bos[0]);
    expect(shareBo(e, bos[2])).toBeGreaterThanOrEqual(0);
    expect(e.mappedBy.get(1000)).toBe(2);
    // And the daemon's own bound, which non-admins meet whoever holds the descriptors; admins do not.
    const total = e.mapTotalLimit;
    e.mapTotalLimit = e.mappedTotal;
    const other = createBo(e, dev, 4096, owner, 1001);
    const admin = createBo(e, dev, 4096, owner);
    try {
      expect(() => shareBo(e, other)).toThrow(expect.objectContaining({ errno: EMFILE, message: `the daemon holds ${e.mappedTotal} mapped BOs, its limit; try again when some are freed` }));
      expect(shareBo(e, admin)).toBeGreaterThanOrEqual(0);
    } finally {
      e.mapTotalLimit = total;
      for (const b of [other, admin]) freeBo(e, b);
    }
  } finally {
    e.mapLimit = limit;
    for (const b of bos) freeBo(e, b);
  }
  expect(e.mappedBy.has(1000)).toBe(false);
});

test('one user\'s idle or dripping connections to the map socket keep no one else from mapping', async () => {
  const c = await client();
  const [r] = await c.do(CMD.BO_MAP, { boHandle: await bo(c, 4096) });
  // As nobody: 40 connections, each sent a byte every 100 ms (the old idle timeout never fired).
  // Each line: when the daemon cut it off, in ms after connecting.
  const b = bundleForNobody({ code: `
    import { loadShm } from './genl/native/load';
    const shm = loadShm().shm!;
    const name = ${JSON.stringify(`\0${r.mapPath!.slice(1)}`)};
    const socks = Array.from({ length: 40 }, () => ({ fd: shm.connect(name), t0: Date.now(), cut: -1 }));
    const tick = setInterval(() => {
      for (const s of socks) if (s.cut < 0 && shm.write(s.fd, Uint8Array.of(0)) < 0) s.cut = Date.now() - s.t0;
      if (socks.every((s) => s.cut >= 0) || Date.now() - socks[0].t0 > 4000) {
        clearInterval(tick);
        console.log(JSON.stringify(socks.map((s) => s.cut)));
      }
    }, 100);
  ` });
  try {
    const running = b.run();
    await new Promise((res) => setTimeout(res, 300));
    // Meanwhile the owner (root here) maps, with its connection well inside the daemon's bounds.
    expect((await mapBo(c, await bo(c, 4096))).length).toBe(4096);
    const out = await running;
    expect(out.stderr).toBe('');
    const cut = JSON.parse(out.stdout) as number[];
    expect(cut.every((t) => t >= 0)).toBe(true);                          // none outlived the run
    expect(cut.filter((t) => t < 700).length).toBeGreaterThanOrEqual(24);   // over the uid's 16: at once, not after 1 s
    expect(Math.max(...cut)).toBeLessThan(2500);                             // the rest after about 1 s, drips or not
    expect(d.maps.turnedAway).toBeGreaterThanOrEqual(24);
  } finally { b.dispose(); }
});

test('bo-map is EBUSY while a failed or timed-out job\'s worker may still write the BO (its memory must not go to another BO)', () => {
  const e = d.engine;
  const b = createBo(e, d.rt.emu.devices.get(0)!, 4096, 0x7ffe0000, 1000);
  // As the engine leaves a job that timed out while its worker computes on: failed, still running.
  const job = { id: 999999, status: 'timeout', bos: [b] } as unknown as Parameters<typeof e.running.set>[1];
  e.running.set(99, job);
  try {
    expect(() => shareBo(e, b)).toThrow(expect.objectContaining({ errno: EBUSY, message: 'BO 1 is used by job 999999 (timeout); map it before submitting' }));
  } finally {
    e.running.delete(99);
    freeBo(e, b);
  }
});

test('a client that goes away while its job runs: the job\'s BOs (and their memfds) go when the job is over', async () => {
  const c = await client();
  const before = memfds(), bosBefore = d.engine.bos.size;
  const n = 384;
  const hs = [await bo(c, n * n * 4), await bo(c, n * n * 4), await bo(c, n * n * 4)];
  for (const h of hs) await mapBo(c, h);
  expect(memfds()).toBe(before + 3);
  const [s] = await c.do(CMD.JOB_SUBMIT, { devIndex: 0, gemm: { m: n, n, k: n, dtype: 'f32', aHandle: hs[0], bHandle: hs[1], cHandle: hs[2] } });
  const job = d.engine.jobs.get(s.jobId!)!;
  c.close();
  clients.splice(clients.indexOf(c), 1);
  for (let i = 0; i < 250 && d.engine.bos.size > bosBefore; i++) {
    d.served.sweeper.run();
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(job.status).toBe('done'); // it ran to the end; its BOs went after it
  // The finished job, kept for job-get, holds no views of their memory.
  expect([job.desc, job.bos]).toEqual([undefined, []]);
  expect(d.engine.bos.size).toBe(bosBefore);
  expect(memfds()).toBe(before);
});

test('bo-map is EBUSY while a job uses a BO not yet shared', async () => {
  const c = await client();
  const n = 384;
  const hs = [await bo(c, n * n * 4), await bo(c, n * n * 4), await bo(c, n * n * 4)];
  const sub = c.do(CMD.JOB_SUBMIT, { devIndex: 0, gemm: { m: n, n, k: n, dtype: 'f32', aHandle: hs[0], bHandle: hs[1], cHandle: hs[2] } });
  const map = c.do(CMD.BO_MAP, { boHandle: hs[2] });
  const [s] = await sub;
  await expect(map).rejects.toMatchObject({ errno: EBUSY, extack: {
    msg: expect.stringMatching(new RegExp(`^BO ${hs[2]} is used by job ${s.jobId} \\((queued|running)\\); map it before submitting$`)) } });
  await c.do(CMD.JOB_WAIT, { jobId: s.jobId, timeoutMs: 20000 });
  expect((await mapBo(c, hs[2])).length).toBe(n * n * 4);
});

test('without the shm addon the daemon leaves bo-map out: not listed, not claimed, EOPNOTSUPP', async () => {
  const port = PORT + 0x1000;
  const bare = startDaemon({ port, tick: false, computeThreads: 0, shm: false });
  try {
    const c = await connectAccel({ serverPort: port });
    clients.push(c);
    expect(c.family.ops.map((o) => o.id)).not.toContain(CMD.BO_MAP);
    expect(Number((await c.do(CMD.CAPS_GET, { devIndex: 0 }))[0].features) & FEATURE.BO_MAP).toBe(0);
    const h = await bo(c, 4096);
    await expect(mapBo(c, h)).rejects.toMatchObject({ errno: EOPNOTSUPP });
  } finally { bare.close(); }
});

test('nobody maps its own BO: its writes in the mapping are the BO\'s bytes; a token root asked for is not nobody\'s', async () => {
  const c = await client();
  const [mine] = await c.do(CMD.BO_MAP, { boHandle: await bo(c, 4096) });
  const b = bundleForNobody({ code: `
    import { connectAccel } from './device/client';
    import { mapBo } from './device';
    import { CMD } from './device/gen/accel';
    import { loadShm } from './genl/native/load';
    (async () => {
      const c = await connectAccel({ serverPort: ${PORT} });
      const [r] = await c.do(CMD.BO_CREATE, { devIndex: 0, boSize: 4096 });
      const bytes = await mapBo(c, r.boHandle!);
      bytes.set([1, 2, 3, 4], 100);
      const back = new Uint8Array(4096);
      for (const m of await c.dump(CMD.BO_READ, { boHandle: r.boHandle, boSize: 4096 })) back.set(m.data!, Number(m.boOffset));
      c.close();
      // Root's token, given to nobody: the daemon answers a process of another user with a refusal.
      const shm = loadShm().shm!;
      const sock = shm.connect(${JSON.stringify(`\0${mine.mapPath!.slice(1)}`)});
      shm.write(sock, Buffer.from('${Buffer.from(mine.mapToken!).toString('hex')}', 'hex'));
      let other = -11;
      for (let i = 0; i < 500 && other === -11; i++) { await new Promise((res) => setTimeout(res, 2)); other = shm.recvFd(sock); }
      console.log(JSON.stringify({ uid: process.getuid!(), read: [...back.subarray(100, 104)], other }));
    })().catch((e) => { console.error(e); process.exit(1); });
  ` });
  try {
    const r = await b.run();
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ uid: 65534, read: [1, 2, 3, 4], other: -42 }); // ENOMSG: refused
  } finally { b.dispose(); }
  // The refusal spent the token, as any fetch does; root asks again.
  expect((await mapBo(c, mine.boHandle!)).length).toBe(4096);
});
