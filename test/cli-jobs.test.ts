// accel job run / submit and bo write / read against a real daemon, results checked against a
// direct call to the compute engine.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { gemm } from '../compute';
import { createBo, finish, startDaemon, submit, type Daemon } from '../device';
import { runAccel } from './helpers/cli';

const PORT = 0x414a0000 + (process.pid & 0xfff);
let d: Daemon;
let dir: string;
beforeAll(() => {
  d = startDaemon({ port: PORT, tick: false, computeThreads: 0 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-cli-jobs-'));
});
afterAll(() => { d.close(); fs.rmSync(dir, { recursive: true, force: true }); });

const accel = (...args: string[]) => runAccel(args, { port: PORT });

test('job run: files in, C out, equal to the engine called directly; buffers freed', async () => {
  const [m, n, k] = [7, 5, 3];
  const a = Float32Array.from({ length: m * k }, (_, i) => i - 4);
  const b = Float32Array.from({ length: k * n }, (_, i) => (i % 3) - 1);
  fs.writeFileSync(path.join(dir, 'a.bin'), new Uint8Array(a.buffer));
  fs.writeFileSync(path.join(dir, 'b.bin'), new Uint8Array(b.buffer));
  const out = path.join(dir, 'c.bin');
  const r = await accel('-j', 'job', 'run', 'accel0', 'm', '7', 'n', '5', 'k', '3', 'alpha', '2', 'a', path.join(dir, 'a.bin'), 'b', path.join(dir, 'b.bin'), 'out', out);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const job = Object.values(JSON.parse(r.stdout).job)[0] as { status: string; flops: number; uid: number };
  expect(job).toMatchObject({ status: 'done', flops: 2 * m * n * k, uid: process.getuid!() }); // whose job it is
  const want = gemm({ dtype: 'f32', m, n, k, a, b, c: new Float32Array(m * n), alpha: 2 });
  expect(new Float32Array(new Uint8Array(fs.readFileSync(out)).buffer)).toEqual(want);
  expect(d.engine.bos.size).toBe(0);
});

test('job run maps its BOs (bo-map) where it can, and uses bo-write and bo-read where it cannot', async () => {
  const [m, n, k] = [64, 40, 24];
  const a = Float32Array.from({ length: m * k }, (_, i) => (i % 9) - 4);
  const b = Float32Array.from({ length: k * n }, (_, i) => (i % 5) - 2);
  const c0 = Float32Array.from({ length: m * n }, (_, i) => i % 3);
  for (const [f, x] of [['ma', a], ['mb', b], ['mc', c0]] as const) fs.writeFileSync(path.join(dir, f), new Uint8Array(x.buffer));
  const want = gemm({ dtype: 'f32', m, n, k, a, b, c: Float32Array.from(c0), beta: 1 });
  const args = ['job', 'run', 'accel0', 'm', `${m}`, 'n', `${n}`, 'k', `${k}`, 'beta', '1', 'a', path.join(dir, 'ma'), 'b', path.join(dir, 'mb'), 'c', path.join(dir, 'mc')];
  // Mapped; no shm addon in the CLI; and a daemon that refuses bo-map with an errno (its memfd
  // cannot be made: ENOMEM), where job run must still run, on bo-write and bo-read.
  const real = d.engine.shm!;
  const cases = [[{}, 3, false], [{ ACCELNL_SHM: path.join(dir, 'no-such-addon.node') }, 0, false], [{}, 0, true]] as const;
  for (const [env, fetched, refuse] of cases) {
    const sent = d.maps.sent;
    const out = path.join(dir, `mout${fetched}${refuse}`);
    if (refuse) d.engine.shm = { ...real, create: () => { throw new Error('memfd_create: ENOMEM'); } };
    const r = await runAccel([...args, 'out', out], { port: PORT, env }).finally(() => { d.engine.shm = real; });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(new Float32Array(new Uint8Array(fs.readFileSync(out)).buffer)).toEqual(want);
    expect(d.maps.sent - sent).toBe(fetched); // A, B and C fetched, or none
  }
  expect(d.engine.bos.size).toBe(0);
});

test('job run: an output path that cannot be written fails at once, before anything is sent (F5)', async () => {
  const a = path.join(dir, 'f5a'), b = path.join(dir, 'f5b');
  fs.writeFileSync(a, new Uint8Array(4 * 4));
  fs.writeFileSync(b, new Uint8Array(4 * 4));
  const run = (out: string) => accel('job', 'run', 'accel0', 'm', '2', 'n', '2', 'k', '2', 'a', a, 'b', b, 'out', out);
  const jobsBefore = d.engine.nextJob, bosBefore = d.engine.nextBo;
  for (const [out, why] of [[path.join(dir, 'no/such/dir/c'), 'ENOENT'], [dir, 'EISDIR']]) {
    const r = await run(out);
    expect(r).toMatchObject({ code: 1, stdout: '' });
    expect(r.stderr).toMatch(new RegExp(`^cannot write ${out.replace(/[/.]/g, '\\$&')}: ${why}`));
  }
  // Nothing was created on the daemon: no buffer object, no job.
  expect([d.engine.nextJob, d.engine.nextBo]).toEqual([jobsBefore, bosBefore]);
  // A writable existing file is replaced whole (opened first without truncating, truncated at the end).
  const out = path.join(dir, 'f5c');
  fs.writeFileSync(out, new Uint8Array(100).fill(7));
  const r = await run(out);
  expect(r).toMatchObject({ code: 0, stderr: '' });
  expect(fs.readFileSync(out)).toEqual(Buffer.alloc(16));
});

test('batch: bo create, write, submit, wait, read in one connection', async () => {
  const a = new Float64Array([1, 2, 3, 4]);
  const b = new Float64Array([5, 6, 7, 8]);
  fs.writeFileSync(path.join(dir, 'a64'), new Uint8Array(a.buffer));
  fs.writeFileSync(path.join(dir, 'b64'), new Uint8Array(b.buffer));
  const batch = [
    'bo create accel1 size 32', 'bo create accel1 size 32', 'bo create accel1 size 32',
    `bo write 1 file ${path.join(dir, 'a64')}`, `bo write 2 file ${path.join(dir, 'b64')}`,
    'job submit accel1 m 2 n 2 k 2 dtype f64 a 1 b 2 c 3', 'job wait 1',
    `bo read 3 file ${path.join(dir, 'c64')}`,
  ].join('\n');
  const f = path.join(dir, 'batch');
  fs.writeFileSync(f, batch + '\n');
  const r = await accel('-b', f);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(Array.from(new Float64Array(new Uint8Array(fs.readFileSync(path.join(dir, 'c64'))).buffer))).toEqual([19, 22, 43, 50]);
});

test('errors: operand out of range is named, bad syntax exits 2', async () => {
  fs.writeFileSync(path.join(dir, 'small'), new Uint8Array(8));
  // The daemon names the operand that does not fit its buffer object...
  fs.writeFileSync(path.join(dir, 'short.batch'), 'bo create accel0 size 8\nbo create accel0 size 64\nbo create accel0 size 64\njob submit accel0 m 4 n 4 k 4 a 1 b 2 c 3\n');
  const r = await accel('-b', path.join(dir, 'short.batch'));
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/^Error: operand A out of range: 4x4 with ld 4 needs 64 bytes at offset 0, BO \d+ has 8\./);
  // ... and job run checks its files against the shape before sending anything.
  expect(await accel('job', 'run', 'accel0', 'm', '4', 'n', '4', 'k', '4', 'a', path.join(dir, 'small'), 'b', path.join(dir, 'small'), 'out', path.join(dir, 'x')))
    .toEqual({ code: 2, stdout: '', stderr: `Invalid a "${path.join(dir, 'small')}": 8 bytes, but A as 4x4 f32 takes 64 bytes.\n` });
  const s = await accel('job', 'run', 'accel0', 'm', '4', 'a', 'x');
  expect(s.code).toBe(2);
  expect(s.stderr).toMatch(/"n" is needed/);
  // Numbers beyond what the field holds are usage errors, not wrapped to 0.
  const big = '18446744073709551616';
  expect(await accel('bo', 'write', '1', 'file', path.join(dir, 'small'), 'offset', big))
    .toEqual({ code: 2, stdout: '', stderr: `Invalid offset "${big}": out of range, offset is from 0 to 9007199254740991 bytes.\n` });
  expect(await accel('bo', 'read', '1', 'file', path.join(dir, 'y'), 'size', big)).toMatchObject({ code: 2, stdout: '' });
  expect(await accel('bo', 'create', 'accel0', 'size', big))
    .toEqual({ code: 2, stdout: '', stderr: `Invalid size "${big}": out of range, size is from 0 to 18446744073709551615 bytes.\n` });
  expect(await accel('bo', 'create', 'accel0', 'size', '18446744073709551615')).toEqual({ code: 1, stdout: '',
    stderr: 'Error: cannot allocate 18446744073709551615 bytes: one BO holds at most 1073741824.\ndaemon answers: Cannot allocate memory\n' });
  const huge = await accel('job', 'run', 'accel0', 'm', '4294967295', 'n', '4294967295', 'k', '4294967295',
    'a', path.join(dir, 'small'), 'b', path.join(dir, 'small'), 'out', path.join(dir, 'x'));
  expect(huge).toEqual({ code: 2, stdout: '', stderr: `Invalid a "${path.join(dir, 'small')}": 8 bytes, but A as 4294967295x4294967295 f32 takes 73786976260478468100 bytes.\n` });
  expect(await accel('job', 'run', 'accel0', 'm', '2', 'n', '2', 'k', '2', 'alpha', '', 'a', 'x', 'b', 'x', 'out', 'y'))
    .toMatchObject({ code: 2, stderr: 'Invalid alpha "": expected a number.\n' });
  // A negative number is a number out of range, and says so (it used to say "expected a number").
  expect(await accel('job', 'show', '-1')).toEqual({ code: 2, stdout: '', stderr: 'Invalid job id "-1": out of range, job id is from 0 to 4294967295.\n' });
  expect(await accel('job', 'show', 'abc')).toMatchObject({ code: 2, stderr: 'Invalid job id "abc": expected a number.\n' });
  // A file of two bo-write requests that runs past the BO's end: refused before a byte lands.
  fs.writeFileSync(path.join(dir, 'big'), new Uint8Array(199680).fill(7));
  fs.writeFileSync(path.join(dir, 'empty'), new Uint8Array(0));
  fs.writeFileSync(path.join(dir, 'over'), `bo create accel0 size 199680\nbo write 1 file ${path.join(dir, 'big')} offset 1\n`
    + `bo read 1 file ${path.join(dir, 'over.out')}\n`);
  const over = await accel('-force', '-b', path.join(dir, 'over'));
  expect(over.stderr).toMatch(/^Error: write of 4680 bytes at offset 195001 exceeds BO 1's 199680 bytes\./);
  expect(fs.readFileSync(path.join(dir, 'over.out'))).toEqual(Buffer.alloc(199680));
  // An empty file to a BO that does not exist is an error too.
  expect((await accel('bo', 'write', '99', 'file', path.join(dir, 'empty'))).stderr).toMatch(/^Error: no BO 99\./);
  fs.writeFileSync(path.join(dir, 'past'), 'bo create accel0 size 16\nbo read 1 file /dev/null offset 17\n');
  expect((await accel('-b', path.join(dir, 'past'))).stderr).toMatch(/^Error: offset 17 is past the end of BO 1 \(16 bytes\)\./m);
  // The batch run's BOs belonged to its (exited) process: the sweeper frees them.
  d.served.sweeper.run();
  expect(d.engine.bos.size).toBe(0);
});

test('job wait outlasts the client\'s 3 s silence timeout; with a timeout, a clear error when the job is still running', async () => {
  // A job that runs until this test finishes it (held as the device's running job).
  const eng = d.engine;
  const dev = d.rt.emu.devices.get(0)!;
  const owner = 0x7fff0001;
  const [a, b, c] = [0, 1, 2].map(() => createBo(eng, dev, 64, owner).handle);
  const op = (handle: number) => ({ handle, offset: 0, ld: 2 });
  const j = submit(eng, dev, { m: 2, n: 2, k: 2, dtype: 'f32', transA: false, transB: false, alpha: 1, beta: 0, a: op(a), b: op(b), c: op(c) }, owner, 0);
  eng.queues.get(0)!.splice(0); eng.running.set(0, j); j.status = 'running';
  try {
    const limited = await accel('job', 'wait', String(j.id), 'timeout', '3500');
    expect(limited).toEqual({ code: 1, stdout: '', stderr: `Error: job ${j.id} did not finish within 3500 ms.\ndaemon answers: Connection timed out\n` });
    const waiting = accel('-j', 'job', 'wait', String(j.id));
    await new Promise((r) => setTimeout(r, 3500));
    finish(eng, j, 'done', 0, '');
    const r = await waiting;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(Object.values(JSON.parse(r.stdout).job)[0]).toMatchObject({ status: 'done' });
  } finally {
    eng.running.delete(0);
    if (j.status === 'running') finish(eng, j, 'cancelled', 0, 'test over');
  }
}, 20000);
