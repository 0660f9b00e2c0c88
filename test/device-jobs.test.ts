// Buffer objects and GEMM jobs through the accel family (in-process hub): data in and out in
// chunks, memory accounting, descriptor validation naming the operand, completion events, and
// faults meeting jobs (HBM errors in a job's BO, fatal errors, timeouts, vanished owners).
import * as A from '../attrs';
import * as G from '../genl';
import { readAttrs, writeAttrs } from '../genl/ynl';
import { gemm } from '../compute';
import { boWrites, createBo, freeBo, inject, lookupBo, manualClock, startDaemon, submit } from '../device';
import { giveMemory, newBoMemory, takeMemory } from '../device/bomem';
import { type Accel, ACCEL, CMD, spec } from '../device/gen/accel';

const PORT = 0x41434345;

function boot(threads = 0) {
  const hub = G.newHub();
  const d = startDaemon({ port: PORT, tick: false, clock: manualClock(), computeThreads: threads,
    config: 'reset-ms: 5\ndevices: [{ mem-total: 64MiB }, {}]',
    open: (onBatch) => G.openInproc(hub, { port: PORT, onBatch }), alive: G.hubAlive(hub) });
  const client = () => G.createClient({ serverPort: PORT, open: (onBatch) => G.openInproc(hub, { onBatch }) });
  return { hub, d, client };
}

let t: ReturnType<typeof boot>;
let c: G.Client;
let fam: G.FamilyInfo;
beforeEach(async () => { t = boot(); c = t.client(); fam = await c.resolve('accel'); });
afterEach(() => { c.close(); t.d.close(); });

/** The owner key the server files this client's BOs and jobs under (its socket, not its port). */
const me = () => G.clientAt(t.d.served.srv, { port: c.port, uid: 0, gid: 0, pid: process.pid }).id;
const put = (a: Accel) => (w: A.Writer) => writeAttrs(w, spec, 'accel', a);
const read = (m: G.Message) => readAttrs<Accel>(m.v, m.attrs, m.end, spec, 'accel');
const req = async (cmd: number, a: Accel = {}, cl = c) => (await cl.request(fam.id, cmd, { fill: put(a) })).map(read);
const dump = async (cmd: number, a: Accel = {}) => { const o: Accel[] = []; for await (const m of c.dump(fam.id, cmd, { fill: put(a) })) o.push(read(m)); return o; };

async function bo(size: number, dev = 0, cl = c): Promise<number> {
  const [r] = await req(CMD.BO_CREATE, { devIndex: dev, boSize: size }, cl);
  return r.boHandle!;
}
async function write(h: number, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length; off += 60000) {
    await req(CMD.BO_WRITE, { boHandle: h, boOffset: off, data: data.subarray(off, off + 60000) });
  }
}
async function readAll(h: number, size: number): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  for (const m of await dump(CMD.BO_READ, { boHandle: h, boSize: size })) out.set(m.data!, Number(m.boOffset));
  return out;
}

test('nlctrl lists the bo and job ops', () => {
  const ids = fam.ops.map((o) => o.id);
  for (const op of [CMD.BO_CREATE, CMD.BO_WRITE, CMD.BO_READ, CMD.JOB_SUBMIT, CMD.JOB_WAIT]) expect(ids).toContain(op);
});

test('BO data round-trips in chunks; memory is accounted; ENOMEM names the sizes', async () => {
  const h = await bo(200000);
  const data = new Uint8Array(200000).map((_, i) => (i * 7) & 0xff);
  await write(h, data);
  expect(await readAll(h, data.length)).toEqual(data);
  expect((await req(CMD.DEV_GET, { devIndex: 0 }))[0].memUsed).toBe(200000);
  await expect(req(CMD.BO_CREATE, { devIndex: 0, boSize: 64 << 20 })).rejects.toMatchObject({
    errno: 12, extack: { msg: 'cannot allocate 67108864 bytes on accel0: 200000 of 67108864 in use' } });
  await expect(req(CMD.BO_WRITE, { boHandle: h, boOffset: 199999, data: new Uint8Array(2) }))
    .rejects.toMatchObject({ errno: 22, extack: { msg: expect.stringMatching(/exceeds BO/) } });
  await expect(req(CMD.BO_WRITE, { boHandle: 999, data: new Uint8Array(1) })).rejects.toMatchObject({ errno: 2 });
  await req(CMD.BO_DESTROY, { boHandle: h });
  expect((await req(CMD.DEV_GET, { devIndex: 0 }))[0].memUsed).toBe(0);
});

test('a non-admin uid may hold only its share of host memory in BOs; admins only the host limit', async () => {
  t.d.engine.userLimit = 1 << 20;
  const user = (uid: number) => G.createClient({ serverPort: PORT, open: (onBatch) => G.openInproc(t.hub, { onBatch, uid }) });
  const [u1, u1b, u2] = [user(1000), user(1000), user(1001)];
  try {
    const h = await bo(600000, 1, u1);
    // The same uid on another socket shares the limit; another uid has its own.
    await expect(req(CMD.BO_CREATE, { devIndex: 1, boSize: 600000 }, u1b)).rejects.toMatchObject({
      errno: 12, extack: { msg: 'cannot allocate 600000 bytes: uid 1000 holds 600000 of the 1048576 a non-admin user may' } });
    await bo(600000, 1, u2);
    await bo(2 << 20, 1); // root
    await req(CMD.BO_DESTROY, { boHandle: h }, u1);
    await bo(600000, 1, u1b);
  } finally {
    for (const x of [u1, u1b, u2]) x.close();
  }
});

/** Upload A and B (f32), run C = A*B over netlink, compare with a direct call. */
async function runF32(m: number, n: number, k: number, extra: Accel['gemm'] = {}) {
  const a = Float32Array.from({ length: m * k }, (_, i) => ((i * 37) % 17) - 8);
  const b = Float32Array.from({ length: k * n }, (_, i) => ((i * 11) % 13) - 6);
  const [ha, hb, hc] = [await bo(a.byteLength), await bo(b.byteLength), await bo(m * n * 4)];
  await write(ha, new Uint8Array(a.buffer));
  await write(hb, new Uint8Array(b.buffer));
  const [s] = await req(CMD.JOB_SUBMIT, { devIndex: 0, gemm: { m, n, k, dtype: 'f32', aHandle: ha, bHandle: hb, cHandle: hc, ...extra } });
  const [w] = await req(CMD.JOB_WAIT, { jobId: s.jobId, timeoutMs: 10000 });
  const want = gemm({ dtype: 'f32', m, n, k, a, b, c: new Float32Array(m * n) });
  return { job: w.job![0], got: new Float32Array((await readAll(hc, m * n * 4)).buffer), want, handles: [ha, hb, hc] };
}

test('a GEMM job computes what the engine computes directly, and reports status, duration and flops', async () => {
  const { job, got, want } = await runF32(33, 17, 29);
  // Kept for job-get, the finished job holds no views of its BOs' memory: a destroyed BO's memory
  // must not stay alive in the history of up to 1024 jobs.
  const kept = t.d.engine.jobs.get(job.id!)!;
  expect([kept.desc, kept.bos]).toEqual([undefined, []]);
  expect(job).toMatchObject({ status: 'done', error: 0, flops: 2 * 33 * 17 * 29, devIndex: 0 });
  expect(job.durationNs).toBeGreaterThan(0);
  expect(got).toEqual(want);
});

test('a dimension of 0 is a job, as in BLAS: m or n = 0 computes nothing, k = 0 gives C = beta * C; an ld of 0 is refused', async () => {
  const [ha, hb, hc] = [await bo(64), await bo(64), await bo(64)];
  for (const [m, n, k] of [[0, 3, 2], [3, 0, 2], [0, 0, 0]]) {
    const [s] = await req(CMD.JOB_SUBMIT, { devIndex: 0, gemm: { m, n, k, dtype: 'f32', aHandle: ha, bHandle: hb, cHandle: hc } });
    const job = (await req(CMD.JOB_WAIT, { jobId: s.jobId, timeoutMs: 10000 }))[0].job![0];
    expect({ m, n, k, status: job.status, error: job.error, message: job.message }).toEqual({ m, n, k, status: 'done', error: 0, message: undefined });
  }
  // k = 0 (no A or B elements read): C = beta * C.
  await write(hc, new Uint8Array(Float32Array.from([1, 2, 3, 4]).buffer));
  const beta = new Uint8Array(new Float64Array([0.5]).buffer);
  const [s] = await req(CMD.JOB_SUBMIT, { devIndex: 0, gemm: { m: 2, n: 2, k: 0, dtype: 'f32', aHandle: ha, bHandle: hb, cHandle: hc, beta } });
  const [w] = await req(CMD.JOB_WAIT, { jobId: s.jobId, timeoutMs: 10000 });
  expect(w.job![0]).toMatchObject({ status: 'done', error: 0 });
  expect([...new Float32Array((await readAll(hc, 16)).buffer)]).toEqual([0.5, 1, 1.5, 2]);
  await expect(req(CMD.JOB_SUBMIT, { devIndex: 0, gemm: { m: 2, n: 2, k: 0, dtype: 'f32', aHandle: ha, bHandle: hb, cHandle: hc, lda: 0 } }))
    .rejects.toMatchObject({ errno: 22, extack: { msg: 'operand A: lda 0 is below 1, the least an ld may be' } });
});

test('descriptor validation: out-of-range operand named, misaligned offset, unknown BO, missing dims', async () => {
  const [ha, hb, hc] = [await bo(64), await bo(64), await bo(64)];
  const g = { m: 4, n: 4, k: 4, dtype: 'f32' as const, aHandle: ha, bHandle: hb, cHandle: hc };
  await expect(req(CMD.JOB_SUBMIT, { devIndex: 0, gemm: { ...g, k: 5 } })).rejects.toMatchObject({
    errno: 22, extack: { msg: 'operand A out of range: 4x5 with ld 5 needs 80 bytes at offset 0, BO 1 has 64' } });
  await expect(req(CMD.JOB_SUBMIT, { devIndex: 0, gemm: { ...g, cOffset: 2 } })).rejects.toMatchObject({
    errno: 22, extack: { msg: 'operand C: offset 2 is not aligned to 4 bytes' } });
  await expect(req(CMD.JOB_SUBMIT, { devIndex: 0, gemm: { ...g, bHandle: 77 } })).rejects.toMatchObject({ errno: 2, extack: { msg: 'operand B: no BO 77' } });
  await expect(req(CMD.JOB_SUBMIT, { devIndex: 0, gemm: { n: 4, k: 4, dtype: 'f32', aHandle: ha, bHandle: hb, cHandle: hc } }))
    .rejects.toMatchObject({ errno: 22, extack: { missType: 1 } });
  await expect(req(CMD.JOB_SUBMIT, { devIndex: 1, gemm: g })).rejects.toMatchObject({ errno: 22, extack: { msg: 'BO 1 lives on accel0, not accel1' } });
});

test('completion arrives on the jobs group for subscribers', async () => {
  await req(CMD.SUBSCRIBE, { group: 'jobs' });
  const ev = new Promise<Accel>((res) => c.onEvent((m) => { if (m.cmd === CMD.JOB_NTF) res(read(m)); }));
  const { job } = await runF32(8, 8, 8);
  expect((await ev).job![0]).toMatchObject({ id: job.id, status: 'done' });
});

test('a job is seen by its submitter\'s user and by admins only: job-get, job-wait, the job-get dump and job-ntf events', async () => {
  const as = (uid: number) => G.createClient({ serverPort: PORT, open: (onBatch) => G.openInproc(t.hub, { onBatch, uid }) });
  const nobody = as(65534), nobody2 = as(65534), other = as(1000);
  try {
    // Every client subscribes to the jobs group (unicast; root c too) and records the job ids of its events.
    const seen = new Map<G.Client, number[]>();
    for (const cl of [c, nobody, nobody2, other]) {
      await req(CMD.SUBSCRIBE, { group: 'jobs' }, cl);
      const ids: number[] = [];
      seen.set(cl, ids);
      cl.onEvent((m) => { if (m.cmd === CMD.JOB_NTF) ids.push(read(m).job![0].id!); });
    }
    const submitAs = async (cl: G.Client) => {
      const [ha, hb, hc] = [await bo(16, 0, cl), await bo(16, 0, cl), await bo(16, 0, cl)];
      const [r] = await req(CMD.JOB_SUBMIT, { devIndex: 0, gemm: { m: 2, n: 2, k: 2, dtype: 'f32', aHandle: ha, bHandle: hb, cHandle: hc } }, cl);
      await req(CMD.JOB_WAIT, { jobId: r.jobId, timeoutMs: 10000 }, cl);
      return r.jobId!;
    };
    const rootJob = await submitAs(c), nobodyJob = await submitAs(nobody), otherJob = await submitAs(other);
    // Events are flushed with the answers; a round trip on each client settles what it was sent.
    for (const cl of [c, nobody, nobody2, other]) await req(CMD.DEV_GET, { devIndex: 0 }, cl);
    expect(seen.get(c)).toEqual([rootJob, nobodyJob, otherJob]); // an admin sees every job
    expect(seen.get(nobody)).toEqual([nobodyJob]);
    expect(seen.get(nobody2)).toEqual([nobodyJob]); // the same user's other socket (job wait from another process)
    expect(seen.get(other)).toEqual([otherJob]);
    // job-get and job-wait: the same rule, another user's job is ENOENT "no job N".
    for (const [cl, id] of [[nobody, rootJob], [nobody, otherJob], [other, nobodyJob]] as const) {
      await expect(req(CMD.JOB_GET, { jobId: id }, cl)).rejects.toMatchObject({ errno: 2, extack: { msg: `no job ${id}` } });
      await expect(req(CMD.JOB_WAIT, { jobId: id }, cl)).rejects.toMatchObject({ errno: 2, extack: { msg: `no job ${id}` } });
    }
    expect((await req(CMD.JOB_GET, { jobId: nobodyJob }, nobody2))[0].job![0]).toMatchObject({ id: nobodyJob, status: 'done', uid: 65534 });
    // An admin sees every job, and whose it is.
    expect((await req(CMD.JOB_GET, { jobId: otherJob }))[0].job![0]).toMatchObject({ id: otherJob, uid: 1000 });
    expect((await req(CMD.JOB_GET, { jobId: rootJob }))[0].job![0]).toMatchObject({ id: rootJob, uid: 0 });
    const listed = async (cl: G.Client) => {
      const out: number[] = [];
      for await (const m of cl.dump(fam.id, CMD.JOB_GET, { fill: put({}) })) out.push(read(m).job![0].id!);
      return out;
    };
    expect(await listed(nobody2)).toEqual([nobodyJob]);
    expect(await listed(c)).toEqual([rootJob, nobodyJob, otherJob]);
  } finally {
    for (const cl of [nobody, nobody2, other]) cl.close();
  }
});

test('an uncorrectable HBM error inside a queued job\'s BO fails it with EIO; a fatal error holds new jobs until reset', async () => {
  const [h2a, h2b, h2c] = [await bo(64), await bo(64), await bo(64)];
  const g2 = { m: 2, n: 2, k: 2, dtype: 'f32' as const, aHandle: h2a, bHandle: h2b, cHandle: h2c };
  // Submit and break it in the same tick, before the queue runs (as in one netlink datagram).
  const eng = t.d.engine;
  const dev = t.d.rt.emu.devices.get(0)!;
  const op = (handle: number) => ({ handle, offset: 0, ld: 2 });
  const j = submit(eng, dev, { m: 2, n: 2, k: 2, dtype: 'f32', transA: false, transB: false, alpha: 1, beta: 0,
    a: op(h2a), b: op(h2b), c: op(h2c) }, me(), 0);
  const addr = lookupBo(eng, h2b, me())!.addr + 8n;
  inject(t.d.rt.emu, dev, { block: 'hbm', severity: 'uncorrectable-nonfatal', address: addr });
  const [w2] = await req(CMD.JOB_WAIT, { jobId: j.id, timeoutMs: 5000 });
  expect(w2.job![0]).toMatchObject({ status: 'failed', error: 5, message: `uncorrectable HBM error at 0x${addr.toString(16)} in BO ${h2b}` });
  await req(CMD.RAS_INJECT, { devIndex: 0, block: 'compute-core', severity: 'uncorrectable-fatal' });
  await expect(req(CMD.JOB_SUBMIT, { devIndex: 0, gemm: g2 })).rejects.toMatchObject({ errno: 16, extack: { msg: 'device accel0 needs a reset' } });
  await req(CMD.DEV_SET, { devIndex: 0, action: 'reset' });
  await new Promise((r) => setTimeout(r, 30));
  const [s3] = await req(CMD.JOB_SUBMIT, { devIndex: 0, gemm: g2 });
  expect((await req(CMD.JOB_WAIT, { jobId: s3.jobId, timeoutMs: 5000 }))[0].job![0].status).toBe('done');
});

test('a fatal error fails the running job; a job past its timeout is cancelled and reported', async () => {
  const eng = t.d.engine;
  const dev = t.d.rt.emu.devices.get(0)!;
  const [a, b, cc] = [await bo(64), await bo(64), await bo(64)];
  const op = (handle: number) => ({ handle, offset: 0, ld: 2 });
  const r = { m: 2, n: 2, k: 2, dtype: 'f32' as const, transA: false, transB: false, alpha: 1, beta: 0, a: op(a), b: op(b), c: op(cc) };
  const j1 = submit(eng, dev, r, me(), 0);
  eng.running.set(0, j1); j1.status = 'running'; // as if the engine had started it
  eng.queues.get(0)!.splice(0);
  inject(t.d.rt.emu, dev, { block: 'dma', severity: 'uncorrectable-fatal' });
  expect(j1).toMatchObject({ status: 'failed', error: 5, message: 'device accel0 needs a reset' });
  eng.running.delete(0);
  await req(CMD.DEV_SET, { devIndex: 0, action: 'reset' });
  await new Promise((res) => setTimeout(res, 30));
  // Hold the queue with a running job, so the next one waits past its 20 ms timeout.
  const hold = submit(eng, dev, r, me(), 0);
  eng.queues.get(0)!.splice(0); eng.running.set(0, hold); hold.status = 'running';
  const [s] = await req(CMD.JOB_SUBMIT, { devIndex: 0, gemm: { m: 2, n: 2, k: 2, dtype: 'f32', aHandle: a, bHandle: b, cHandle: cc }, timeoutMs: 20 });
  const [w] = await req(CMD.JOB_WAIT, { jobId: s.jobId, timeoutMs: 5000 });
  expect(w.job![0]).toMatchObject({ status: 'timeout', error: 110, message: 'job exceeded its 20 ms timeout' });
  eng.running.delete(0);
  await expect(req(CMD.JOB_WAIT, { jobId: hold.id, timeoutMs: 30 })).rejects.toMatchObject({ errno: 110, extack: { msg: `job ${hold.id} still running after 30 ms` } });
});

test('unknown jobs are ENOENT with a message', async () => {
  await expect(req(CMD.JOB_WAIT, { jobId: 12345 })).rejects.toMatchObject({ errno: 2, extack: { msg: 'no job 12345' } });
});

test('BOs belong to their port: other ports cannot see them, and they are freed when the port goes away', async () => {
  const other = t.client();
  await other.resolve('accel');
  const h = await bo(4096, 0, other);
  await expect(req(CMD.BO_WRITE, { boHandle: h, data: new Uint8Array(4) })).rejects.toMatchObject({ errno: 2 });
  expect((await req(CMD.DEV_GET, { devIndex: 0 }))[0].memUsed).toBe(4096);
  other.close();
  t.d.served.sweeper.run();
  expect((await req(CMD.DEV_GET, { devIndex: 0 }))[0].memUsed).toBe(0);
});

test('the worker pool runs jobs too (2 threads), with the same result', async () => {
  c.close(); t.d.close();
  t = boot(2); c = t.client(); fam = await c.resolve('accel');
  const { job, got, want } = await runF32(128, 96, 64);
  expect(job.status).toBe('done');
  expect(got).toEqual(want);
});

test('the first BO starts the compute workers, so they compile while the client uploads; no BO, no workers', async () => {
  c.close(); t.d.close();
  t = boot(2); c = t.client(); fam = await c.resolve('accel');
  const pool = t.d.engine.pool!;
  await req(CMD.DEV_GET, { devIndex: 0 });
  expect(pool.workers).toBe(0);
  await bo(4096);
  expect(pool.workers).toBe(2);
  await pool.warm(); // the daemon's warm-up, already under way: resolves when it is done
  const { job, got, want } = await runF32(64, 32, 16);
  expect(job.status).toBe('done');
  expect(got).toEqual(want);
  expect(pool.workers).toBe(2);
});

test('bo-get lists every BO that exists all through it, while others\' BOs are freed between its chunks (finding M6)', async () => {
  // An admin's bo-get of 2000 BOs spans about 40 datagrams, several turns of the server's dump
  // pump (8 datagrams a turn). BOs already listed are freed while it runs: a cursor by position
  // then skipped as many of the BOs not yet listed.
  const other = t.client();
  await other.resolve('accel');
  const theirs: number[] = [];
  for (let i = 0; i < 2000; i++) theirs.push(await bo(4096, 0, other));
  const kept = await Promise.all([0, 1, 2].map(() => bo(4096, 1)));
  const seen: Accel[] = [];
  let freed = false;
  for await (const m of c.dump(fam.id, CMD.BO_GET)) {
    seen.push(read(m));
    if (!freed) {
      freed = true;
      // The first 300 of theirs, listed already (the first turn's datagrams hold about 480).
      await Promise.all(theirs.slice(0, 300).map((h) => req(CMD.BO_DESTROY, { boHandle: h }, other)));
    }
  }
  const listed = seen.map((r) => `${r.bo![0].owner}:${r.bo![0].handle}`);
  expect(new Set(listed).size).toBe(listed.length); // none twice
  for (const h of theirs.slice(300)) expect(listed).toContain(`${other.port}:${h}`);
  for (const h of kept) expect(listed).toContain(`${c.port}:${h}`);
  expect(listed.length).toBeGreaterThanOrEqual(1700 + kept.length);
  other.close();
});

test('freed BO memory serves the next BO of its size, zeroed: another client never sees the old bytes', async () => {
  const eng = t.d.engine;
  const h = await bo(200000);
  await write(h, new Uint8Array(200000).fill(0xa5));
  await req(CMD.BO_DESTROY, { boHandle: h });
  expect(eng.memory.bytes).toBe(200000); // kept, not dropped
  const other = t.client();
  await other.resolve('accel');
  const before = eng.memory.reused;
  const h2 = await bo(200000, 0, other);
  expect(eng.memory.reused).toBe(before + 1);
  expect(eng.memory.bytes).toBe(0);
  const seen = eng.bos.get([...eng.bos.keys()].pop()!)!;
  expect(seen.handle).toBe(h2);
  expect(new Uint8Array(seen.mem).every((x) => x === 0)).toBe(true);
  // A size nobody freed gets fresh memory.
  const fresh = eng.memory.fresh;
  await bo(200001, 0, other);
  expect(eng.memory.fresh).toBe(fresh + 1);
  other.close();
});

test('BO memory a compute worker may still write (its job failed or timed out, the worker runs on) is never reused', async () => {
  const eng = t.d.engine;
  const dev = t.d.rt.emu.devices.get(0)!;
  const [a, b, cc] = [await bo(64), await bo(64), await bo(64)];
  const op = (handle: number) => ({ handle, offset: 0, ld: 2 });
  const j = submit(eng, dev, { m: 2, n: 2, k: 2, dtype: 'f32', transA: false, transB: false, alpha: 1, beta: 0, a: op(a), b: op(b), c: op(cc) }, me(), 0);
  eng.queues.get(0)!.splice(0); eng.running.set(0, j); j.status = 'timeout'; // settled, its worker not yet done
  const kept = eng.memory.bytes;
  await req(CMD.BO_DESTROY, { boHandle: cc });
  expect(eng.memory.bytes).toBe(kept); // C is not kept for reuse
  eng.running.delete(0);
  await req(CMD.BO_DESTROY, { boHandle: a });
  expect(eng.memory.bytes).toBe(kept + 64);
});

test('kept BO memory stays under its limit, and gives way to allocations under the host limit', () => {
  const m = newBoMemory(300);
  giveMemory(m, new SharedArrayBuffer(100));
  giveMemory(m, new SharedArrayBuffer(200));
  giveMemory(m, new SharedArrayBuffer(150)); // drops the oldest (100), then the 200
  expect([...m.spare.keys()]).toEqual([150]);
  expect(m.bytes).toBe(150);
  giveMemory(m, new SharedArrayBuffer(400)); // over the limit on its own: not kept
  expect(m.bytes).toBe(150);
  const x = takeMemory(m, 150);
  expect(x.byteLength).toBe(150);
  expect(m.bytes).toBe(0);
  // The engine: with kept memory in the way of the host limit, the kept memory goes.
  const eng = t.d.engine;
  const dev = t.d.rt.emu.devices.get(1)!;
  const saved = eng.hostLimit;
  eng.hostLimit = eng.hostUsed + (3 << 20);
  try {
    const b1 = createBo(eng, dev, 2 << 20, 1);
    freeBo(eng, b1);
    expect(eng.memory.bytes).toBe(2 << 20);
    const b2 = createBo(eng, dev, 2 << 20 | 8, 1); // 2 MiB + 8 kept + 2 MiB + 8 new > 3 MiB
    expect(eng.memory.bytes).toBe(0);
    freeBo(eng, b2);
  } finally { eng.hostLimit = saved; }
});

test('bo-write: data and more-data parts land one after another; a part past the end fails the whole write, naming that part', async () => {
  const h = await bo(200000);
  const data = new Uint8Array(200000).map((_, i) => (i * 31 + (i >> 9)) & 0xff);
  const writes = boWrites(h, data);
  expect(writes.length).toBe(2);
  for (const w of writes) await req(CMD.BO_WRITE, w);
  expect(await readAll(h, data.length)).toEqual(data);

  // 1000 + 3 × 60000 + 19001 from offset 0 of a 200000-byte BO: the last part crosses the end.
  const h2 = await bo(200000);
  const parts: number[] = [];
  const fill = (n: number, x: number) => new Uint8Array(n).fill(x);
  const err = await c.request(fam.id, CMD.BO_WRITE, { fill: (w) => {
    writeAttrs(w, spec, 'accel', { boHandle: h2, boOffset: 0, data: fill(1000, 1) });
    for (const n of [60000, 60000, 60000, 19001]) { parts.push(w.len); A.putBytes(w, ACCEL.MORE_DATA, fill(n, 2)); }
  } }).catch((e) => e);
  expect(err).toMatchObject({ errno: 22, extack: { msg: `write of 200001 bytes at offset 0 exceeds BO ${h2}'s 200000 bytes`, offset: parts[3] } });
  expect((await readAll(h2, 200000)).every((x) => x === 0)).toBe(true); // nothing landed

  // more-data alone is not a write.
  await expect(req(CMD.BO_WRITE, { boHandle: h2, moreData: [fill(10, 3)] })).rejects.toMatchObject({ errno: 22, extack: { missType: ACCEL.DATA } });
});
