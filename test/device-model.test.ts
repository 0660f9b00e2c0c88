import { manualClock } from '../device/clock';
import { ConfigError, DEFAULT_CONFIG_YAML, parseConfig } from '../device/config';
import { addDevice, devicesInOrder, findDevice, newEmulator, removeDevice, stopEmulator, type ConfigEvent } from '../device/emulator';
import { BLOCKS, SEVERITIES, THROTTLE } from '../device/enums';
import { diagnose, getDump, overallHealth, recover, testReporter } from '../device/health';
import { oldest, readFrom } from '../device/log';
import { BAD_PAGE_CAPACITY, U64_MAX, counterIndex } from '../device/model';
import { devAttrs } from '../device/families/accel';
import { readAccel, writeAccel } from '../device/gen/accel';
import { bytes, newWriter, view } from '../attrs';
import { clearCounters, flushStorms, inject, resetDevice } from '../device/ras';
import { createRuntime, step } from '../device/runtime';

const setup = (cfg = {}) => {
  const clock = manualClock();
  const emu = newEmulator(clock, { resetMs: 10, ...cfg });
  const d = addDevice(emu);
  return { clock, emu, d };
};
const ci = (b: string, s: string) => counterIndex(BLOCKS.indexOf(b as never), SEVERITIES.indexOf(s as never));

describe('device identity and enumeration', () => {
  test('accelN names, /dev/accel paths, bus handles, lookup by any of them', () => {
    const { emu } = setup();
    const d1 = addDevice(emu);
    expect(d1).toMatchObject({ index: 1, name: 'accel1', path: '/dev/accel/accel1', busAddr: '0000:04:00.0' });
    for (const k of [1, '1', 'accel1', '0000:04:00.0', 'pci/0000:04:00.0']) expect(findDevice(emu, k)).toBe(d1);
    expect(findDevice(emu, 'accel9')).toBeUndefined();
    removeDevice(emu, d1);
    expect(findDevice(emu, 1)).toBeUndefined();
    expect(addDevice(emu).index).toBe(2); // indices are not reused at once, like minors
  });

  test('devices in index order: one shared list, rebuilt when a device comes or goes (also at the same count)', () => {
    const { emu } = setup();
    addDevice(emu, { index: 7 });
    addDevice(emu, { index: 3 });
    const first = devicesInOrder(emu);
    expect(first.map((d) => d.index)).toEqual([0, 3, 7]);
    expect(devicesInOrder(emu)).toBe(first); // cached
    removeDevice(emu, findDevice(emu, 3)!);
    addDevice(emu, { index: 5 }); // same count as before, different devices
    expect(devicesInOrder(emu).map((d) => d.index)).toEqual([0, 5, 7]);
  });

  test('bus addresses stay unique across many adds and removals (the set of used ones is kept, not rebuilt)', () => {
    const { emu } = setup();
    for (let i = 1; i < 1024; i++) addDevice(emu);
    const addrs = new Set([...emu.devices.values()].map((d) => d.busAddr));
    expect(addrs.size).toBe(1024);
    const d5 = findDevice(emu, 5)!;
    expect(() => addDevice(emu, { busAddr: d5.busAddr })).toThrow(/in use/);
    removeDevice(emu, d5);
    expect(addDevice(emu, { busAddr: d5.busAddr }).busAddr).toBe(d5.busAddr); // freed by the removal
    expect(() => addDevice(emu, { busAddr: d5.busAddr })).toThrow(/in use/);
    // A device given the next index's own slot pushes that index to the next free slot.
    const next = emu.nextIndex;
    const taken = addDevice(emu, { busAddr: findDevice(emu, 0)!.busAddr.replace(/^0000/, '0009') });
    expect(taken.index).toBe(next);
    expect(new Set([...emu.devices.values()].map((d) => d.busAddr)).size).toBe(emu.devices.size);
  });
});

describe('RAS counters, log and consequences', () => {
  test('counters are exact and saturate at 2^64-1, volatile and aggregate', () => {
    const { emu, d } = setup();
    inject(emu, d, { block: 'dma', severity: 'uncorrectable-nonfatal', count: 5 });
    expect(d.counters.volatile[ci('dma', 'uncorrectable-nonfatal')]).toBe(5n);
    d.counters.aggregate[ci('dma', 'uncorrectable-nonfatal')] = U64_MAX - 1n;
    inject(emu, d, { block: 'dma', severity: 'uncorrectable-nonfatal', count: 7 });
    expect(d.counters.aggregate[ci('dma', 'uncorrectable-nonfatal')]).toBe(U64_MAX);
    clearCounters(emu, d, false);
    expect(d.counters.volatile[ci('dma', 'uncorrectable-nonfatal')]).toBe(0n);
    expect(d.counters.aggregate[ci('dma', 'uncorrectable-nonfatal')]).toBe(U64_MAX);
    clearCounters(emu, d, true);
    expect(d.counters.aggregate[ci('dma', 'uncorrectable-nonfatal')]).toBe(0n);
  });
  test('log records get increasing sequence numbers and can be read from a cursor', () => {
    const { emu, d } = setup();
    for (let i = 0; i < 5; i++) inject(emu, d, { block: 'dma', severity: 'deferred' });
    const { events, lost } = readFrom(d.log, 3n);
    expect(events.map((e) => e.seq)).toEqual([3n, 4n, 5n]);
    expect(lost).toBe(0n);
    expect(readFrom(d.log, 1n, 2).events.map((e) => e.seq)).toEqual([1n, 2n]);
  });
  test('the log (typed columns, grown by doubling) gives back every record as it was made, across growth and wrap', () => {
    const clock = manualClock();
    const emu = newEmulator(clock, { stormBurst: 1e6 });
    const d = addDevice(emu, { logCapacity: 1000 });
    const made: unknown[] = [];
    const keep = (out: unknown) => { for (const e of out as object[]) made.push({ ...e }); };
    for (let i = 0; i < 1700; i++) {
      clock.advance(1);
      const block = BLOCKS[i % BLOCKS.length];
      const severity = i % 7 === 0 ? 'uncorrectable-nonfatal' : SEVERITIES[i % 3];
      keep(inject(emu, d, { block, severity, count: 1 + (i % 5), address: BigInt(i) << 40n,
        ...(i % 3 ? { syndrome: new Uint8Array([i & 0xff, i >> 8]) } : {}) }));
      if (i === 299) expect(readFrom(d.log, 1n).events).toEqual(made); // before the columns grew past 256 and 512
    }
    const held = made.slice(-1000);
    expect(oldest(d.log)).toBe((held[0] as { seq: bigint }).seq);
    expect(readFrom(d.log, 1n).events).toEqual(held);
    expect(readFrom(d.log, 1n).lost).toBe(BigInt(made.length - 1000));
  });
  test('the ring is bounded and reports what a stale cursor lost', () => {
    const clock = manualClock();
    const emu = newEmulator(clock);
    const d = addDevice(emu, { logCapacity: 16 });
    for (let i = 0; i < 40; i++) inject(emu, d, { block: 'dma', severity: 'deferred' });
    expect(oldest(d.log)).toBe(25n);
    const r = readFrom(d.log, 10n);
    expect(r.lost).toBe(15n);
    expect(r.events[0].seq).toBe(25n);
    expect(r.events.length).toBe(16);
  });
  test('a fatal error sets needs-reset with a reset hint; reset clears volatile counters', async () => {
    const { emu, d } = setup();
    const states: string[] = [];
    emu.onConfig.push((e: ConfigEvent) => { if (e.kind === 'state') states.push(e.dev.state); });
    const [e] = inject(emu, d, { block: 'compute-core', severity: 'uncorrectable-fatal' }) as { action: string }[];
    expect(e.action).toBe('reset-device');
    expect(d.state).toBe('needs-reset');
    expect(overallHealth(d)).toBe('critical');
    expect(resetDevice(emu, d)).toBe(0);
    expect(d.state).toBe('in-reset');
    expect(inject(emu, d, { block: 'dma', severity: 'correctable' })).toBe(-16);
    expect(resetDevice(emu, d)).toBe(-16);
    await new Promise((r) => setTimeout(r, 30));
    expect(d.state).toBe('operational');
    expect(d.counters.volatile[ci('compute-core', 'uncorrectable-fatal')]).toBe(0n);
    expect(d.counters.aggregate[ci('compute-core', 'uncorrectable-fatal')]).toBe(1n);
    expect(states).toEqual(['needs-reset', 'in-reset', 'operational']);
    stopEmulator(emu);
  });
  test('uncorrectable HBM errors retire rows (pending until reset) and reaching the threshold means RMA', async () => {
    const clock = manualClock();
    const emu = newEmulator(clock, { resetMs: 1 });
    const d = addDevice(emu, { rmaThreshold: 3 });
    inject(emu, d, { block: 'hbm', severity: 'uncorrectable-nonfatal', address: 0x1000n });
    inject(emu, d, { block: 'hbm', severity: 'uncorrectable-nonfatal', address: 0x1008n }); // same page
    expect(d.mem).toMatchObject({ rowsPending: 1, rowsActive: 0, badPages: [0x1000n], rma: false });
    resetDevice(emu, d);
    await new Promise((r) => setTimeout(r, 10));
    expect(d.mem).toMatchObject({ rowsPending: 0, rowsActive: 1 });
    inject(emu, d, { block: 'hbm', severity: 'uncorrectable-nonfatal', address: 0x2000n });
    const out = inject(emu, d, { block: 'hbm', severity: 'uncorrectable-nonfatal', address: 0x3000n }) as { kind: string; action: string }[];
    expect(out.map((e) => e.kind)).toEqual(['error', 'row-retired', 'rma']);
    expect(out[2].action).toBe('replace');
    expect(d.mem.rma).toBe(true);
    stopEmulator(emu);
  });
  test('the bad page table holds BAD_PAGE_CAPACITY pages, so the device record always encodes', () => {
    const { emu, d } = setup();
    // 5600 pages would be a memory nest past nla_len's 64 KiB: dev-get and ras-get failed to encode.
    for (let i = 0; i < 5600; i++) inject(emu, d, { block: 'hbm', severity: 'uncorrectable-nonfatal', address: BigInt(i) << 12n });
    expect(d.mem.badPages).toHaveLength(BAD_PAGE_CAPACITY);
    expect(d.mem.rowsPending).toBe(BAD_PAGE_CAPACITY);
    expect(d.mem.rma).toBe(true);
    const w = newWriter(64);
    writeAccel(w, devAttrs(d));
    const back = readAccel(view(bytes(w)), 0, w.len);
    expect(back.memory?.badPage).toHaveLength(BAD_PAGE_CAPACITY);
    // A full table retires nothing more: the error is logged, no row-retired record.
    const out = inject(emu, d, { block: 'hbm', severity: 'uncorrectable-nonfatal', address: 0x7fff000n }) as { kind: string }[];
    expect(out.map((e) => e.kind)).toEqual(['error']);
  });
  test('repeated correctable errors on one HBM page retire it', () => {
    const { emu, d } = setup();
    for (let i = 0; i < 3; i++) inject(emu, d, { block: 'hbm', severity: 'correctable', address: 0x5000n + BigInt(i) });
    expect(d.mem.badPages).toEqual([0x5000n]);
  });
  test('thermal errors throttle', () => {
    const { emu, d } = setup();
    inject(emu, d, { block: 'thermal', severity: 'uncorrectable-nonfatal' });
    expect(d.tel.throttle & THROTTLE['hw-thermal']).toBeTruthy();
  });
  test('offline devices refuse injection with ENODEV', () => {
    const { emu, d } = setup();
    d.state = 'offline';
    expect(inject(emu, d, { block: 'dma', severity: 'correctable' })).toBe(-19);
  });
});

describe('storm limiter', () => {
  test('correctable storms are folded into an overflow record; counters stay exact', () => {
    const { clock, emu, d } = setup({ stormBurst: 3, stormIntervalMs: 1000 });
    const seen: string[] = [];
    emu.onRas.push((_d, e) => seen.push(e.kind));
    for (let i = 0; i < 10; i++) { inject(emu, d, { block: 'pcie', severity: 'correctable' }); clock.advance(10); }
    expect(seen).toEqual(['error', 'error', 'error']);
    expect(d.counters.volatile[ci('pcie', 'correctable')]).toBe(10n);
    clock.advance(1000);
    flushStorms(emu, d);
    expect(seen).toEqual(['error', 'error', 'error', 'storm-overflow']);
    const { events } = readFrom(d.log, 4n);
    expect(events[0]).toMatchObject({ kind: 'storm-overflow', folded: 7, count: 7 });
    expect(events[0].lastTsNs - events[0].firstTsNs).toBe(60_000_000n);
    // Uncorrectable errors are never folded.
    for (let i = 0; i < 10; i++) inject(emu, d, { block: 'pcie', severity: 'deferred' });
    expect(seen.filter((k) => k === 'error').length).toBe(13);
  });
});

describe('health reporters (devlink semantics)', () => {
  test('report counts, auto-dumps, auto-recovers outside the grace period', () => {
    const { clock, emu, d } = setup();
    const r = d.reporters.get('core')!;
    r.gracePeriodMs = 1000;
    inject(emu, d, { block: 'dma', severity: 'uncorrectable-nonfatal' });
    expect(r).toMatchObject({ errCount: 1n, recoverCount: 1n, healthy: true });
    expect(r.dump).toBeDefined();
    clock.advance(10);
    inject(emu, d, { block: 'dma', severity: 'uncorrectable-nonfatal' });
    expect(r).toMatchObject({ errCount: 2n, recoverCount: 1n, healthy: false }); // within grace
    expect(recover(emu, d, 'core')).toBe(0);
    expect(r).toMatchObject({ recoverCount: 2n, healthy: true });
    expect(testReporter(emu, d, 'fw')).toBe(0);
    expect(d.reporters.get('fw')!).toMatchObject({ errCount: 1n, healthy: false }); // fw: no auto-recover
    expect(Object.fromEntries(diagnose(d, 'mem'))).toMatchObject({ rows_pending: '0', rma: 'false' });
    expect(getDump(emu, d, 'fw').length).toBeGreaterThan(2);
  });
});

describe('configuration', () => {
  test('the embedded default has two devices', () => {
    const c = parseConfig(DEFAULT_CONFIG_YAML);
    expect(c.devices.length).toBe(2);
    expect(c.simulate).toBeUndefined();
  });
  test('bad keys and values are refused with the path named', () => {
    expect(() => parseConfig('devices: [{ memory: 3 }]')).toThrow(new ConfigError('devices[0].memory: unknown key'));
    expect(() => parseConfig('devices: [{ mem-total: lots }]')).toThrow(/devices\[0\]\.mem-total: expected a size/);
    expect(() => parseConfig('simulate: { gpu: { correctable: 1 } }')).toThrow(/simulate\.gpu: unknown block/);
    expect(() => parseConfig('seed: [')).toThrow(/not valid YAML/);
    expect(() => parseConfig('storm: { burst: -1 }')).toThrow(/storm\.burst/);
    expect(parseConfig('devices: [{ mem-total: 512MiB, bus-addr: "0000:0a:00.0" }]').devices[0])
      .toEqual({ memTotal: 512n << 20n, busAddr: '0000:0a:00.0' });
  });
  test('YAML 1.2 core schema, as docs/daemon.md says: yes is a string, 0x/0o/0b are numbers, other tags are refused', () => {
    expect(parseConfig('devices: [{ serial: yes, driver: on, vendor-id: 0x10de, device-id: 0b1010, index: 0o17 }]').devices[0])
      .toEqual({ serial: 'yes', driver: 'on', vendorId: 0x10de, deviceId: 10, index: 15 });
    expect(() => parseConfig('devices: [{ serial: !!binary aGk= }]')).toThrow(/not valid YAML/);
    expect(() => parseConfig('devices: [{ serial: !custom x }]')).toThrow(/not valid YAML/);
    expect(() => parseConfig('devices: []\ndevices: []')).toThrow(/not valid YAML/); // duplicate key
  });
  test('text values must be scalars: a list or mapping is refused by its kind, and an alias bomb is never expanded', () => {
    expect(() => parseConfig('devices: [{ serial: [1] }]')).toThrow(new ConfigError('devices[0].serial: expected a string, got a list'));
    expect(() => parseConfig('devices: [{ versions: { fixed: { board: { a: 1 } } } }]'))
      .toThrow(new ConfigError('devices[0].versions.fixed.board: expected a string, got a mapping'));
    // Ten levels of ten aliases each: 10^10 leaves if anything walked it (js-yaml has no alias limit).
    const levels = ['a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
    for (let i = 1; i < 10; i++) levels.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
    const bomb = `devices: [{ versions: { fixed: { ${levels.join(', ')} } } }]`;
    expect(() => parseConfig(bomb)).toThrow(new ConfigError('devices[0].versions.fixed.a0: expected a string, got a list'));
    expect(() => parseConfig('devices: [{ mem-total: [lol, lol] }]')).toThrow(new ConfigError('devices[0].mem-total: expected a size like 16GiB, got a list'));
  });
});

describe('runtime: telemetry and simulation are deterministic under a seed', () => {
  const run = () => {
    const rt = createRuntime(parseConfig('seed: 42\ndevices: [{}]\nsimulate: { hbm: { correctable: 50 }, dma: { deferred: 5 } }'), manualClock());
    rt.emu.devices.get(0)!.load = 0.8;
    for (let i = 0; i < 50; i++) step(rt, 100);
    const d = rt.emu.devices.get(0)!;
    return { tel: { ...d.tel }, counters: Array.from(d.counters.aggregate), next: d.log.next };
  };
  test('same seed, same history; load heats the device', () => {
    const a = run();
    const b = run();
    expect(a).toEqual(b);
    expect(a.tel.tempMc).toBeGreaterThan(40000);
    expect(a.tel.powerMw).toBeGreaterThan(100000);
    expect(a.counters.reduce((x, y) => x + y, 0n)).toBeGreaterThan(100n);
  });
});

describe('the cached dev-get record (device/families/records.ts)', () => {
  // Every path that changes a field dev-get shows must bump the device's change counter: after each
  // one, the cached record must be the freshly encoded one, and (where a shown field changed) new.
  const { devAttrs, devRecord } = require('../device/families/accel') as typeof import('../device/families/accel');
  const { writeAttrs } = require('../genl/ynl') as typeof import('../genl/ynl');
  const { spec } = require('../device/gen/accel') as typeof import('../device/gen/accel');
  const { newWriter } = require('../attrs') as typeof import('../attrs');
  const { createBo, freeBo, newEngine } = require('../device/jobs') as typeof import('../device/jobs');
  const fresh = (d: Parameters<typeof devAttrs>[0]) => { const w = newWriter(); writeAttrs(w, spec, 'accel', devAttrs(d)); return Buffer.from(w.buf.subarray(0, w.len)); };

  test('every mutation of a shown field gives a fresh record; none is served stale', async () => {
    const rt = createRuntime(parseConfig('reset-ms: 1\ndevices: [{ mem-total: 64MiB, rma-threshold: 2 }]'), manualClock());
    const emu = rt.emu;
    const d = emu.devices.get(0)!;
    const eng = newEngine(emu, { threads: 0 }); // BOs only: no compute workers to start
    let last = Buffer.from(devRecord(d));
    expect(last).toEqual(fresh(d));
    const changes: [string, () => unknown][] = [
      ['reporter test (health)', () => testReporter(emu, d, 'fw')],
      ['reporter recovered', () => recover(emu, d, 'fw')],
      ['telemetry tick', () => { d.load = 0.9; step(rt, 100); }],
      ['another tick (energy, temperature)', () => step(rt, 100)],
      ['offline', () => emu.onConfig.length >= 0 && require('../device/emulator').setState(emu, d, 'offline')],
      ['online', () => require('../device/emulator').setState(emu, d, 'operational')],
      ['BO created (mem-used)', () => createBo(eng, d, 8192, 1)],
      ['BO freed', () => freeBo(eng, [...eng.bos.values()][0])],
      ['HBM row retired (memory, health)', () => inject(emu, d, { block: 'hbm', severity: 'uncorrectable-nonfatal', address: 0x10000n })],
      ['thermal error (throttle, temperature)', () => inject(emu, d, { block: 'thermal', severity: 'uncorrectable-nonfatal' })],
      ['fatal error (state)', () => inject(emu, d, { block: 'compute-core', severity: 'uncorrectable-fatal' })],
      ['reset started (state)', () => resetDevice(emu, d)],
      ['reset done (resets, rows, throttle)', () => new Promise((r) => setTimeout(r, 20))],
      ['second retired row: RMA', () => inject(emu, d, { block: 'hbm', severity: 'uncorrectable-nonfatal', address: 0x90000n })],
    ];
    for (const [what, f] of changes) {
      await f();
      const rec = Buffer.from(devRecord(d));
      expect({ what, fresh: rec.equals(fresh(d)) }).toEqual({ what, fresh: true });
      expect({ what, changed: !rec.equals(last) }).toEqual({ what, changed: true });
      last = rec;
    }
    // Nothing changed: the same bytes (the cache, not a new encoding).
    expect(devRecord(d)).toBe(devRecord(d));
    stopEmulator(emu);
  });
});
