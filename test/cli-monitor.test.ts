// accel monitor, spawned against a real daemon: live events in text and JSON, a forced loss of
// multicast datagrams whose events come back from the RAS log marked recovered, JSON closed on
// SIGINT, and a --pcap capture that tshark dissects without malformed packets.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { type Daemon, inject as injectRas, startDaemon } from '../device';
import { type AccelClient, connectAccel } from '../device/client';
import { CMD } from '../device/gen/accel';
import { missingPackages } from './helpers/apt';
import { runAccel, startAccel } from './helpers/cli';

const PORT = 0x41470000 + (process.pid & 0xfff);
let d: Daemon;
let admin: AccelClient;
/** While true, the daemon's multicast sends are dropped (its unicast replies still go out). */
let dropMulticast = false;

beforeAll(async () => {
  await require('../bin/build.js').build();
  d = startDaemon({ port: PORT, config: 'devices: [{}, {}]', tick: false });
  const sock = d.served.socket;
  const sendMany = sock.sendMany.bind(sock);
  sock.sendMany = (data, spans, count = spans.length >> 2, results) => {
    if (!dropMulticast) return sendMany(data, spans, count, results);
    const keep = [...Array(count).keys()].filter((i) => spans[4 * i + 3] === 0);
    const s = new Int32Array(keep.length * 4);
    keep.forEach((i, j) => s.set(spans.subarray(4 * i, 4 * i + 4), 4 * j));
    const r = new Int32Array(keep.length);
    sendMany(data, s, keep.length, r);
    results?.fill(0, 0, count);
    keep.forEach((i, j) => { if (results) results[i] = r[j]; });
    return count;
  };
  admin = await connectAccel({ serverPort: PORT });
});
afterAll(() => { admin.close(); d.close(); });

const inject = (dev: number, block = 'dma') => admin.do(CMD.RAS_INJECT, { devIndex: dev, block: block as 'dma', severity: 'deferred' });
const listening = /accel monitor: listening to .* \(multicast\)/;

test('-j monitor: live events, a forced gap recovered from the log in order, JSON closed on SIGINT', async () => {
  const mon = startAccel(['-j', '-t', 'monitor', 'ras'], { port: PORT });
  await mon.waitFor(listening, 'stderr');
  await inject(1);
  await mon.waitFor(/"seq":1,/);
  dropMulticast = true;
  await inject(1);
  await inject(1);
  dropMulticast = false;
  await inject(1);
  await mon.waitFor(/"seq":4,/);
  const r = await mon.stop('SIGINT');
  expect(r.code).toBe(0);
  const doc = JSON.parse(r.stdout); // valid JSON although interrupted
  const events = doc.mon.map((e: any) => {
    expect(e.command).toBe('event');
    expect(e.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/); // -t: RFC 3339 with nanoseconds
    const [ev] = e.ras['pci/0000:04:00.0'];
    return [ev.seq, ev.recovered ?? false];
  });
  expect(events).toEqual([[1, false], [2, true], [3, true], [4, false]]);
});

test('text monitor with -t: [obj,cmd] headers, object filter, recovered events marked', async () => {
  const mon = startAccel(['-t', 'monitor', 'dev', 'ras'], { port: PORT });
  await mon.waitFor(listening, 'stderr');
  await admin.do(CMD.DEV_SET, { devIndex: 0, action: 'offline' });
  await admin.do(CMD.DEV_SET, { devIndex: 0, action: 'online' });
  await mon.waitFor(/\[dev,state\][^[]*state operational/);
  await admin.do(CMD.HEALTH_TEST, { devIndex: 0, reporterName: 'pcie' }); // health: not asked for
  dropMulticast = true;
  await inject(0, 'mmu');
  dropMulticast = false;
  await inject(0, 'mmu');
  await mon.waitFor(/(\[ras,event\][^[]*){2}/);
  const r = await mon.stop();
  expect(r.code).toBe(0);
  const out = r.stdout;
  expect(out).toMatch(/^Timestamp: \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} \d{1,9} nsec\n\[dev,state\] pci\/0000:03:00.0:\n {2}name accel0 state offline health \w+\n/);
  expect(out).not.toContain('[health,');
  const ras = out.split('\n').filter((l) => l.startsWith('  seq '));
  expect(ras).toHaveLength(2);
  expect(ras[0]).toMatch(/kind error block mmu severity deferred .* recovered true$/);
  expect(ras[1]).not.toMatch(/recovered/);
});

test('monitor ras names a device added after it started by its bus handle, as it does the others', async () => {
  const mon = startAccel(['-j', 'monitor', 'ras'], { port: PORT });
  await mon.waitFor(listening, 'stderr');
  expect(mon.stderr()).toMatch(/listening to ras \(/); // the config group it also joins is not what was asked
  const [dev] = await admin.do(CMD.DEV_NEW, { busAddr: '0000:0c:00.0' });
  try {
    await admin.do(CMD.DEV_SET, { devIndex: 0, action: 'offline' }); // a dev event: not asked for, not printed
    await admin.do(CMD.DEV_SET, { devIndex: 0, action: 'online' });
    await inject(dev.devIndex!);
    await mon.waitFor(/"seq":1,/);
    const r = await mon.stop('SIGINT');
    const doc = JSON.parse(r.stdout);
    expect(doc.mon.map((e: any) => [e.command, Object.keys(e.ras ?? {})])).toEqual([['event', ['pci/0000:0c:00.0']]]);
  } finally {
    await admin.do(CMD.DEV_DEL, { devIndex: dev.devIndex });
  }
});

describe('--pcap', () => {
  const why = missingPackages(['tshark']);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'accel-pcap-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('writes LINKTYPE_NETLINK records; tshark dissects every one, none malformed', async () => {
    const file = path.join(tmp, 'mon.pcap');
    const mon = startAccel(['monitor', '--pcap', file], { port: PORT });
    await mon.waitFor(listening, 'stderr');
    await inject(0, 'sram');
    await admin.do(CMD.HEALTH_TEST, { devIndex: 1, reporterName: 'thermal' });
    await mon.waitFor(/\[ras,event\]/);
    await mon.stop();
    // A CLI error exchange in its own capture: NLMSG_ERROR with extended-ACK TLVs.
    const buf = fs.readFileSync(file);
    expect(buf.readUInt32LE(0)).toBe(0xa1b23c4d); // nanosecond pcap
    expect(buf.readUInt32LE(24 + 4)).toBeLessThan(1e9); // the fraction is nanoseconds
    expect(buf.readUInt32LE(20)).toBe(253);
    expect(buf.readUInt16BE(24 + 16 + 2)).toBe(824); // cooked header, big-endian hatype
    if (why) {
      console.warn(`skipping the tshark dissection: ${why}`);
      return;
    }
    const frames = spawnSync('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.number', '-e', 'netlink.hdr_type', '-e', 'genl.ctrl.family_name', '-e', '_ws.malformed'], { encoding: 'utf8' });
    expect(frames.status).toBe(0);
    const rows = frames.stdout.trim().split('\n').map((l) => l.split('\t'));
    expect(rows.length).toBeGreaterThan(6);
    expect(rows.filter((r) => r[3])).toEqual([]); // no malformed frames
    expect(rows.some((r) => r[2].includes('accel'))).toBe(true); // nlctrl resolve of accel, dissected
    const verbose = spawnSync('tshark', ['-r', file, '-V'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(verbose.stdout).toMatch(/Linux netlink \(cooked header\)/);
    expect(verbose.stdout).toMatch(/Link-layer address type: Netlink \(824\)/);
    expect(verbose.stdout).toMatch(/Linux Generic Netlink protocol/);
    expect(verbose.stdout).not.toMatch(/[Mm]alformed/);
    // Nanosecond timestamps, read as such (a microsecond file shows at most 6 non-zero digits).
    const times = spawnSync('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.time_epoch'], { encoding: 'utf8' });
    const epochs = times.stdout.trim().split('\n');
    expect(epochs.every((t) => /^\d{10}\.\d{9}$/.test(t))).toBe(true);
    expect(epochs.some((t) => !t.endsWith('000'))).toBe(true);
  });
});

test('monitor against no daemon: the one-line message', async () => {
  const r = await runAccel(['monitor'], { port: 0x41480000 + (process.pid & 0xfff) });
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/^accel: cannot reach the accel daemon at netlink port 0x[0-9a-f]+ \(NETLINK_USERSOCK\)/);
});

test('a stopped monitor resumed after an overrun: only the events its socket lost are marked recovered (F9)', async () => {
  // Its own daemon: no storm folding, and a log that holds the whole storm.
  const port = PORT + 0x1000;
  const sd = startDaemon({ port, config: 'storm: { burst: 1000000 }\ndevices: [{ log-capacity: 262144 }]', tick: false });
  const mon = startAccel(['-j', 'monitor', 'ras'], { port });
  try {
    await mon.waitFor(listening, 'stderr');
    const dev = sd.rt.emu.devices.get(0)!;
    const one = (): void => { injectRas(sd.rt.emu, dev, { block: 'pcie', severity: 'deferred' }); };
    one();
    await mon.waitFor(/"seq":1,/);
    // Stopped, the monitor's socket fills (4 MiB asked, 8 MiB granted: about 10,000 events) and the kernel drops the rest:
    // an overrun. The storm goes out in slices so that the server sends as it goes.
    mon.proc.kill('SIGSTOP');
    const N = 30000;
    for (let i = 0; i < N; i += 2000) {
      for (let j = 0; j < 2000; j++) one();
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 200));
    mon.proc.kill('SIGCONT');
    // Caught up first: until the socket has drained, the kernel drops multicast without telling
    // (it reports one ENOBUFS per congestion), and a dropped last event has no later one to show
    // the gap.
    await mon.waitFor(new RegExp(`"seq":${N + 1},`), 'stdout', 60000);
    one(); // live, after the recovery
    await mon.waitFor(new RegExp(`"seq":${N + 2},`), 'stdout', 20000);
    const r = await mon.stop('SIGINT');
    expect(r.code).toBe(0);
    const events: [number, boolean][] = JSON.parse(r.stdout).mon.map((e: any) => {
      const [ev] = e.ras['pci/0000:03:00.0'];
      return [ev.seq, ev.recovered ?? false];
    });
    // Every event once, in order.
    expect(events.map(([s]) => s)).toEqual(Array.from({ length: N + 2 }, (_, i) => i + 1));
    const recovered = events.filter(([, rec]) => rec).map(([s]) => s);
    // The kernel dropped some (an overrun happened) ...
    expect(recovered.length).toBeGreaterThan(0);
    // ... but what reached the socket before it filled was received live, not read back: the first
    // storm event among them. The lost ones form one run after those, and the event after the
    // recovery is live.
    expect(events[1]).toEqual([2, false]);
    expect(recovered).toEqual(Array.from({ length: recovered.length }, (_, i) => recovered[0] + i));
    expect(events[N + 1]).toEqual([N + 2, false]);
  } finally {
    await mon.stop('SIGKILL');
    sd.close();
  }
}, 90000);
