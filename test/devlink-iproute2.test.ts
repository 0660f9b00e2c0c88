// The stock iproute2 `devlink` binary against the daemon, through `accel wrap` (the preload shim
// redirects its NETLINK_GENERIC socket to the daemon's port): dev show, dev info, health show,
// diagnose, dump show, dump clear, recover, test, each in text and -j, `devlink monitor` showing
// health events, and the admin ops refused (EPERM) when nobody runs them. What it prints is compared
// with the device model and with iproute2's output shapes for a real device (docs/devlink.md).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { type Daemon, startDaemon } from '../device';
import { type NobodyBundle, bundleForNobody } from './helpers/nobody';
import { runAccel, startAccel } from './helpers/cli';

const DEVLINK = ['/usr/sbin/devlink', '/sbin/devlink', '/usr/bin/devlink'].find((p) => fs.existsSync(p));
/** Where `accel wrap` looks for the shim (bin/wrap.ts): $ACCELNL_SHIM, else shim/build/ of the checkout. */
const SHIM = process.env.ACCELNL_SHIM ?? path.resolve(__dirname, '../shim/build/accelnl_shim.so');
const why = !DEVLINK ? 'the iproute2 devlink binary is not installed (package iproute2)'
  : !fs.existsSync(SHIM) ? `the preload shim ${SHIM} is not built (node shim/build.js)` : undefined;
if (why) console.warn(`devlink through accel wrap: skipped: ${why}`);
const describe_ = why ? describe.skip : describe;

const PORT = 0x41440000 + (process.pid & 0xffff);
const A = 'pci/0000:03:00.0';
const B = 'pci/0000:04:00.0';

let d: Daemon;
beforeAll(() => { d = startDaemon({ port: PORT, tick: false }); });
afterAll(() => d?.close());

/** `accel wrap --port PORT -- devlink ARGS...` */
const devlink = (...args: string[]) => runAccel(['wrap', '--port', String(PORT), '--', 'devlink', ...args], { timeoutMs: 20000 });
const ok = async (...args: string[]) => {
  const r = await devlink(...args);
  expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: '' });
  return r.stdout;
};
const json = async (...args: string[]) => JSON.parse(await ok('-j', ...args));
const dev = () => d.rt.emu.devices.get(0)!;

describe_('stock devlink through accel wrap', () => {
  test('dev show: one handle per device, bus "pci" and the PCI address; -j nests under "dev"', async () => {
    expect(await ok('dev', 'show')).toBe(`${A}\n${B}\n`);
    expect(await ok('dev', 'show', A)).toBe(`${A}\n`);
    expect(await json('dev', 'show')).toEqual({ dev: { [A]: {}, [B]: {} } });
    const r = await devlink('dev', 'show', 'pci/0000:99:00.0');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/No such device/);
  });

  test('dev info: driver, serial numbers and versions as the model holds them', async () => {
    const m = dev();
    const text = await ok('dev', 'info', A);
    expect(text.split('\n').slice(0, 5)).toEqual([`${A}:`, `  driver ${m.driver}`, `  serial_number ${m.serial}`,
      `  board.serial_number ${m.boardSerial}`, '  versions:']);
    expect(text).toContain(`running:\n        fw ${m.versions.running.fw}\n`);
    expect(await json('dev', 'info', A)).toEqual({ info: { [A]: {
      driver: m.driver, serial_number: m.serial, 'board.serial_number': m.boardSerial,
      versions: { fixed: m.versions.fixed, running: m.versions.running, stored: m.versions.stored },
    } } });
    expect(Object.keys((await json('dev', 'info')).info)).toEqual([A, B]);
  });

  test('health show: every reporter of every device; -j arrays under "health"', async () => {
    const text = await ok('health', 'show');
    expect(text.split('\n').slice(0, 3)).toEqual([`${A}:`, '  reporter fw',
      '    state healthy error 0 recover 0 grace_period 0 auto_recover false auto_dump true']);
    const j = await json('health', 'show');
    expect(Object.keys(j.health)).toEqual([A, B]);
    expect(j.health[A].map((r: { reporter: string }) => r.reporter)).toEqual(['fw', 'mem', 'pcie', 'thermal', 'core']);
    expect(j.health[A][1]).toEqual({ reporter: 'mem', state: 'healthy', error: 0, recover: 0, grace_period: 500, auto_recover: true, auto_dump: true });
    expect(await json('health', 'show', B, 'reporter', 'thermal')).toEqual({ health: { [B]: [
      { reporter: 'thermal', state: 'healthy', error: 0, recover: 0, grace_period: 500, auto_recover: true, auto_dump: true }] } });
  });

  test('diagnose: pairs typed as a driver puts them (numbers, booleans, strings)', async () => {
    expect(await ok('health', 'diagnose', A, 'reporter', 'mem'))
      .toBe(' state: healthy device_state: operational last_error: none rows_active: 0 rows_pending: 0 bad_pages: 0 rma: false\n');
    expect(await json('health', 'diagnose', A, 'reporter', 'mem'))
      .toEqual({ state: 'healthy', device_state: 'operational', last_error: 'none', rows_active: 0, rows_pending: 0, bad_pages: 0, rma: false });
    const r = await devlink('health', 'diagnose', A, 'reporter', 'nope');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no reporter "nope"[\s\S]*Invalid argument/);
  });

  test('test, dump show, dump clear, recover (text and -j) change the model as they do a real reporter', async () => {
    const fw = () => dev().reporters.get('fw')!;
    expect(await ok('health', 'test', A, 'reporter', 'fw')).toBe('');
    expect([fw().healthy, fw().errCount]).toEqual([false, 1n]);
    expect((await ok('-j', 'health', 'test', A, 'reporter', 'fw')).trim()).toBe(''); // -j prints an empty line
    expect(fw().errCount).toBe(2n);
    const show = await ok('health', 'show', A, 'reporter', 'fw');
    expect(show).toMatch(/^pci\/0000:03:00\.0:\n {2}reporter fw\n {4}state error error 2 recover 0 last_dump_date \d{4}-\d\d-\d\d last_dump_time \d\d:\d\d:\d\d grace_period 0/);
    const dump = await ok('health', 'dump', 'show', A, 'reporter', 'fw');
    expect(dump).toMatch(/^ reporter: fw error_count: 1 state: error device_state: operational last_error: test error fw: 1\.4\.2/);
    expect(await json('health', 'dump', 'show', A, 'reporter', 'fw')).toMatchObject({ reporter: 'fw', error_count: 1, state: 'error', last_error: 'test error' });
    expect(await ok('health', 'dump', 'clear', A, 'reporter', 'fw')).toBe('');
    expect(fw().dump).toBeUndefined();
    expect((await json('health', 'show', A, 'reporter', 'fw')).health[A][0]).not.toHaveProperty('last_dump_date');
    expect((await ok('-j', 'health', 'dump', 'clear', A, 'reporter', 'fw')).trim()).toBe('');
    expect(await ok('health', 'recover', A, 'reporter', 'fw')).toBe('');
    expect([fw().healthy, fw().recoverCount]).toEqual([true, 1n]);
    expect((await ok('-j', 'health', 'recover', A, 'reporter', 'fw')).trim()).toBe('');
    expect((await json('health', 'show', A, 'reporter', 'fw')).health[A][0]).toMatchObject({ state: 'healthy', error: 2, recover: 2 });
  });

  test('health set: grace period, auto_recover, auto_dump reach the model; show reads them back', async () => {
    expect(await ok('health', 'set', B, 'reporter', 'core', 'grace_period', '1234', 'auto_recover', 'false', 'auto_dump', 'false')).toBe('');
    const r = d.rt.emu.devices.get(1)!.reporters.get('core')!;
    expect([r.gracePeriodMs, r.autoRecover, r.autoDump]).toEqual([1234, false, false]);
    expect((await json('health', 'show', B, 'reporter', 'core')).health[B][0]).toMatchObject({ grace_period: 1234, auto_recover: false, auto_dump: false });
    expect(await ok('health', 'set', B, 'reporter', 'core', 'grace_period', '500', 'auto_recover', 'true', 'auto_dump', 'true')).toBe('');
  });

  test('monitor: reporter state changes arrive as [health,status] lines; -j as "mon" entries', async () => {
    for (const j of [false, true]) {
      const mon = startAccel(['wrap', '--port', String(PORT), '--', 'devlink', ...(j ? ['-j'] : []), 'monitor', 'health']);
      try {
        // The subscription cannot be observed from here: report errors until the first event shows.
        // (fw does not auto-recover, so every test is one more error event.)
        for (let i = 0; i < 40 && !/health/.test(mon.stdout()); i++) {
          await ok('health', 'test', B, 'reporter', 'fw');
          await new Promise((r) => setTimeout(r, 250));
        }
        await mon.waitFor(j ? /"command":"status","health":\{"pci\/0000:04:00\.0":\[\{"reporter":"fw","state":"error","error":\d+,"recover":\d+/
          : /\[health,status\] pci\/0000:04:00\.0:\n {2}reporter fw\n {4}state error error \d+ recover \d+/);
        // A recovery is an event too. (iproute2 leaves out a handle equal to the previous line's.)
        await ok('health', 'recover', B, 'reporter', 'fw');
        await mon.waitFor(j ? /"reporter":"fw","state":"healthy","error":\d+,"recover":\d+/ : /\[health,status\].*\n? *reporter fw\n {4}state healthy error \d+ recover \d+/);
      } finally {
        await mon.stop('SIGTERM');
      }
    }
  });

  // Admin ops as a user without CAP_NET_ADMIN: the CLI bundled into a world-readable directory
  // (the checkout may be root-only) with a copy of the shim.
  const root = process.getuid?.() === 0 && spawnSync('runuser', ['--version']).status === 0;
  if (!root) console.warn('devlink as nobody through accel wrap: skipped (needs root and runuser)');
  (root ? test : test.skip)('as nobody: show and info work; set, recover, diagnose, dump, clear and test get EPERM', async () => {
    let b: NobodyBundle | undefined;
    try {
      b = bundleForNobody('bin/main.ts');
      fs.copyFileSync(SHIM, path.join(b.dir, 'shim.so'));
      fs.chmodSync(path.join(b.dir, 'shim.so'), 0o755);
      const env = { ACCELNL_SHIM: path.join(b.dir, 'shim.so') };
      const run = (...args: string[]) => b!.run(['wrap', '--port', String(PORT), '--', DEVLINK!, ...args], env);
      const shown = await run('health', 'show', A, 'reporter', 'fw');
      expect({ status: shown.status, stderr: shown.stderr }).toEqual({ status: 0, stderr: '' });
      expect(shown.stdout).toMatch(/reporter fw/);
      expect((await run('-j', 'dev', 'info', A)).status).toBe(0);
      const before = dev().reporters.get('fw')!.errCount;
      for (const args of [['set', A, 'reporter', 'fw', 'grace_period', '10'], ['recover', A, 'reporter', 'fw'],
        ['diagnose', A, 'reporter', 'fw'], ['dump', 'show', A, 'reporter', 'fw'], ['dump', 'clear', A, 'reporter', 'fw'],
        ['test', A, 'reporter', 'fw']]) {
        const r = await run('health', ...args);
        expect({ args, status: r.status, perm: /Operation not permitted/.test(r.stderr) }).toEqual({ args, status: 1, perm: true });
      }
      expect(dev().reporters.get('fw')!.errCount).toBe(before);
    } finally {
      b?.dispose();
    }
  }, 60000);
});

// The kernel's own ynl CLI with our spec (docs/netlink/specs/devlink.yaml), through accel wrap: the
// spec decodes what the daemon sends. (ynl's unified model matches replies by the request's cmd, so
// `--dump get`, whose replies carry DEVLINK_CMD_NEW as the kernel's do, is left out here as it
// would be against a kernel.)
const YNL = [path.resolve(__dirname, '../../shared/peers/ynl'), '/work/shared/peers/ynl'].find((d) => fs.existsSync(path.join(d, 'tools/net/ynl/pyynl/cli.py')));
const PY = '/usr/bin/python3';
const whyYnl = why ?? (!YNL ? 'the kernel ynl peer (../shared/peers/ynl) is absent'
  : spawnSync(PY, ['-c', 'import yaml, jsonschema']).status !== 0 ? `${PY} lacks python3-yaml or python3-jsonschema` : undefined);
if (whyYnl) console.warn(`ynl CLI with the devlink spec: skipped: ${whyYnl}`);
(whyYnl ? describe.skip : describe)('the kernel ynl CLI with docs/netlink/specs/devlink.yaml, through accel wrap', () => {
  const ynl = async (...args: string[]) => {
    const r = await runAccel(['wrap', '--port', String(PORT), '--', PY, path.join(YNL!, 'tools/net/ynl/pyynl/cli.py'),
      '--spec', path.resolve(__dirname, '../docs/netlink/specs/devlink.yaml'),
      '--schema', path.join(YNL!, 'Documentation/netlink/genetlink-legacy.yaml'), '--output-json', ...args], { timeoutMs: 30000 });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    return JSON.parse(r.stdout);
  };
  test('info-get and health-reporter-get decode to the model\'s values', async () => {
    const m = dev();
    const handle = { 'bus-name': 'pci', 'dev-name': '0000:03:00.0' };
    const info = await ynl('--do', 'info-get', '--json', JSON.stringify(handle));
    expect(info).toMatchObject({ ...handle, 'info-driver-name': m.driver, 'info-serial-number': m.serial,
      'info-version-running': Object.entries(m.versions.running).map(([k, v]) => ({ 'info-version-name': k, 'info-version-value': v })) });
    const r = m.reporters.get('thermal')!;
    const rep = await ynl('--do', 'health-reporter-get', '--json', JSON.stringify({ ...handle, 'health-reporter-name': 'thermal' }));
    expect(rep['health-reporter']).toMatchObject({ 'health-reporter-name': 'thermal', 'health-reporter-state': 0,
      'health-reporter-err-count': Number(r.errCount), 'health-reporter-graceful-period': r.gracePeriodMs });
    const all = await ynl('--dump', 'health-reporter-get');
    expect(all).toHaveLength(10);
  }, 60000);
});
