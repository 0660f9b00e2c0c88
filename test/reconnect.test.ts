// Subscriptions survive daemon restarts, loss-free (issue 16). A real daemon process with a state
// directory is SIGKILLed in the middle of an injection storm and started again on the same state
// dir; `accel monitor` as root (multicast) and as nobody (unicast through the subscribe op), and
// the library's own subscriber, must each have seen every acknowledged event exactly once, in
// order, the ones raised while they reconnected marked recovered. A clean stop is heard at once
// (nlctrl DELFAMILY) and a daemon that stays away past --timeout ends the monitor with status 1.
import type { ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { type AccelClient, type AccelEvent, type ConnectionEvent, connectAccel } from '../device/client';
import { CMD } from '../device/gen/accel';
import { startDaemon } from '../device';
import { ADDON_FILE } from '../genl/native/load';
import { CTRL_CMD, GENL_ID_CTRL, createClient, parseFamily } from '../genl';
import { type Running, startAccel } from './helpers/cli';
import { type NobodyBundle, bundleForNobody } from './helpers/nobody';

const PORT = 0x414d0000 + (process.pid & 0xfff);
const asRoot = process.getuid?.() === 0;
const it_ = asRoot ? it : it.skip;
if (!asRoot) console.warn('skipping the restart tests: they inject (root) and run a monitor as nobody (runuser)');

let dir: string;
let daemon: ChildProcess | undefined;
beforeAll(async () => {
  await require('../bin/build.js').build();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-reconnect-'));
  fs.writeFileSync(path.join(dir, 'conf.yaml'), 'devices: [{}, {}]\n');
});
afterAll(() => { daemon?.kill('SIGKILL'); fs.rmSync(dir, { recursive: true, force: true }); });

/** Start the daemon process on the state dir; resolves once it prints its ready line. */
async function startDaemonProc(): Promise<ChildProcess> {
  const d = startAccel(['daemon', '--port', String(PORT), '--config', path.join(dir, 'conf.yaml'), '--state-dir', path.join(dir, 'state')]);
  daemon = d.proc;
  await d.waitFor(/ready/, 'stdout', 20000);
  return d.proc;
}
const exited = (p: ChildProcess): Promise<void> => new Promise((r) => { if (p.exitCode !== null || p.signalCode) r(); else p.once('exit', () => r()); });

/** A monitor run as nobody from a world-readable bundle of the CLI. */
function startNobodyMonitor(b: NobodyBundle, args: string[]): Running {
  return startAccel(args, {
    port: PORT, script: path.join(b.dir, 'main.js'), cwd: b.dir, uid: 65534, gid: 65534, inheritEnv: false, waitMs: 15000,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ACCELNL_NATIVE: path.join(b.dir, ADDON_FILE) },
  });
}

/** RAS events a text monitor printed: [device handle, seq, recovered], in output order. */
function seen(text: string): [string, number, boolean][] {
  const rows: [string, number, boolean][] = [];
  let handle = '';
  for (const line of text.split('\n')) {
    const h = /^\[ras,event\] (\S+):$/.exec(line);
    if (h) { handle = h[1]; continue; }
    const e = /^ {2}seq (\d+) .*?( recovered true)?$/.exec(line);
    if (e && handle) rows.push([handle, Number(e[1]), !!e[2]]);
  }
  return rows;
}

const HANDLES = ['pci/0000:03:00.0', 'pci/0000:04:00.0'];

/** Every acknowledged (handle, seq) seen exactly once; per device strictly increasing. */
function checkExactlyOnce(who: string, rows: [string, number, boolean][], acked: Map<string, Set<number>>): void {
  const byDev = new Map<string, number[]>();
  for (const [h, s] of rows) { if (!byDev.has(h)) byDev.set(h, []); byDev.get(h)!.push(s); }
  for (const [h, want] of acked) {
    const got = byDev.get(h) ?? [];
    for (let i = 1; i < got.length; i++) {
      if (got[i] <= got[i - 1]) throw new Error(`${who}: ${h} seq ${got[i]} after ${got[i - 1]} (duplicate or out of order)`);
    }
    const missing = [...want].filter((s) => !got.includes(s));
    expect({ who, h, missing }).toEqual({ who, h, missing: [] });
  }
}

describe('daemon restarts', () => {
  it_('SIGKILL during an injection storm, restart on the same state dir: every acknowledged event seen once, as root and as nobody', async () => {
    await startDaemonProc();
    const bundle = bundleForNobody('bin/main.ts');
    const root = startAccel(['monitor', 'ras', '--timeout', '20000'], { port: PORT });
    const nobody = startNobodyMonitor(bundle, ['monitor', 'ras', '--timeout', '20000']);
    // Following jobs only: nothing of theirs is read back from the RAS log, so nothing is said of it.
    const jobs = startAccel(['monitor', 'job', '--timeout', '20000'], { port: PORT });
    const lib = await connectAccel({ serverPort: PORT });
    const libRows: [string, number, boolean][] = [];
    const conn: ConnectionEvent[] = [];
    let admin: AccelClient | undefined;
    try {
      await root.waitFor(/listening to ras \(multicast\)/, 'stderr');
      await nobody.waitFor(/listening to ras \(unicast via the subscribe op\)/, 'stderr');
      await jobs.waitFor(/listening to jobs \(multicast\)/, 'stderr');
      const sub = await lib.subscribe(['ras'], (e: AccelEvent) => {
        for (const ev of e.attrs.event ?? []) libRows.push([HANDLES[e.attrs.devIndex!], Number(ev.seq), !!e.recovered]);
      }, { prefer: 'unicast', probeMs: 100, onConnection: (c) => conn.push(c) });

      const acked = new Map<string, Set<number>>(HANDLES.map((h) => [h, new Set<number>()]));
      let stop = false;
      let killed = false;
      let restarted = false;
      let failures = 0;
      let adminP: Promise<AccelClient> | undefined;
      const connect = (): Promise<AccelClient> => (adminP ??= connectAccel({ serverPort: PORT, timeoutMs: 1000 })
        .then((c) => (admin = c), (e) => { adminP = undefined; throw e; }));
      // Four injectors; failures while the daemon is away are retried (the event may or may not
      // have been logged: only acknowledged ones are required, none may be seen twice).
      const injector = async (w: number): Promise<void> => {
        for (let i = 0; !stop; i++) {
          const dev = (w + i) % 2;
          try {
            const c = await connect();
            const [r] = await c.do(CMD.RAS_INJECT, { devIndex: dev, block: 'dma', severity: 'deferred' });
            for (const ev of r.event ?? []) acked.get(HANDLES[dev])!.add(Number(ev.seq));
          } catch {
            failures++;
            await new Promise((res) => setTimeout(res, 20));
          }
        }
      };
      const workers = [0, 1, 2, 3].map(injector);
      const total = (): number => [...acked.values()].reduce((n, s) => n + s.size, 0);
      const until = async (cond: () => boolean, ms: number, what: string, detail?: () => string): Promise<void> => {
        const end = Date.now() + ms;
        while (!cond()) {
          if (Date.now() > end) throw new Error(`timed out: ${what}${detail ? `: ${detail()}` : ''}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      await until(() => total() >= 150, 20000, 'injections before the kill');
      daemon!.kill('SIGKILL');
      killed = true;
      await exited(daemon!);
      await new Promise((r) => setTimeout(r, 400)); // away for a while: the monitors notice
      await startDaemonProc();
      restarted = true;
      // Injections at once, on a new connection: the injectors' requests in flight at the kill
      // hold them up to their 1 s timeout, long enough for a unicast subscriber's next look
      // (500 ms) to find the new daemon first, and then it has no gap to read back. These fall in
      // its gap.
      const first = await connectAccel({ serverPort: PORT, timeoutMs: 5000 });
      try {
        for (let i = 0; i < 10; i++) {
          const [r] = await first.do(CMD.RAS_INJECT, { devIndex: i % 2, block: 'dma', severity: 'deferred' });
          for (const ev of r.event ?? []) acked.get(HANDLES[i % 2])!.add(Number(ev.seq));
        }
      } finally {
        first.close();
      }
      const atRestart = total();
      await until(() => total() >= atRestart + 150, 20000, 'injections after the restart');
      stop = true;
      await Promise.all(workers);
      expect({ killed, restarted }).toEqual({ killed: true, restarted: true });

      // Everyone catches up with the last acknowledged event of each device.
      const last = HANDLES.map((h) => Math.max(...acked.get(h)!));
      const caughtUp = (rows: [string, number, boolean][]): boolean =>
        HANDLES.every((h, i) => rows.some(([hh, s]) => hh === h && s === last[i]));
      const lagging = (): string => [['root monitor', seen(root.stdout())], ['nobody monitor', seen(nobody.stdout())], ['library', libRows] as const]
        .filter(([, rows]) => !caughtUp(rows as [string, number, boolean][]))
        .map(([who, rows]) => `${who} (last seen ${HANDLES.map((h) => Math.max(0, ...(rows as [string, number, boolean][]).filter(([hh]) => hh === h).map(([, x]) => x))).join('/')})`)
        .join(', ');
      await until(() => caughtUp(seen(root.stdout())) && caughtUp(seen(nobody.stdout())) && caughtUp(libRows), 20000,
        'the subscribers catching up', () => `${lagging()} of last acknowledged ${last.join('/')}`);
      checkExactlyOnce('root monitor', seen(root.stdout()), acked);
      checkExactlyOnce('nobody monitor', seen(nobody.stdout()), acked);
      checkExactlyOnce('library', libRows, acked);

      // The gap was read back from the log and marked so: a unicast subscriber learns of the
      // restart only from its next look at the daemon's socket (500 ms), while the injectors
      // resume at once. (Root hears NEWFAMILY before the new daemon's first event, and may have
      // no gap at all.) The monitors said what happened.
      expect(seen(nobody.stdout()).some(([, , r]) => r)).toBe(true);
      console.log(`recovered after the restart: root ${seen(root.stdout()).filter(([, , r]) => r).length}, ` +
        `nobody ${seen(nobody.stdout()).filter(([, , r]) => r).length}, library ${libRows.filter(([, , r]) => r).length}`);
      for (const m of [root, nobody]) {
        expect(m.stderr()).toMatch(/accel monitor: lost the daemon at netlink port 0x[0-9a-f]+ \(.*\); waiting up to 20000 ms for it\n/);
        expect(m.stderr()).toMatch(/accel monitor: the daemon is back \(restarted\); \d+ events? read back from the RAS log\n/);
      }
      await jobs.waitFor(/accel monitor: the daemon is back/, 'stderr');
      expect(jobs.stderr()).toMatch(/accel monitor: the daemon is back \(restarted\)\n/);
      expect(conn.map((c) => c.state)).toEqual(['down', 'up']);
      expect(conn[1]).toMatchObject({ state: 'up', restarted: true });
      expect(sub.connected).toBe(true);
      await sub.close();
      // Nothing was seen that the log does not hold (no invented or doubled records).
      const log = await admin!.dump(CMD.RAS_LOG_GET, { devIndex: 0, cursor: 1 });
      const inLog = new Set(log.flatMap((m) => (m.event ?? []).map((e) => Number(e.seq))));
      expect(seen(root.stdout()).filter(([h, s]) => h === HANDLES[0] && !inLog.has(s))).toEqual([]);
      console.log(`restart storm: ${total()} acknowledged, ${failures} injections failed while the daemon was away`);
    } finally {
      daemon?.kill('SIGKILL');
      if (daemon) await exited(daemon);
      admin?.close();
      lib.close();
      await Promise.all([root.stop(), nobody.stop(), jobs.stop()]);
      bundle.dispose();
    }
  }, 90000);

  it_('a clean stop is heard at once (nlctrl DELFAMILY, root); away past --timeout, monitor says so and exits 1, as root and as nobody', async () => {
    const d = await startDaemonProc();
    const bundle = bundleForNobody('bin/main.ts');
    const mon = startAccel(['-j', 'monitor', 'ras', '--timeout', '1500'], { port: PORT });
    const nob = startNobodyMonitor(bundle, ['monitor', 'ras', '--timeout', '1500']);
    const lib = await connectAccel({ serverPort: PORT });
    const conn: ConnectionEvent[] = [];
    try {
      await mon.waitFor(/listening to ras \(multicast\)/, 'stderr');
      await nob.waitFor(/listening to ras \(unicast via the subscribe op\)/, 'stderr');
      // A slow sock_diag timer: the down event below can only come this fast from DELFAMILY.
      await lib.subscribe(['ras'], () => undefined, { probeMs: 60000, onConnection: (c) => conn.push(c) });
      const t0 = Date.now();
      d.kill('SIGTERM');
      await exited(d);
      const end = Date.now() + 3000;
      while (!conn.length && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      expect(conn[0]).toMatchObject({ state: 'down', reason: expect.stringMatching(/DELFAMILY/) });
      expect(Date.now() - t0).toBeLessThan(2000);
      // The monitor's own twice-a-second look may beat the datagram to it: either way, at once.
      await mon.waitFor(/lost the daemon .*(DELFAMILY|nothing is bound)/, 'stderr', 3000);
      // nobody cannot join nlctrl's notify group: it finds the daemon's socket gone.
      await nob.waitFor(/lost the daemon .*nothing is bound at netlink port/, 'stderr', 3000);
      for (const [who, m] of [['root', mon], ['nobody', nob]] as const) {
        const r = await m.stop('SIGCONT'); // not a stop: wait for it to give up by itself
        expect({ who, code: r.code }).toEqual({ who, code: 1 });
        expect(r.stderr).toMatch(/accel monitor: the daemon at netlink port 0x[0-9a-f]+ stayed away for 1500 ms; giving up\.\n$/);
      }
      expect(JSON.parse(mon.stdout())).toEqual({ mon: [] }); // the JSON document is still closed
    } finally {
      lib.close();
      await Promise.all([mon.stop(), nob.stop()]);
      bundle.dispose();
      d.kill('SIGKILL');
    }
  }, 30000);

  it_('the daemon announces its families on nlctrl notify as the kernel does: NEWFAMILY then NEWMCAST_GRP at start, DELMCAST_GRP then DELFAMILY at a clean stop', async () => {
    const P4 = 0x41500000 + (process.pid & 0xfff);
    const c = createClient({ serverPort: P4 });
    const seen: string[] = [];
    c.join(GENL_ID_CTRL);
    c.onEvent((m) => {
      if (m.type !== GENL_ID_CTRL) return;
      const f = parseFamily(m);
      seen.push(`${m.cmd === CTRL_CMD.NEWFAMILY ? 'new' : m.cmd === CTRL_CMD.DELFAMILY ? 'del' : m.cmd === CTRL_CMD.NEWMCAST_GRP ? 'newgrp' : 'delgrp'} ${f.name} ${[...f.groups.keys()].join(',')}`);
    });
    const d = startDaemon({ port: P4, config: 'devices: [{}]', tick: false });
    try {
      const until = async (n: number): Promise<void> => {
        const end = Date.now() + 3000;
        while (seen.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      };
      await until(1);
      await new Promise((r) => setTimeout(r, 100));
      const started = seen.splice(0);
      expect(started.filter((x) => x.startsWith('new ')).map((x) => x.split(' ')[1])).toEqual(expect.arrayContaining(['accel', 'drm-ras']));
      const accelAt = started.findIndex((x) => x.startsWith('new accel '));
      expect(started.slice(accelAt, accelAt + 4)).toEqual(['new accel config,ras,jobs', 'newgrp accel config', 'newgrp accel ras', 'newgrp accel jobs']);
      d.close();
      await until(started.length);
      const accelDel = seen.findIndex((x) => x.startsWith('delgrp accel '));
      expect(seen.slice(accelDel, accelDel + 4)).toEqual(['delgrp accel config', 'delgrp accel ras', 'delgrp accel jobs', 'del accel config,ras,jobs']);
      expect(seen.filter((x) => x.startsWith('del ')).length).toBe(started.filter((x) => x.startsWith('new ')).length);
    } finally {
      c.close();
      d.close();
    }
  });

  it_('a daemon without --state-dir restarts with a new log: its records are delivered from 1, not taken for ones already seen', async () => {
    const P3 = 0x414f0000 + (process.pid & 0xfff);
    for (const prefer of ['multicast', 'unicast'] as const) {
      let d = startDaemon({ port: P3, config: 'devices: [{}]', tick: false });
      const c = await connectAccel({ serverPort: P3 });
      const got: [number, boolean][] = [];
      const conn: ConnectionEvent[] = [];
      const sub = await c.subscribe(['ras'], (e) => { for (const ev of e.attrs.event ?? []) got.push([Number(ev.seq), !!e.recovered]); },
        { prefer, probeMs: 50, onConnection: (x) => conn.push(x) });
      const inject = async (): Promise<void> => {
        const a = await connectAccel({ serverPort: P3 });
        try { await a.do(CMD.RAS_INJECT, { devIndex: 0, block: 'mmu', severity: 'deferred' }); } finally { a.close(); }
      };
      const until = async (cond: () => boolean): Promise<void> => {
        const end = Date.now() + 5000;
        while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      };
      try {
        for (let i = 0; i < 3; i++) await inject();
        await until(() => got.length === 3);
        d.close();
        await until(() => conn.length === 1);
        d = startDaemon({ port: P3, config: 'devices: [{}]', tick: false });
        await inject(); // seq 1 and 2 of the new log, possibly before the client is back
        await inject();
        await until(() => got.length === 5 && conn.length === 2);
        await inject();
        await until(() => got.length === 6);
        expect({ prefer, seqs: got.map(([q]) => q) }).toEqual({ prefer, seqs: [1, 2, 3, 1, 2, 3] });
        expect(got.slice(0, 3).every(([, r]) => !r)).toBe(true);
        expect(got[5][1]).toBe(false); // live again after the resume
        expect(conn.map((x) => x.state)).toEqual(['down', 'up']);
      } finally {
        await sub.close();
        c.close();
        d.close();
      }
    }
  }, 30000);
});
