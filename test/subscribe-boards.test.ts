// A subscription across restarts that change which board sits in a slot: a state directory shared
// between two seeds, so device 0 is board X, then board Y, then X again. Each board's state (its
// RAS log) follows its serial (docs/reliability.md); the subscription must follow it too: when X
// comes back, its log resumes where the subscriber left it, and X's records are not delivered a
// second time (they used to be, from X's first record, marked recovered).
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
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-boards-')); });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const start = (seed: number): Daemon => startDaemon({ port: PORT, seed, config: 'devices: [{}]', stateDir: dir, tick: false });
const until = async (what: string, ok: () => boolean, ms = 10000): Promise<void> => {
  for (const t0 = Date.now(); !ok(); await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
  }
};

it_('a board that comes back to its slot resumes its log: none of its records twice', async () => {
  let d = start(1);
  const c = await connectAccel({ serverPort: PORT });
  const got: [string, number, boolean][] = []; // [serial of the daemon's board, seq, recovered]
  let serial = '';
  const ups: ConnectionEvent[] = [];
  const sub = await c.subscribe(['ras'], (e: AccelEvent) => {
    if (e.cmd === 'ras-event-ntf') for (const ev of e.attrs.event ?? []) got.push([serial, Number(ev.seq), !!e.recovered]);
  }, { probeMs: 50, onConnection: (e) => ups.push(e) });
  const inject = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await c.do(CMD.RAS_INJECT, { devIndex: 0, block: 'pcie', severity: 'correctable' });
  };
  const boardNow = async (): Promise<string> => (await c.do(CMD.DEV_GET, { devIndex: 0 }))[0].serial!;
  const restart = async (seed: number): Promise<void> => {
    d.close();
    const before = ups.filter((e) => e.state === 'up').length;
    await until('the subscription to notice the daemon gone', () => !sub.connected);
    d = start(seed);
    serial = d.rt.emu.devices.get(0)!.serial; // before anything of the new daemon can be delivered
    await until('the subscription back up', () => ups.filter((e) => e.state === 'up').length > before);
    expect(await boardNow()).toBe(serial);
  };
  try {
    serial = await boardNow();
    const x = serial;
    await inject(3);
    await until('X\'s 3 events', () => got.length === 3);

    await restart(2); // board Y in slot 0
    const y = serial;
    expect(y).not.toBe(x);
    await inject(2);
    await until('Y\'s 2 events', () => got.filter(([s]) => s === y).length >= 2);

    await restart(1); // X is back
    expect(serial).toBe(x);
    await inject(1);
    await until('X\'s fourth event', () => got.some(([s, q]) => s === x && q === 4));
    await new Promise((r) => setTimeout(r, 200)); // anything read back late would be here by now

    const xs = got.filter(([s]) => s === x).map(([, q, r]) => [q, r]);
    expect(xs).toEqual([[1, false], [2, false], [3, false], [4, false]]);
    // Y was new to the subscriber: each of its records at least once, in order.
    const ys = got.filter(([s]) => s === y).map(([, q]) => q);
    expect([...new Set(ys)]).toEqual([1, 2]);
  } finally {
    await sub.close();
    c.close();
    d.close();
  }
});
