// The subscriber examples in docs/examples, built and run against a real daemon: C with
// libnl-genl and Python with pyroute2 (as root by multicast, as nobody through the subscribe op),
// and TypeScript with our client. The Debian packages they need come from .ci/packages.txt; missing ones skip.
import { type ChildProcess, spawn, spawnSync } from 'child_process';
import * as esbuild from 'esbuild';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { type Daemon, startDaemon } from '../device';
import { type AccelClient, connectAccel } from '../device/client';
import { CMD } from '../device/gen/accel';
import { missingPackages } from './helpers/apt';
import { ADDON_FILE, loadNative } from '../genl/native/load';

const PORT = 0x414a0000 + (process.pid & 0xfff);
const ROOT = path.resolve(__dirname, '..');
const EX = path.join(ROOT, 'docs/examples');
const missing = missingPackages(['libnl-genl-3-dev', 'pkg-config', 'gcc', 'python3-pyroute2']);
let d: Daemon;
let admin: AccelClient;
let dir: string;

beforeAll(async () => {
  d = startDaemon({ port: PORT, config: 'devices: [{}, {}]', tick: false });
  admin = await connectAccel({ serverPort: PORT });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'accel-examples-'));
  fs.chmodSync(dir, 0o755); // nobody runs what is built here
});
afterAll(() => { admin.close(); d.close(); fs.rmSync(dir, { recursive: true, force: true }); });

/**
 * Start an example, wait for its "subscribed" line, inject errors that log three events, and
 * collect what it printed. The first injection logs two records (the error and the row it
 * retired), whose notifications share one datagram: every example must walk all its messages.
 */
let runs = 0;
async function runExample(cmd: string[], asNobody = false): Promise<string[]> {
  const argv = asNobody ? ['runuser', '-u', 'nobody', '--', 'env', `ACCEL_NL_PORT=${PORT}`, ...cmd] : cmd;
  const child: ChildProcess = spawn(argv[0], argv.slice(1), { cwd: ROOT, env: { ...process.env, ACCEL_NL_PORT: String(PORT) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout!.on('data', (b) => { out += b; });
  child.stderr!.on('data', (b) => { err += b; });
  const exited = new Promise<number | null>((r) => child.on('close', r));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
  try {
    const deadline = Date.now() + 10000;
    while (!out.includes('subscribed:')) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${cmd.join(' ')} did not subscribe: ${out}${err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    // A page not retired yet (a retired page is not retired again), so each run logs the row.
    await admin.do(CMD.RAS_INJECT, { devIndex: 1, block: 'hbm', severity: 'uncorrectable-nonfatal', address: 0x7700 + (runs++ << 12) });
    await admin.do(CMD.RAS_INJECT, { devIndex: 1, block: 'power', severity: 'correctable' });
    expect(await exited).toBe(0);
  } finally {
    clearTimeout(timer);
  }
  expect(err).toBe('');
  return out.trim().split('\n');
}

/** The three events logged, as every example prints them. */
function expectEvents(lines: string[], mode: 'multicast' | 'unicast'): void {
  expect(lines[0]).toMatch(new RegExp(`^subscribed: family accel id \\d+, group ras id \\d+, ${mode}$`));
  expect(lines).toHaveLength(4);
  const page = (runs - 1 + 7).toString(16);
  expect(lines[1]).toMatch(new RegExp(`^event dev=1 seq=\\d+ kind=error block=hbm severity=uncorrectable-nonfatal name=hbm address=0x${page}700$`));
  expect(lines[2]).toMatch(new RegExp(`^event dev=1 seq=\\d+ kind=row-retired block=hbm severity=uncorrectable-nonfatal name=hbm address=0x${page}000$`));
  expect(lines[3]).toMatch(/^event dev=1 seq=\d+ kind=error block=power severity=correctable name=power address=0x0$/);
  const seq = (l: string) => Number(/seq=(\d+)/.exec(l)![1]);
  expect([seq(lines[2]), seq(lines[3])]).toEqual([seq(lines[1]) + 1, seq(lines[1]) + 2]);
}

const maybe = missing ? test.skip : test;
if (missing) console.warn(`skipping the C and Python examples: ${missing}`);

maybe('C with libnl-genl: builds warning-free, receives by multicast as root and by the subscribe op as nobody', async () => {
  const bin = path.join(dir, 'accel_events');
  const cflags = spawnSync('pkg-config', ['--cflags', '--libs', 'libnl-genl-3.0'], { encoding: 'utf8' }).stdout.trim().split(/\s+/);
  const cc = spawnSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', bin, path.join(EX, 'accel_events.c'), ...cflags], { encoding: 'utf8' });
  expect(cc.stderr).toBe('');
  expect(cc.status).toBe(0);
  expectEvents(await runExample([bin, '3']), 'multicast');
  expectEvents(await runExample([bin, '3'], true), 'unicast');
});

maybe('Python with pyroute2: multicast as root, the subscribe op as nobody', async () => {
  const script = path.join(dir, 'accel_events.py');
  fs.copyFileSync(path.join(EX, 'accel_events.py'), script);
  fs.chmodSync(script, 0o644);
  expectEvents(await runExample(['/usr/bin/python3', script, '3']), 'multicast');
  expectEvents(await runExample(['/usr/bin/python3', script, '3'], true), 'unicast');
});

test('TypeScript with the client library', async () => {
  const js = path.join(dir, 'accel-events.js');
  esbuild.buildSync({ entryPoints: [path.join(EX, 'accel-events.ts')], bundle: true, platform: 'node', target: 'node20', outfile: js, external: ['netlink'], alias: { accelnl: path.join(ROOT, 'index.ts') }, logLevel: 'silent' });
  // A bundle finds the addon beside itself (genl/native/load.ts looks relative to the module, never the cwd).
  fs.copyFileSync(loadNative().file!, path.join(dir, ADDON_FILE));
  expectEvents(await runExample([process.execPath, js, '3']), 'multicast');
});

test('TypeScript GEMM job: BOs, upload, submit, wait, read back, the same bits as the engine in-process; as nobody too', async () => {
  const js = path.join(dir, 'gemm-job.js');
  esbuild.buildSync({ entryPoints: [path.join(EX, 'gemm-job.ts')], bundle: true, platform: 'node', target: 'node20', outfile: js, external: ['netlink'], alias: { accelnl: path.join(ROOT, 'index.ts') }, logLevel: 'silent' });
  fs.copyFileSync(loadNative().file!, path.join(dir, ADDON_FILE));
  fs.chmodSync(js, 0o644);
  fs.chmodSync(path.join(dir, ADDON_FILE), 0o644);
  for (const [n, asNobody] of [[96, false], [7, false], [33, true]] as const) {
    const argv = asNobody ? ['runuser', '-u', 'nobody', '--', 'env', `ACCEL_NL_PORT=${PORT}`, process.execPath, js, String(n)] : [process.execPath, js, String(n)];
    // Not spawnSync: the daemon runs in this process, and must answer meanwhile.
    const child = spawn(argv[0], argv.slice(1), { cwd: dir, env: { ...process.env, ACCEL_NL_PORT: String(PORT) }, stdio: ['ignore', 'pipe', 'pipe'] });
    const r = { stdout: '', stderr: '', status: null as number | null };
    child.stdout!.on('data', (b) => { r.stdout += b; });
    child.stderr!.on('data', (b) => { r.stderr += b; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
    r.status = await new Promise<number | null>((res) => child.on('close', res));
    clearTimeout(timer);
    expect({ n, status: r.status, stderr: r.stderr }).toEqual({ n, status: 0, stderr: '' });
    expect(r.stdout).toMatch(new RegExp(`^job \\d+ on accel0: done, ${n}x${n}x${n} f32 in [0-9.]+ ms, the same bits as the engine in this process\n$`));
  }
}, 60000);
