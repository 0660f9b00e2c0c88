// A subscription across restarts that change which board sits in a slot (a state directory shared
// between configurations). The daemon keeps a RAS log per board per slot (ADDR@SERIAL,
// docs/reliability.md), and the subscription must follow those logs: one whose board comes back
// to its slot resumes where the subscriber left it (none of its records twice; they used to be
// delivered again from the first record), and one it never saw is read from its first record
// (none missed, even records made before the subscriber ever saw that board).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { type AccelEvent, type ConnectionEvent, connectAccel } from '../device/client';
import { CMD } from '../device/gen/accel';
import { type Daemon, startDaemon } from '../device';

const PORT = 0x41510000 + (process.pid & 0xfff);
const asRoot = process.getuid?.() === 0;
const it_ = asRoot ? it : it.skip; // injecting is an admin op

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-boards-')); });
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Two slots holding the boards `serials`, in that order, on the shared state dir. */
const start = (serials: string[]): Daemon => startDaemon({
  port: PORT, tick: false, stateDir: dir, config: `devices: [${serials.map((s) => `{ serial: ${s} }`).join(', ')}]`,
});
const until = async (what: string, ok: () => boolean, ms = 10000): Promise<void> => {
  for (const t0 = Date.now(); !ok(); await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
  }
};

/**
 * A subscriber that labels each RAS record with its log (slot@board, as the daemon of the moment
 * holds it), and a client that injects and restarts.
 */
async function rig(first: string[]) {
  let d = start(first);
  let boards = first;
  const c = await connectAccel({ serverPort: PORT });
  const got: { log: string; seq: number; recovered: boolean }[] = [];
  const ups: ConnectionEvent[] = [];
  const sub = await c.subscribe(['ras'], (e: AccelEvent) => {
    if (e.cmd !== 'ras-event-ntf') return;
    for (const ev of e.attrs.event ?? []) got.push({ log: `${e.attrs.devIndex}@${boards[e.attrs.devIndex!]}`, seq: Number(ev.seq), recovered: !!e.recovered });
  }, { probeMs: 50, onConnection: (e) => ups.push(e) });
  return {
    got,
    /** `n` records on device `dev`; resolves when the subscriber has the last of them. */
    async inject(dev: number, n: number): Promise<void> {
      let seq = 0;
      for (let i = 0; i < n; i++) seq = Number((await c.do(CMD.RAS_INJECT, { devIndex: dev, block: 'pcie', severity: 'correctable' }))[0].event![0].seq);
      await until(`record ${seq} of ${dev}@${boards[dev]}`, () => got.some((g) => g.log === `${dev}@${boards[dev]}` && g.seq === seq));
    },
    async restart(next: string[]): Promise<void> {
      d.close();
      const before = ups.filter((e) => e.state === 'up').length;
      await until('the subscription to notice the daemon gone', () => !sub.connected);
      boards = next; // before anything of the new daemon can be delivered
      d = start(next);
      await until('the subscription back up', () => ups.filter((e) => e.state === 'up').length > before);
      await new Promise((r) => setTimeout(r, 150)); // read-backs of the restart are in by now
    },
    /** Each log's records as [seq, recovered], in delivery order. */
    logs(): Record<string, [number, boolean][]> {
      const out: Record<string, [number, boolean][]> = {};
      for (const g of got) (out[g.log] ??= []).push([g.seq, g.recovered]);
      return out;
    },
    async close(): Promise<void> { await sub.close(); c.close(); d.close(); },
  };
}

it_('a board that comes back to its slot resumes its log: none of its records twice', async () => {
  const r = await rig(['X', 'Z']);
  try {
    await r.inject(0, 3);
    await r.restart(['Y', 'Z']); // another board in slot 0
    await r.inject(0, 2);
    await r.restart(['X', 'Z']); // X is back
    await r.inject(0, 1);
    expect(r.logs()).toEqual({
      '0@X': [[1, false], [2, false], [3, false], [4, false]],
      '0@Y': [[1, false], [2, false]],
    });
  } finally { await r.close(); }
});

it_('boards that swap slots, and a board whose log has records from before: each record at least once, none of a resumed log twice', async () => {
  // Y's log in slot 0 gets two records before the subscriber ever sees it.
  const pre = start(['Y', 'X']);
  const c0 = await connectAccel({ serverPort: PORT });
  for (let i = 0; i < 2; i++) await c0.do(CMD.RAS_INJECT, { devIndex: 0, block: 'dma', severity: 'correctable' });
  c0.close();
  pre.close();

  const r = await rig(['X', 'Y']);
  try {
    await r.inject(0, 2);
    await r.inject(1, 1);
    await r.restart(['Y', 'X']); // swapped: slot 0 holds Y's old log (2 records), slot 1 X's (none)
    await r.inject(0, 1);
    await r.inject(1, 1);
    await r.restart(['X', 'Y']); // back as they were
    await r.inject(0, 1);
    await r.inject(1, 1);
    expect(r.logs()).toEqual({
      '0@X': [[1, false], [2, false], [3, false]],
      '1@Y': [[1, false], [2, false]],
      // Never seen before the swap: read from its first record, the two old ones marked recovered.
      '0@Y': [[1, true], [2, true], [3, false]],
      '1@X': [[1, false]],
    });
  } finally { await r.close(); }
});
