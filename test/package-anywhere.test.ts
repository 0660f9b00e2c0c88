// A checkout runs from anywhere: the daemon and the CLI started in a directory outside the repo
// find the native addon relative to themselves (never the cwd), so the daemon reads sender
// credentials (admin ops are served to root, refused to nobody by uid, not to everyone) and the
// CLI sends large uploads on the native backend. (test/package.test.ts does the same from the
// installed tarball.)
import { type ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { bundleForNobody, nobodyUnavailable } from './helpers/nobody';
import { ACCEL, REPO, type Run, asRoot, itIf, publicDir, run } from './helpers/wrap';

const PORT = 0x415d0000 + (process.pid & 0xfff);
let dir: string;
let daemon: ChildProcess;
let ready = '';

beforeAll(async () => {
  await require('../bin/build.js').build();
  dir = publicDir('accelnl-anywhere-');
  fs.chmodSync(dir, 0o777);  // nobody writes its job output here too
  daemon = spawn(process.execPath, [ACCEL, '--port', String(PORT), 'daemon'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`daemon not ready: ${ready}`)), 20000);
    daemon.stdout!.on('data', (d) => { ready += d; if (/ready/.test(ready)) { clearTimeout(t); resolve(); } });
    daemon.stderr!.on('data', (d) => { ready += d; });
  });
}, 60000);

afterAll(() => {
  daemon?.kill('SIGINT');
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const accel = (...args: string[]): Promise<Run> => run(process.execPath, [ACCEL, '--port', String(PORT), ...args], { cwd: dir, timeoutMs: 60000 });

/** Files A (ones) and B (twos) for an n x n x n GEMM, and the job-run arguments that use them. */
function gemmArgs(n: number, tag: string): string[] {
  const a = path.join(dir, `a-${tag}.f32`), b = path.join(dir, `b-${tag}.f32`);
  fs.writeFileSync(a, new Float32Array(n * n).fill(1), { mode: 0o644 });
  fs.writeFileSync(b, new Float32Array(n * n).fill(2), { mode: 0o644 });
  return ['job', 'run', 'accel0', 'm', String(n), 'n', String(n), 'k', String(n), 'a', a, 'b', b, 'out', path.join(dir, `c-${tag}.f32`)];
}

function checkC(tag: string, n: number): void {
  const bytes = fs.readFileSync(path.join(dir, `c-${tag}.f32`));
  const c = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  expect(c.length).toBe(n * n);
  expect(c.every((x) => x === 2 * n)).toBe(true);
}

test('the library loads the addon relative to itself, whatever the cwd', async () => {
  const r = await run(process.execPath, ['-e', `console.log(require(${JSON.stringify(path.join(REPO, 'dist/index.js'))}).nativeStatus().file)`], { cwd: dir });
  expect(r).toMatchObject({ code: 0, stdout: `${path.join(REPO, 'genl/native/build/Release/accelnl_sock.node')}\n` });
});

test('as root, from outside the repo: the daemon serves admin ops, the CLI uploads 256 KiB', async () => {
  expect(ready).toMatch(/^accel daemon ready: NETLINK_USERSOCK port/);
  expect(await accel('dev', 'show')).toMatchObject({ code: 0, stderr: '' });
  const inject = await accel('ras', 'inject', 'accel0', 'block', 'hbm', 'severity', 'correctable');
  if (!asRoot) {
    // Not root: the daemon refuses this user by its credentials, with EPERM (not "no credentials").
    expect(inject.code).toBe(1);
    expect(inject.stderr).toMatch(/Operation not permitted/);
  } else {
    expect(inject).toMatchObject({ code: 0, stderr: '' });
  }
  expect(await accel(...gemmArgs(256, 'root'))).toMatchObject({ code: 0, stderr: '' });
  checkC('root', 256);
}, 60000);

itIf(nobodyUnavailable())('as nobody: reads and uploads work, admin ops are refused by uid', async () => {
  const b = bundleForNobody('bin/main.ts');
  try {
    const nobody = async (...args: string[]): Promise<Run> => {
      const r = await b.run(['--port', String(PORT), ...args], {}, { timeoutMs: 60000 });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    expect(await nobody('dev', 'show')).toMatchObject({ code: 0, stderr: '' });
    const inject = await nobody('ras', 'inject', 'accel0', 'block', 'hbm', 'severity', 'correctable');
    expect(inject.code).toBe(1);
    expect(inject.stderr).toMatch(/Operation not permitted/);
    expect(await nobody(...gemmArgs(256, 'nobody'))).toMatchObject({ code: 0, stderr: '' });
    checkC('nobody', 256);
  } finally {
    b.dispose();
  }
}, 60000);
