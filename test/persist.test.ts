import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { manualClock } from '../device/clock';
import { addDevice, newEmulator, removeDevice } from '../device/emulator';
import { appendRecord, crc32, openJournal, closeJournal, recover } from '../device/journal';
import { readFrom } from '../device/log';
import { closePersistence, openPersistence } from '../device/persist';
import { clearCounters, inject } from '../device/ras';

const dirs: string[] = [];
const tmp = () => { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-state-')); dirs.push(d); return d; };
afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });
const boot = (dir: string, seed?: number) => {
  const emu = newEmulator(manualClock(), seed === undefined ? {} : { seed });
  addDevice(emu);
  addDevice(emu);
  const p = openPersistence(emu, dir);
  return { emu, p, d: emu.devices.get(0)! };
};

describe('journal', () => {
  test('crc32 matches zlib', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });
  test('a torn tail is truncated and reported; earlier records survive', () => {
    const dir = tmp();
    const f = path.join(dir, 'j.bin');
    const j = openJournal(f);
    appendRecord(j, new Uint8Array([1, 2, 3]), true);
    appendRecord(j, new Uint8Array([4, 5]), true);
    closeJournal(j);
    fs.appendFileSync(f, Buffer.from([9, 0, 0, 0, 1, 2])); // half a header and payload
    const r = recover(f);
    expect(r.records.map((x) => Array.from(x))).toEqual([[1, 2, 3], [4, 5]]);
    expect(r.truncated).toBe(6);
    expect(fs.statSync(f).size).toBe(2 * 8 + 5);
  });
  test('damage in the middle sets the file aside and keeps what came before', () => {
    const dir = tmp();
    const f = path.join(dir, 'j.bin');
    const j = openJournal(f);
    for (let i = 0; i < 3; i++) appendRecord(j, new Uint8Array([i, i, i, i]), true);
    closeJournal(j);
    const b = fs.readFileSync(f);
    b[12 + 8 + 1] ^= 0xff; // second record's payload
    fs.writeFileSync(f, b);
    const r = recover(f);
    expect(r.records.length).toBe(1);
    expect(r.setAside).toMatch(/\.corrupt-/);
    expect(fs.existsSync(f)).toBe(false);
  });
});

describe('persistence of RAS state across restarts', () => {
  test('aggregate counters, retired rows, bad pages and the log survive; volatile counters do not', () => {
    const dir = tmp();
    const a = boot(dir);
    inject(a.emu, a.d, { block: 'hbm', severity: 'uncorrectable-nonfatal', address: 0x4000n, count: 3 });
    inject(a.emu, a.d, { block: 'pcie', severity: 'correctable', count: 2 });
    a.emu.sync!();
    closePersistence(a.emu, a.p);
    const b = boot(dir);
    expect(b.p.report).toEqual([]);
    expect(b.p.replayed).toBeGreaterThan(0);
    expect(Array.from(b.d.counters.aggregate)).toEqual(Array.from(a.d.counters.aggregate));
    expect(b.d.counters.volatile.every((x) => x === 0n)).toBe(true);
    expect(b.d.mem).toEqual(a.d.mem);
    expect(readFrom(b.d.log, 1n).events.map((e) => [e.seq, e.kind])).toEqual(readFrom(a.d.log, 1n).events.map((e) => [e.seq, e.kind]));
    // New records continue the sequence.
    const [e] = inject(b.emu, b.d, { block: 'dma', severity: 'deferred' }) as { seq: bigint }[];
    expect(e.seq).toBe(a.d.log.next);
    // A clear of aggregate counters is durable too.
    clearCounters(b.emu, b.d, true);
    closePersistence(b.emu, b.p);
    const c = boot(dir);
    expect(c.d.counters.aggregate.every((x) => x === 0n)).toBe(true);
    expect(readFrom(c.d.log, 1n).events.length).toBe(readFrom(a.d.log, 1n).events.length + 1);
  });
  test('a retired row journals the counts and the page it adds, not the list; journals that list every page still replay', () => {
    const dir = tmp();
    const a = boot(dir);
    for (const address of [0x1000n, 0x2000n, 0x3000n]) inject(a.emu, a.d, { block: 'hbm', severity: 'uncorrectable-nonfatal', address });
    a.emu.sync!();
    closePersistence(a.emu, a.p); // in the journal only
    const mem = recover(path.join(dir, 'journal.bin')).records.map((r) => JSON.parse(new TextDecoder().decode(r)))
      .filter((o) => o.k === 'mem');
    expect(mem.map((o) => [o.page, o.mem.badPages])).toEqual([['4096', undefined], ['8192', undefined], ['12288', undefined]]);
    const b = boot(dir);
    expect(b.p.report).toEqual([]);
    expect(b.d.mem).toEqual(a.d.mem);
    expect(b.d.mem.badPages).toEqual([0x1000n, 0x2000n, 0x3000n]);
    // A record as journals before it: the whole list.
    closePersistence(b.emu, b.p);
    const j = openJournal(path.join(dir, 'journal.bin'));
    const old = { k: 'mem', mem: { rowsActive: 3, rowsPending: 1, badPages: ['4096', '8192', '12288', '16384'], rma: false }, dev: b.d.busAddr, serial: b.d.serial };
    appendRecord(j, new TextEncoder().encode(JSON.stringify(old)), true);
    closeJournal(j);
    const c = boot(dir);
    expect(c.p.report).toEqual([]);
    expect(c.d.mem).toMatchObject({ rowsActive: 3, rowsPending: 1, badPages: [0x1000n, 0x2000n, 0x3000n, 0x4000n], rma: false });
  });
  test('a journal past compactBytes is folded into a new snapshot at the next sync, and a crash after it loses nothing', () => {
    const dir = tmp();
    const emu = newEmulator(manualClock());
    addDevice(emu);
    const p = openPersistence(emu, dir, { compactBytes: 8192 });
    const d = emu.devices.get(0)!;
    const jFile = path.join(dir, 'journal.bin');
    const gen = () => (JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as { gen: number }).gen;
    expect(gen()).toBe(1);
    let most = 0;
    for (let i = 0; i < 200; i++) {
      inject(emu, d, { block: 'hbm', severity: 'uncorrectable-nonfatal', address: BigInt(i) << 12n });
      emu.sync!();
      most = Math.max(most, fs.statSync(jFile).size);
    }
    // Bounded: it never grew past the threshold by more than the records of one sync.
    expect(most).toBeLessThan(8192 + 4096);
    expect(gen()).toBeGreaterThan(2);
    expect(p.gen).toBe(gen());
    closePersistence(emu, p); // a crash: no compaction at close
    const b = boot(dir);
    expect(b.p.report).toEqual([]);
    expect(b.d.mem).toEqual(d.mem);
    expect(b.d.mem.badPages).toHaveLength(200);
    expect(Array.from(b.d.counters.aggregate)).toEqual(Array.from(d.counters.aggregate));
    expect(readFrom(b.d.log, 1n).events.map((e) => e.seq)).toEqual(readFrom(d.log, 1n).events.map((e) => e.seq));
  });
  test('state belongs to the board: another board in the slot starts clean, and the first gets its state back', () => {
    const dir = tmp();
    const a = boot(dir, 1);
    inject(a.emu, a.d, { block: 'hbm', severity: 'uncorrectable-nonfatal', address: 0x4000n, count: 3 });
    a.emu.sync!();
    closePersistence(a.emu, a.p); // these changes are in the journal only
    const seqs = (d: typeof a.d) => readFrom(d.log, 1n).events.map((e) => e.seq);
    // Another seed: other serials in the same slots.
    const b = boot(dir, 2);
    expect(b.d.serial).not.toBe(a.d.serial);
    expect(b.d.counters.aggregate.every((x) => x === 0n)).toBe(true);
    expect(seqs(b.d)).toEqual([]);
    expect(b.p.report.join('\n')).toContain(`state for ${a.d.busAddr} belongs to board ${a.d.serial}, not ${b.d.serial}: kept as ${a.d.busAddr}@${a.d.serial}`);
    inject(b.emu, b.d, { block: 'pcie', severity: 'correctable' });
    b.emu.sync!();
    closePersistence(b.emu, b.p);
    // The first board again: its counters and log, journal tail included; the second's kept aside.
    const c = boot(dir, 1);
    expect(Array.from(c.d.counters.aggregate)).toEqual(Array.from(a.d.counters.aggregate));
    expect(seqs(c.d)).toEqual(seqs(a.d));
    closePersistence(c.emu, c.p);
    const d = boot(dir, 2);
    expect(seqs(d.d)).toEqual([1n]);
    closePersistence(d.emu, d.p);
  });
  test('a hot-plugged board keeps its history: across a restart, and unplugged and plugged again', () => {
    const dir = tmp();
    const slot = { busAddr: '0000:0c:00.0' };
    const a = boot(dir);
    const h = addDevice(a.emu, slot);
    inject(a.emu, h, { block: 'mmu', severity: 'correctable', count: 2 });
    a.emu.sync!();
    closePersistence(a.emu, a.p); // its records are in the journal only, and it is not configured
    const seqs = (d: typeof h) => readFrom(d.log, 1n).events.map((e) => e.seq);
    const b = boot(dir);
    const h2 = addDevice(b.emu, slot);
    expect(h2.serial).toBe(h.serial);
    expect(Array.from(h2.counters.aggregate)).toEqual(Array.from(h.counters.aggregate));
    expect(seqs(h2)).toEqual(seqs(h));
    const [e] = inject(b.emu, h2, { block: 'mmu', severity: 'correctable' }) as { seq: bigint }[];
    expect(e.seq).toBe(h.log.next);
    // Unplugged and plugged again in the same run (same index, so the same serial): still its own.
    removeDevice(b.emu, h2);
    const h3 = addDevice(b.emu, { ...slot, index: h2.index });
    expect(h3.serial).toBe(h.serial);
    expect(seqs(h3)).toEqual([...seqs(h), e.seq]);
    // Another board in that slot (another serial) starts clean.
    removeDevice(b.emu, h3);
    expect(seqs(addDevice(b.emu, slot))).toEqual([]);
    closePersistence(b.emu, b.p);
  });
  test('a corrupt snapshot is set aside and reported, never a crash', () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'state.json'), '{ not json');
    const a = boot(dir);
    expect(a.p.report.join('\n')).toMatch(/snapshot unreadable.*set aside/);
    expect(fs.readdirSync(dir).some((f) => f.startsWith('state.json.corrupt-'))).toBe(true);
  });
});
