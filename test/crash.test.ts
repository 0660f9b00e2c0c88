// Crash-safe persistence, with the real daemon process (bin/accel daemon --state-dir): kill -9 at
// random points while acknowledged injections stream in, restart, and check after every restart
// that each acknowledged record is in the RAS log exactly once, with its content, and that the
// lifetime counters count each acknowledged injection once. Then damaged state files: a corrupt
// journal record, a torn tail and an unreadable snapshot are detected, set aside and reported on
// stderr, and the daemon starts with everything that could be kept.
// CRASH_CYCLES=N runs N kill -9 cycles (CI: 5).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { type AccelClient, connectAccel } from '../device/client';
import { CMD } from '../device/gen/accel';
import type { Accel, Event } from '../device/gen/accel';
import { type Running, startAccel } from './helpers/cli';

const PORT = 0x41500000 + (process.pid & 0xfff);
const CYCLES = Number(process.env.CRASH_CYCLES ?? 5);
const CONFIG = `storm: { burst: 1000000 }
devices:
  - { log-capacity: 1048576 }
  - { log-capacity: 1048576 }
`;
const BLOCKS = ['pcie', 'dma', 'mmu', 'hbm'] as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
beforeAll(async () => {
  await require('../bin/build.js').build(); // fresh bundle once, so spawned daemons never rebuild it
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-crash-'));
  fs.writeFileSync(path.join(dir, 'config.yaml'), CONFIG);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function start(state: string): Promise<Running> {
  const p = startAccel(['daemon', '--state-dir', state, '--config', path.join(dir, 'config.yaml'), '--port', String(PORT)]);
  await p.waitFor(/accel daemon ready/);
  return p;
}

const hex = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString('hex');
/** What identifies a record's content (its syndrome names the injection uniquely). */
const content = (e: Event) => `${e.kind} ${e.block} ${e.severity} ${e.count} ${e.address} ${hex(e.syndrome)}`;

interface Ledger {
  /** dev:seq -> content, for every record an acknowledged injection reported. */
  acked: Map<string, string>;
  /** Per device: counts acknowledged, and counts sent whose fate is unknown (the daemon died). */
  ackedCount: Map<number, bigint>;
  unsureCount: Map<number, bigint>;
}

const add = (m: Map<number, bigint>, k: number, n: bigint) => m.set(k, (m.get(k) ?? 0n) + n);

/** Check the daemon's durable state against the ledger; returns how many records were checked. */
async function verify(c: AccelClient, l: Ledger): Promise<number> {
  const log = new Map<string, string>();
  const bySyndrome = new Map<string, number>();
  for (const dev of [0, 1]) {
    for (const m of await c.dump(CMD.RAS_LOG_GET, { devIndex: dev, cursor: 1 })) {
      expect(m.lost).toBeUndefined();
      for (const e of m.event ?? []) {
        const key = `${dev}:${e.seq}`;
        expect(log.has(key)).toBe(false);
        log.set(key, content(e));
        bySyndrome.set(hex(e.syndrome), (bySyndrome.get(hex(e.syndrome)) ?? 0) + 1);
      }
    }
    const [ras] = await c.do(CMD.RAS_GET, { devIndex: dev });
    const total = (ras.counter ?? []).reduce((s, x) => s + BigInt(x.aggregate ?? 0), 0n);
    // Each acknowledged injection counted once; unacknowledged ones at most once.
    expect(total).toBeGreaterThanOrEqual(l.ackedCount.get(dev) ?? 0n);
    expect(total).toBeLessThanOrEqual((l.ackedCount.get(dev) ?? 0n) + (l.unsureCount.get(dev) ?? 0n));
  }
  const missing = [...l.acked].filter(([k, v]) => log.get(k) !== v);
  expect(missing).toEqual([]);
  expect([...bySyndrome.values()].filter((n) => n !== 1)).toEqual([]); // no record twice, under any seq
  return l.acked.size;
}

test(`kill -9 at random points during acknowledged injections, ${CYCLES} times: every acknowledged record is there exactly once`, async () => {
  const state = path.join(dir, 'state-kill');
  const l: Ledger = { acked: new Map(), ackedCount: new Map(), unsureCount: new Map() };
  let n = 0;
  let kills = 0;
  const t0 = Date.now();
  for (let cycle = 0; cycle <= CYCLES; cycle++) {
    const p = await start(state);
    const c = await connectAccel({ serverPort: PORT, timeoutMs: 2000 });
    await verify(c, l);
    if (CYCLES > 5 && cycle % 10 === 0) process.stderr.write(`crash: cycle ${cycle}/${CYCLES}, ${l.acked.size} records verified, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    // A kill -9 between appends leaves nothing to repair; one inside an append, a torn tail.
    expect(p.stderr()).toMatch(/^(accel daemon: state: torn record at byte \d+ \(\d+ bytes\) truncated\n)?$/);
    if (cycle === CYCLES) { c.close(); await p.stop('SIGTERM'); break; }
    // Four writers inject until the daemon dies under them.
    let dead = false;
    const writer = async (): Promise<void> => {
      while (!dead) {
        const i = n++;
        const dev = i & 1;
        const count = 1 + (i % 5);
        const a: Accel = {
          devIndex: dev, block: BLOCKS[i % BLOCKS.length], severity: 'deferred', count, address: i * 64,
          syndrome: Uint8Array.from(Buffer.from(`c${cycle}i${i}`)),
        };
        add(l.unsureCount, dev, BigInt(count));
        let r: Accel[];
        try { r = await c.do(CMD.RAS_INJECT, a); } catch { return; }
        add(l.unsureCount, dev, -BigInt(count));
        add(l.ackedCount, dev, BigInt(count));
        for (const e of r[0].event ?? []) l.acked.set(`${dev}:${e.seq}`, content(e));
      }
    };
    const writers = [writer(), writer(), writer(), writer()];
    await sleep(30 + Math.random() * 300);
    p.proc.kill('SIGKILL');
    kills++;
    await new Promise((r) => p.proc.once('close', r));
    dead = true;
    c.close(); // requests in flight will never be answered: fail them now
    await Promise.all(writers);
    if (cycle % 2 === 1) {
      // And once more while it starts up: recovery, compaction and the snapshot rename are crash points too.
      const q = startAccel(['daemon', '--state-dir', state, '--config', path.join(dir, 'config.yaml'), '--port', String(PORT)]);
      await sleep(Math.random() * 250);
      q.proc.kill('SIGKILL');
      await new Promise((r) => q.proc.once('close', r));
      kills++;
    }
  }
  console.log(`kill -9: ${kills} cycles, ${l.acked.size} acknowledged records all present exactly once, ${n} injections sent`);
  expect(l.acked.size).toBeGreaterThan(CYCLES * 5);
}, 30000 + CYCLES * 10000);

/** Start, inject `k` records, stop cleanly; returns the records' contents by seq. */
async function seed(state: string, k: number): Promise<Map<string, string>> {
  const p = await start(state);
  const c = await connectAccel({ serverPort: PORT });
  const out = new Map<string, string>();
  for (let i = 0; i < k; i++) {
    const [r] = await c.do(CMD.RAS_INJECT, { devIndex: 0, block: 'dma', severity: 'deferred', syndrome: Uint8Array.of(i) });
    for (const e of r.event ?? []) out.set(String(e.seq), content(e));
  }
  c.close();
  await p.stop('SIGTERM');
  return out;
}

async function logOf(c: AccelClient): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const m of await c.dump(CMD.RAS_LOG_GET, { devIndex: 0, cursor: 1 })) for (const e of m.event ?? []) out.set(String(e.seq), content(e));
  return out;
}

test('damaged state files are detected, set aside and reported on stderr; the daemon starts with what could be kept', async () => {
  const state = path.join(dir, 'state-damage');
  const first = await seed(state, 6);
  const journal = path.join(state, 'journal.bin');
  // 1. A corrupt record in the middle of the journal: what precedes it is kept, the file set aside.
  const b = fs.readFileSync(journal);
  const recs: number[] = [];
  for (let at = 0; at < b.length; at += 8 + b.readUInt32LE(at)) recs.push(at);
  expect(recs.length).toBeGreaterThan(6);
  const victim = recs[recs.length - 3];
  b[victim + 10] ^= 0x55;
  fs.writeFileSync(journal, b);
  let p = await start(state);
  expect(p.stderr()).toMatch(/^accel daemon: state: corrupt record at byte \d+; file set aside as journal\.bin\.corrupt-\d+\n$/);
  expect(fs.readdirSync(state).some((f) => f.startsWith('journal.bin.corrupt-'))).toBe(true);
  let c = await connectAccel({ serverPort: PORT });
  const kept = await logOf(c);
  expect(kept.size).toBeGreaterThan(0);
  for (const [seq, v] of kept) expect(first.get(seq)).toBe(v);
  c.close();
  await p.stop('SIGTERM');
  // 2. A torn tail (a crash mid-append): truncated and reported, nothing acknowledged lost.
  const before = await seed(state, 3);
  fs.appendFileSync(journal, Buffer.from([40, 0, 0, 0, 1, 2, 3]));
  p = await start(state);
  expect(p.stderr()).toMatch(/^accel daemon: state: torn record at byte \d+ \(7 bytes\) truncated\n$/);
  c = await connectAccel({ serverPort: PORT });
  const afterTorn = await logOf(c);
  for (const [seq, v] of before) expect(afterTorn.get(seq)).toBe(v);
  c.close();
  await p.stop('SIGTERM');
  // 3. An unreadable snapshot: set aside and reported; the daemon starts, never a crash.
  fs.writeFileSync(path.join(state, 'state.json'), '{"version":1,"devices":{"0000:03:00.0":{"aggregate":');
  p = await start(state);
  expect(p.stderr()).toMatch(/accel daemon: state: snapshot unreadable \(.*\); set aside as state\.json\.corrupt-\d+/);
  expect(fs.readdirSync(state).some((f) => f.startsWith('state.json.corrupt-'))).toBe(true);
  c = await connectAccel({ serverPort: PORT });
  expect((await c.dump(CMD.DEV_GET)).length).toBe(2);
  c.close();
  await p.stop('SIGTERM');
}, 30000);
