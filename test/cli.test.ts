// The accel binary, spawned, against a real daemon on a real NETLINK_USERSOCK port: every object
// and command in text and -j, abbreviations, device handles, batch mode, errors and exit codes.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { type Daemon, startDaemon } from '../device';
import { CMD } from '../device/gen/accel';
import { connectAccel } from '../device/client';
import { spawn } from 'child_process';
import { ACCEL, runAccel } from './helpers/cli';
import { bundleForNobody } from './helpers/nobody';
import { run } from './helpers/wrap';
import { loadNative } from '../genl/native/load';

const PORT = 0x41450000 + (process.pid & 0xfff);
const DEAD = 0x41460000 + (process.pid & 0xfff);
let d: Daemon;
beforeAll(async () => {
  await require('../bin/build.js').build(); // fresh bundle once, so spawned runs never rebuild it
  d = startDaemon({ port: PORT, config: 'devices: [{}, {}]', tick: false });
});
afterAll(() => d.close());

const accel = (...args: string[]) => runAccel(args, { port: PORT });
const json = async (...args: string[]): Promise<any> => {
  const r = await accel('-j', ...args);
  expect(r).toMatchObject({ code: 0, stderr: '' });
  return JSON.parse(r.stdout);
};

describe('dev', () => {
  test('show: one handle line per device, then indented key value lines', async () => {
    const r = await accel('dev', 'show');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      'pci/0000:03:00.0:\n' +
      '  name accel0 index 0 state operational health ok\n' +
      '  driver accelnl_emu vendor_id 0x1ded device_id 0xa100 path /dev/accel/accel0\n' +
      '  mem_total 17179869184 mem_used 0 compute_units 64\n' +
      'pci/0000:04:00.0:\n' +
      '  name accel1 index 1 state operational health ok\n' +
      '  driver accelnl_emu vendor_id 0x1ded device_id 0xa100 path /dev/accel/accel1\n' +
      '  mem_total 17179869184 mem_used 0 compute_units 64\n');
  });

  test('-j: one object keyed by section then handle; numbers are numbers', async () => {
    const j = await json('dev', 'show');
    expect(Object.keys(j)).toEqual(['dev']);
    expect(Object.keys(j.dev)).toEqual(['pci/0000:03:00.0', 'pci/0000:04:00.0']);
    expect(j.dev['pci/0000:04:00.0']).toMatchObject({ name: 'accel1', index: 1, state: 'operational', mem_total: 17179869184, compute_units: 64 });
    expect(j.dev['pci/0000:04:00.0'].stats).toBeUndefined();
    const p = await accel('-p', 'dev', 'show', 'accel0');
    expect(p.stdout).toMatch(/^\{\n {2}"dev": \{\n {4}"pci\/0000:03:00.0": \{/);
  });

  test('-s adds telemetry and memory health', async () => {
    const r = await accel('-s', 'dev', 'show', 'accel0');
    expect(r.stdout).toMatch(/\n {2}stats:\n {4}clock_mhz \d+ clock_max_mhz 1800 mem_clock_mhz 1600 temp_mc \d+ util_pct \d+\n {4}power_mw \d+ power_limit_mw 300000 energy_mj \d+ resets 0 throttle idle\n {4}rows_active 0 rows_pending 0 bad_pages 0 rma_threshold 64 rma false\n$/);
    const j = await json('-s', 'dev', 'show', '0');
    expect(j.dev['pci/0000:03:00.0'].stats).toMatchObject({ clock_max_mhz: 1800, throttle: ['idle'], rma: false });
  });

  test('devices by accelN, index, bus handle with and without pci/; abbreviations', async () => {
    const names = await Promise.all([['d', 'sh', 'accel1'], ['dev', 'show', '1'], ['dev', 'show', 'pci/0000:04:00.0'],
      ['de', 's', '0000:04:00.0'], ['dev', 'show', 'dev', 'accel1']].map(async (args) => {
      const r = await accel(...args);
      expect(r.code).toBe(0);
      return r.stdout.split('\n')[0];
    }));
    expect(names).toEqual(Array(5).fill('pci/0000:04:00.0:'));
  });

  test('info: driver, serials, versions grouped fixed/running/stored (text and JSON)', async () => {
    const r = await accel('dev', 'info', 'accel0');
    expect(r.stdout).toBe(
      'pci/0000:03:00.0:\n  driver accelnl_emu\n  serial_number ACNL00001EEF\n  board.serial_number BRD-ACNL00001EEF\n' +
      '  versions:\n      fixed:\n        asic.id 0xa100\n        asic.rev 1\n        board.id ACNL-EMU-1\n' +
      '      running:\n        fw 1.4.2\n        fw.mgmt 2.0.7\n        fw.bootloader 0.9.1\n' +
      '      stored:\n        fw 1.4.2\n        fw.mgmt 2.0.7\n');
    const j = await json('dev', 'info');
    expect(j.info['pci/0000:04:00.0']).toEqual({
      'driver': 'accelnl_emu', 'serial_number': 'ACNL00001EF0', 'board.serial_number': 'BRD-ACNL00001EF0',
      'versions': {
        fixed: { 'asic.id': '0xa100', 'asic.rev': '1', 'board.id': 'ACNL-EMU-1' },
        running: { 'fw': '1.4.2', 'fw.mgmt': '2.0.7', 'fw.bootloader': '0.9.1' },
        stored: { 'fw': '1.4.2', 'fw.mgmt': '2.0.7' },
      },
    });
  });

  test('set offline/online/reset, add and del', async () => {
    expect(await accel('dev', 'set', 'accel1', 'offline')).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect((await json('dev', 'show', 'accel1')).dev['pci/0000:04:00.0'].state).toBe('offline');
    // Refused because of the state, and saying so.
    expect(await accel('dev', 'set', 'accel1', 'reset')).toEqual({ code: 1, stdout: '', stderr: 'Error: device accel1 is offline.\ndaemon answers: No such device\n' });
    expect(await accel('health', 'recover', 'accel1', 'reporter', 'fw')).toMatchObject({ code: 1, stderr: expect.stringMatching(/^Error: device accel1 is offline\./) });
    expect((await accel('dev', 'set', 'accel1', 'action', 'online')).code).toBe(0);
    expect((await accel('dev', 'set', 'accel1', 'reset')).code).toBe(0);
    expect((await json('-s', 'dev', 'show', 'accel1')).dev['pci/0000:04:00.0'].stats.resets).toBe(1);

    const add = await accel('dev', 'add', 'index', '7', 'bus', '0000:0b:00.0', 'memory', '32GiB', 'compute_units', '128');
    expect(add.code).toBe(0);
    expect(add.stdout).toMatch(/^pci\/0000:0b:00.0:\n {2}name accel7 index 7 state operational health ok\n.*\n {2}mem_total 34359738368 mem_used 0 compute_units 128\n$/);
    expect((await accel('dev', 'del', 'accel7')).code).toBe(0);
    // Index 8's own slot (0000:0b:00.0) given to another device: index 8 takes the next free one.
    expect((await accel('dev', 'add', 'index', '9', 'bus', '0000:0b:00.0')).code).toBe(0);
    expect((await accel('dev', 'add', 'index', '8')).stdout).toMatch(/^pci\/0000:0c:00.0:\n {2}name accel8 index 8 /);
    for (const x of ['accel8', 'accel9']) expect((await accel('dev', 'del', x)).code).toBe(0);
    expect(Object.keys((await json('dev')).dev)).toHaveLength(2);
  });
});

describe('ras', () => {
  test('inject prints the records it made; show lists non-zero counters (all with -s); log reads them back', async () => {
    const inj = await accel('ras', 'inject', 'accel1', 'block', 'hbm', 'severity', 'uncorrectable-nonfatal', 'address', '0x4000', 'syndrome', 'beef');
    expect(inj.code).toBe(0);
    const lines = inj.stdout.split('\n');
    expect(lines[0]).toBe('pci/0000:04:00.0:');
    expect(lines[1]).toMatch(/^ {2}seq \d+ date \d{4}-\d\d-\d\d time \d\d:\d\d:\d\d\.\d{6} kind error block hbm severity uncorrectable-nonfatal error_id 1 error_name hbm count 1 address 0x4000 syndrome beef action restart-app$/);
    expect(lines[2]).toMatch(/kind row-retired block hbm .* address 0x4000 action reset-device$/);

    const show = await accel('r', 's', 'accel1');
    expect(show.stdout).toMatch(/^pci\/0000:04:00.0:\n {2}name accel1 rows_active 0 rows_pending 1 bad_pages 1 rma_threshold 64 rma false next_seq \d+\n {2}block hbm severity uncorrectable-nonfatal volatile 1 aggregate 1\n$/);
    const all = await accel('-s', 'ras', 'show', 'accel1');
    expect(all.stdout.split('\n').filter((l) => l.startsWith('  block '))).toHaveLength(44);
    expect(all.stdout).toContain('  bad_page 0x4000\n');

    const j = await json('ras', 'show', 'accel1');
    const r = j.ras['pci/0000:04:00.0'];
    expect(r.counters.hbm['uncorrectable-nonfatal']).toEqual({ volatile: 1, aggregate: 1 });
    expect(r.counters.sram.correctable).toEqual({ volatile: 0, aggregate: 0 });
    expect(r).toMatchObject({ rows_pending: 1, bad_page: ['0x4000'] });

    const log = await json('ras', 'log', 'accel1', 'from', '1', 'limit', '2');
    const ev = log.log['pci/0000:04:00.0'];
    expect(ev).toHaveLength(2);
    expect(ev[0]).toMatchObject({ kind: 'error', block: 'hbm', address: '0x4000', syndrome: 'beef' });
    expect(typeof ev[0].ts_ns).toBe('string'); // u64 above 2^53: a string
    expect(typeof ev[0].seq).toBe('number');
    const text = await accel('ras', 'log', 'accel1');
    expect(text.stdout.split('\n').filter((l) => l.startsWith('  seq '))).toHaveLength(2);
  });

  test('clear zeroes volatile counters; clear aggregate zeroes lifetime ones', async () => {
    await accel('ras', 'inject', 'accel0', 'block', 'dma', 'severity', 'deferred', 'count', '3');
    expect((await json('ras', 'show', 'accel0')).ras['pci/0000:03:00.0'].counters.dma.deferred).toEqual({ volatile: 3, aggregate: 3 });
    expect((await accel('ras', 'clear', 'accel0')).code).toBe(0);
    expect((await json('ras', 'show', 'accel0')).ras['pci/0000:03:00.0'].counters.dma.deferred).toEqual({ volatile: 0, aggregate: 3 });
    expect((await accel('ras', 'clear', 'accel0', 'aggregate')).code).toBe(0);
    expect((await json('ras', 'show', 'accel0')).ras['pci/0000:03:00.0'].counters.dma.deferred).toEqual({ volatile: 0, aggregate: 0 });
  });
});

describe('health', () => {
  test('show: devlink health show lines and JSON (array per handle)', async () => {
    const r = await accel('health', 'show', 'accel0');
    expect(r.stdout.split('\n').slice(0, 5)).toEqual([
      'pci/0000:03:00.0:',
      '  reporter fw',
      '    state healthy error 0 recover 0 grace_period 0 auto_recover false auto_dump true',
      '  reporter mem',
      '    state healthy error 0 recover 0 grace_period 500 auto_recover true auto_dump true',
    ]);
    const j = await json('health', 'show', 'accel0', 'reporter', 'pcie');
    expect(j).toEqual({ health: { 'pci/0000:03:00.0': [
      { reporter: 'pcie', state: 'healthy', error: 0, recover: 0, grace_period: 500, auto_recover: true, auto_dump: true }] } });
    expect(Object.keys((await json('health')).health)).toHaveLength(2);
  });

  test('set, test, recover, diagnose, dump show and clear', async () => {
    // fw: no test injects firmware errors, so its counts are this test's own.
    // The range is the daemon's policy (the spec's max), checked by the CLI before sending: a usage error.
    expect(await accel('health', 'set', 'accel0', 'reporter', 'fw', 'grace_period', '18446744073709551615')).toEqual({
      code: 2, stdout: '', stderr: 'Invalid grace_period "18446744073709551615": out of range, grace_period is from 0 to 9007199254740991.\n' });
    const c = await connectAccel({ serverPort: PORT });
    try {
      // What the CLI refuses, the daemon's policy refuses too, in the kernel's words.
      const e = await c.do(CMD.HEALTH_SET, { devIndex: 0, reporterName: 'fw', gracePeriodMs: 2n ** 53n }).catch((x) => x);
      expect([e.errno, e.extack.msg]).toEqual([34, 'integer out of range']);
    } finally { c.close(); }
    expect(await accel('ras', 'inject', 'accel0', 'block', 'hbm', 'severity', 'correctable', 'syndrome', 'ab'.repeat(257))).toEqual({
      code: 2, stdout: '', stderr: 'Invalid syndrome: 257 bytes, at most 256.\n' });
    expect((await accel('health', 'set', 'accel0', 'reporter', 'fw', 'grace_period', '0', 'auto_recover', 'false', 'auto_dump', 'true')).code).toBe(0);
    expect((await accel('health', 'test', 'accel0', 'reporter', 'fw')).code).toBe(0);
    let fw = (await json('health', 'show', 'accel0', 'reporter', 'fw')).health['pci/0000:03:00.0'][0];
    expect(fw).toMatchObject({ state: 'error', error: 1, recover: 0, grace_period: 0, auto_recover: false });
    expect(fw.last_dump_date).toMatch(/^\d{4}-\d\d-\d\d$/);
    expect((await accel('he', 'rec', 'accel0', 'rep', 'fw')).code).toBe(0);
    fw = (await json('health', 'show', 'accel0', 'reporter', 'fw')).health['pci/0000:03:00.0'][0];
    expect(fw).toMatchObject({ state: 'healthy', error: 1, recover: 1 });

    const diag = await accel('health', 'diagnose', 'accel0', 'reporter', 'fw');
    expect(diag.stdout).toBe('pci/0000:03:00.0:\n  reporter fw\n    state healthy\n    device_state operational\n' +
      '    last_error test error\n    fw 1.4.2\n    fw.mgmt 2.0.7\n    fw.bootloader 0.9.1\n');
    const dj = await json('health', 'diagnose', 'accel0', 'reporter', 'fw');
    expect(dj.diagnose['pci/0000:03:00.0'].fw).toMatchObject({ 'state': 'healthy', 'fw.mgmt': '2.0.7' });

    // -j types the pairs as devlink -j does (test/devlink-iproute2: numbers, booleans, the rest strings).
    expect((await json('health', 'diagnose', 'accel0', 'reporter', 'mem')).diagnose['pci/0000:03:00.0'].mem)
      .toEqual({ state: 'healthy', device_state: 'operational', last_error: 'none', rows_active: 0, rows_pending: 0, bad_pages: 0, rma: false });
    const thermal = (await json('health', 'diagnose', 'accel0', 'reporter', 'thermal')).diagnose['pci/0000:03:00.0'].thermal;
    expect([typeof thermal.power_mw, thermal.throttle]).toEqual(['number', expect.stringMatching(/^0x[0-9a-f]+$/)]);

    const dump = await json('health', 'dump', 'show', 'accel0', 'reporter', 'fw');
    expect(dump.dump['pci/0000:03:00.0'].fw).toMatchObject({ error_count: 1, state: 'error' });
    expect(dump.dump['pci/0000:03:00.0'].fw.reporter).toBeUndefined(); // the heading names it, once
    const dt = await accel('health', 'dump', 'show', 'accel0', 'reporter', 'fw');
    expect(dt.stdout.match(/reporter fw/g)).toHaveLength(1);
    expect((await accel('health', 'dump', 'clear', 'accel0', 'reporter', 'fw')).code).toBe(0);
    expect((await json('health', 'show', 'accel0', 'reporter', 'fw')).health['pci/0000:03:00.0'][0].last_dump_date).toBeUndefined();
  });
});

test('caps, job and bo: output where the daemon serves them, a clear error where it does not', async () => {
  const c = await connectAccel({ serverPort: PORT });
  const served = (cmd: number) => c.family.ops.some((o) => o.id === cmd);
  const cases: [number, string[], RegExp][] = [
    [CMD.CAPS_GET, ['caps', 'show'], /^pci\/0000:03:00.0:\n {2}formats .*\n {2}features /],
    [CMD.JOB_GET, ['job', 'show'], /^(job \d+:\n.*\n)*$/],
    [CMD.BO_GET, ['bo', 'show'], /^(bo \d+\/\d+:\n.*\n)*$/],
  ];
  for (const [cmd, args, ok] of cases) {
    const r = await accel(...args);
    if (served(cmd)) expect(r).toMatchObject({ code: 0, stdout: expect.stringMatching(ok) });
    else expect(r).toEqual({ code: 1, stdout: '', stderr: expect.stringMatching(new RegExp(`^Error: "${args.join(' ')}" is not supported by this daemon \\(it does not serve [a-z-]+\\)\\.\\n$`)) });
  }
  c.close();
});

test('ras show/log format FORMAT: the payload in that format, where the daemon serves formats', async () => {
  const c = await connectAccel({ serverPort: PORT });
  const served = c.family.ops.some((o) => o.id === CMD.CAPS_GET);
  c.close();
  await accel('ras', 'inject', 'accel0', 'block', 'soc-fabric', 'severity', 'correctable');
  const r = await accel('ras', 'show', 'accel0', 'format', 'json');
  if (!served) { expect(r.code).toBe(1); return; }
  expect(r.stdout).toMatch(/^pci\/0000:03:00.0:\n {2}format json payload \{.*\}\n$/);
  const j = await json('ras', 'show', 'format', 'json');
  expect(Object.keys(j.ras)).toEqual(['pci/0000:03:00.0', 'pci/0000:04:00.0']);
  expect(j.ras['pci/0000:03:00.0'][0].format).toBe('json');
  expect(typeof j.ras['pci/0000:03:00.0'][0].payload).toBe('object');
  const cbor = await json('ras', 'log', 'accel0', 'format', 'cbor');
  expect(cbor.log['pci/0000:03:00.0'][0]).toMatchObject({ format: 'cbor', payload: expect.stringMatching(/^[0-9a-f]+$/) });
  expect((await accel('ras', 'show', 'accel0', 'format', 'nope')).code).toBe(2);
});

test('ras inject folded by the storm limiter says so, with the window\'s record so far (F6)', async () => {
  const port = PORT + 0x100;
  const sd = startDaemon({ port, config: 'storm: { burst: 2, interval-ms: 600000 }\ndevices: [{}]', tick: false });
  try {
    const inject = (...o: string[]) => runAccel([...o, 'ras', 'inject', 'accel0', 'block', 'sram', 'severity', 'correctable'], { port });
    for (let i = 1; i <= 2; i++) expect((await inject()).stdout).toMatch(new RegExp(`^pci/0000:03:00.0:\n {2}seq ${i} .*kind error block sram`));
    const t = await inject();
    expect(t).toMatchObject({ code: 0, stderr: '' });
    expect(t.stdout).toMatch(/^pci\/0000:03:00.0:\n {2}folded into the storm window \(its storm-overflow record is logged when the window closes\):\n {2}date \S+ time \S+ kind storm-overflow block sram .* folded 1 first_ts_ns \d+ last_ts_ns \d+\n$/);
    const j = JSON.parse((await inject('-j')).stdout).inject['pci/0000:03:00.0'];
    expect(j).toEqual([expect.objectContaining({ kind: 'storm-overflow', block: 'sram', folded: 2 })]);
    expect(j[0].seq).toBeUndefined();
  } finally {
    sd.close();
  }
});

test('family list and get, like genl ctrl (text and JSON)', async () => {
  const list = await accel('family', 'list');
  expect(list.stdout).toMatch(/^Name: nlctrl\n\tID: 0x10 {2}Version: 0x2 {2}header size: 0 {2}max attribs: \d+ \n\tcommands supported: \n\t\t#1: {2}ID-0x3 \n/);
  expect(list.stdout).toMatch(/\nName: accel\n\tID: 0x[0-9a-f]+ {2}Version: 0x1 /);
  expect(list.stdout).toMatch(/\tmulticast groups:\n\t\t#1: {2}ID-0x[0-9a-f]+ {2}name: config\n\t\t#2: {2}ID-0x[0-9a-f]+ {2}name: ras\n/);
  const get = await accel('-s', 'fam', 'get', 'name', 'accel');
  expect(get.stdout).toMatch(/#1: {2}ID-0x1 {2}dev-get\n\t\t Capabilities \(0xe\):\n\t\t can doit; can dumpit; has policy\n/);
  const j = await json('family', 'get', 'accel');
  expect(j.family.accel.ops[0]).toEqual({ id: 1, name: 'dev-get', flags: 14 });
  expect(j.family.accel.mcast_groups).toHaveProperty('ras');
  // The devlink and drm-ras op names come from their generated modules, loaded on first use.
  expect((await json('family', 'get', 'devlink')).family.devlink.ops[0]).toEqual({ id: 1, name: 'get', flags: expect.any(Number) });
  expect((await json('family', 'get', 'drm-ras')).family['drm-ras'].ops.map((o: { name: string }) => o.name)).toContain('list-nodes');
  const byId = await json('family', 'get', 'id', '0x10');
  expect(Object.keys(byId.family)).toEqual(['nlctrl']);
  const none = await accel('family', 'get', 'nosuch');
  expect(none).toEqual({ code: 1, stdout: '', stderr: 'Error: no family "nosuch".\ndaemon answers: No such file or directory\n' });
  expect((await accel('family', 'get', 'id', '99')).stderr).toMatch(/^Error: no family with id 99\./);
});

describe('server', () => {
  test('show: the counters move with what the daemon answered (text and JSON)', async () => {
    const before = (await json('server', 'show')).server;
    expect(await accel('dev', 'show', 'accel9')).toMatchObject({ code: 1 }); // one ENODEV
    const after = (await json('server')).server;
    expect(after.datagrams).toBeGreaterThan(before.datagrams);
    expect(after.errors).toBe(before.errors + 1);
    expect(after.rejected.ENODEV).toBe((before.rejected.ENODEV ?? 0) + 1);
    expect(after).toMatchObject({ dumps_running: 0, backlog_ports: 0, dropped: 0, raced_sends: 0 });
    expect(typeof after.unproven_sends).toBe('number');
    const text = await accel('server', 'show');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^server: datagrams \d+ messages \d+ errors \d+ truncated 0 malformed 0\n  dumps \d+ dumps_running 0 send_failures \d+ dropped 0 overruns 0 stalled 0\n  backlog_ports 0 backlog_datagrams 0 backlog_bytes 0 subscriptions \d+\n  raced_sends \d+ unproven_sends \d+ busy_poll_us 0 busy_polled 0\n  rejected (\w+ \d+ ?)*ENODEV \d+/);
    expect(await accel('server', 'show', 'extra')).toMatchObject({ code: 2, stdout: '' });
  });
});

describe('batch', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'accel-batch-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const file = (name: string, text: string): string => { const f = path.join(tmp, name); fs.writeFileSync(f, text); return f; };

  test('runs each line on one connection; comments and blank lines skipped', async () => {
    const f = file('ok', '# set things up\ndev show accel0\n\nras inject accel0 block pcie severity correctable\nhealth show accel0 reporter "pcie"\n');
    const r = await accel('-b', f);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^pci\/0000:03:00.0:\n {2}name accel0 .*[\s\S]*kind error block pcie[\s\S]*reporter pcie\n/);
  });

  test('stops at the first failure, naming file and line; -force goes on and still fails', async () => {
    const f = file('bad', 'dev show accel0\ndev show accel9\nras show accel0\n');
    const r = await accel('-batch', f);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`Error: no such device.\ndaemon answers: No such device\nCommand failed ${f}:2\n`);
    expect(r.stdout).not.toContain('rows_active');
    const forced = await accel('-force', '-batch', f);
    expect(forced.code).toBe(1);
    expect(forced.stdout).toContain('rows_active');
    const stdin = await runAccel(['-b', '-'], { port: PORT, input: 'dev show 1\n' });
    expect(stdin).toMatchObject({ code: 0, stdout: expect.stringMatching(/^pci\/0000:04:00.0:/) });
  });
});

describe('errors and help', () => {
  test('operation errors: extack message and errno text, exit 1', async () => {
    expect(await accel('dev', 'show', 'accel9')).toEqual({ code: 1, stdout: '', stderr: 'Error: no such device.\ndaemon answers: No such device\n' });
    expect((await json('health', 'show', 'accel0', 'reporter', 'th')).health['pci/0000:03:00.0'][0].reporter).toBe('thermal'); // abbreviated
    expect(await accel('health', 'recover', 'accel0', 'reporter', 'bogus')).toEqual({
      code: 1, stdout: '', stderr: 'Error: no reporter "bogus" (fw, mem, pcie, thermal, core).\ndaemon answers: No such file or directory\n' });
  });

  test('a reader that closes early (| head) ends the command quietly, exit 0', async () => {
    const c = await connectAccel({ serverPort: PORT });
    try {
      // Enough log for more output than a pipe holds (64 KiB), so the CLI is still writing when the reader goes.
      for (let i = 0; i < 2000; i += 100) {
        await Promise.all([...Array(100).keys()].map((j) => c.do(CMD.RAS_INJECT, { devIndex: 1, block: 'dma', severity: 'deferred', address: i + j })));
      }
    } finally {
      c.close();
    }
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [ACCEL, '-s', 'ras', 'log', 'accel1'], { env: { ...process.env, ACCEL_NL_PORT: String(PORT) } });
      let stderr = '';
      child.stderr.on('data', (b) => { stderr += b; });
      child.stdout.once('data', () => child.stdout.destroy()); // `head -1`
      child.on('close', (code) => resolve({ code, stderr }));
    });
    expect(r).toEqual({ code: 0, stderr: '' });
  });

  test('bad syntax: exit 2 with a message, never a stack trace', async () => {
    const cases: [string[], RegExp][] = [
      [['bogus'], /^Object "bogus" is unknown, try "accel help"\.\n$/],
      [['dev', 'frob'], /^Command "frob" is unknown, try "accel dev help"\.\n$/],
      [['dev', 'show', 'nonsense'], /^Invalid device "nonsense"/],
      [['ras', 'show', 'accel0', 'extra'], /^Unknown option "extra"/],
      [['--port', '', 'dev', 'show'], /^Invalid port "": expected a decimal or 0x-hex number/],
      [['--port', 'abc', 'dev', 'show'], /^Invalid port "abc"/],
      [['ras', 'show', 'accel0', 'accel1'], /^Unknown option "accel1"/],
      [['dev', 'set', 'accel0'], /^Command line is not complete: an action is needed\.\nUsage: accel dev show/],
      [['ras', 'inject', 'accel0', 'block', 'nope', 'severity', 'correctable'], /^Invalid block "nope": expected one of hbm, sram/],
      [['ras', 'inject', 'accel0', 'block'], /^Command line is not complete\. "block" needs a block\.\n$/],
      [['health', 'set', 'accel0', 'reporter', 'mem', 'auto_dump', 'maybe'], /^Invalid auto_dump "maybe": expected true or false\.\n$/],
      [['-x', 'dev'], /^Option "-x" is unknown, try "accel -help"\.\n$/],
      [['monitor', 'frob'], /^Unknown monitor object "frob"/],
      [['exporter', '--listen', 'nowhere'], /^Invalid listen address "nowhere"/],
      [[], /^Usage: accel \[ OPTIONS \] OBJECT/],
    ];
    for (const [args, re] of cases) {
      const r = await accel(...args);
      expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(r.stderr).toMatch(re);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  test('daemon: a state directory that cannot be made, or a gRPC port out of range, gets a message, not a trace', async () => {
    const file = path.join(os.tmpdir(), `accelnl-not-a-dir-${process.pid}`);
    fs.writeFileSync(file, '');
    try {
      const r = await accel('daemon', '--port', String(DEAD), '--state-dir', file);
      expect(r).toMatchObject({ code: 1, stdout: '' });
      expect(r.stderr).toMatch(new RegExp(`^accel daemon: state directory ${file}: EEXIST`));
    } finally {
      fs.rmSync(file, { force: true });
    }
    const g = await accel('daemon', '--port', String(DEAD), '--grpc', '127.0.0.1:99999');
    expect(g).toMatchObject({ code: 2, stdout: '' });
    expect(g.stderr).toMatch(/^accel daemon: "--grpc" needs host:port, the port from 0 to 65535\n/);
  });

  test('daemon --grpc loads @grpc/grpc-js only then, from the dependencies: without it, a clear error and exit 1', async () => {
    // The launcher and the bundles alone, where no node_modules can be found.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-nodeps-'));
    try {
      fs.mkdirSync(path.join(dir, 'bin'));
      fs.mkdirSync(path.join(dir, 'dist'));
      fs.copyFileSync(ACCEL, path.join(dir, 'bin/accel'));
      for (const f of fs.readdirSync(path.join(path.dirname(ACCEL), '../dist'))) {
        if (f.endsWith('.js')) fs.copyFileSync(path.join(path.dirname(ACCEL), '../dist', f), path.join(dir, 'dist', f));
      }
      const r = await run(process.execPath, [path.join(dir, 'bin/accel'), 'daemon', '--port', String(DEAD), '--grpc', '127.0.0.1:0'],
        { cwd: dir, env: { ACCELNL_NATIVE: loadNative().file! } });
      expect(r).toMatchObject({ code: 1, stdout: '' });
      expect(r.stderr).toBe("accel daemon: cannot serve gRPC on 127.0.0.1:0: Cannot find module '@grpc/grpc-js'\n");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('help for every object prints its usage on stdout, exit 0; -V prints the version', async () => {
    for (const obj of ['dev', 'ras', 'health', 'caps', 'job', 'bo', 'family', 'server', 'monitor', 'exporter', 'daemon']) {
      const r = await accel(obj, 'help');
      expect({ obj, code: r.code }).toEqual({ obj, code: 0 });
      expect(r.stdout).toMatch(new RegExp(`^Usage: accel (\\[.*\\] )?${obj}`));
    }
    expect((await accel('help')).stdout).toMatch(/^Usage: accel \[ OPTIONS \] OBJECT \{ COMMAND \| help \}\n/);
    expect((await accel('-V')).stdout).toMatch(/^accel utility, accelnl \d+\.\d+\.\d+\n$/);
  });

  test('daemon not running: one line naming the port, exit 1', async () => {
    for (const r of [await runAccel(['dev', 'show'], { port: DEAD }), await runAccel(['--port', String(DEAD), 'family', 'list'])]) {
      expect(r).toEqual({
        code: 1, stdout: '',
        stderr: `accel: cannot reach the accel daemon at netlink port 0x${DEAD.toString(16)} (NETLINK_USERSOCK): nothing is bound there. Is "accel daemon" running?\n`,
      });
    }
    const bad = await runAccel(['dev', 'show'], { env: { ACCEL_NL_PORT: 'nope' } });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^accel: invalid netlink port "nope" in ACCEL_NL_PORT/);
  });
});

test('as user nobody: admin commands say "Operation not permitted", reads work', async () => {
  const b = bundleForNobody('bin/main.ts');
  try {
    const env = { ACCEL_NL_PORT: String(PORT) };
    expect(await b.run(['ras', 'clear', 'accel0'], env)).toMatchObject({ status: 1, stdout: '', stderr:
      "Error: only root may do this (the daemon judges the sender's credentials, as the kernel judges CAP_NET_ADMIN).\ndaemon answers: Operation not permitted\n" });
    expect(await b.run(['dev', 'show', 'accel0'], env)).toMatchObject({ status: 0, stdout: expect.stringMatching(/^pci\/0000:03:00.0:\n/) });
  } finally {
    b.dispose();
  }
});
