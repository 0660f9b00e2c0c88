// Security on real sockets: admin ops refused with EPERM to non-root callers by SCM_CREDENTIALS
// (every admin op of accel and every op of drm-ras), an admin-group that lets a group in, events
// forged by another socket never delivered, the client refusing a server of the wrong uid, the
// daemon refusing a port that is taken, and the documented limits with their errnos.
import { spawn } from 'child_process';
import * as path from 'path';
import * as A from '../attrs';
import * as G from '../genl';
import { type Daemon, startDaemon } from '../device';
import { type AccelEvent, connectAccel } from '../device/client';
import { CMD, spec } from '../device/gen/accel';
import { spec as rasSpec } from '../device/gen/drm-ras';
import { MAX_SUBSCRIBERS, MAX_SUBSCRIBERS_PER_UID } from '../device/families/accel';
import { writeAttrs } from '../genl/ynl';
import { messagesOf } from './helpers/mirror';
import { openSocket } from '../genl/socket';
import { ADDON_FILE } from '../genl/native/load';
import { runAccel } from './helpers/cli';
import { bundleForNobody, type NobodyBundle } from './helpers/nobody';

const PORT = 0x41510000 + (process.pid & 0xfff);
const GROUP_PORT = 0x41520000 + (process.pid & 0xfff);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the admin ops must be (the list, as the specs name them), and all of drm-ras. */
const ACCEL_ADMIN = ['dev-set', 'dev-new', 'dev-del', 'ras-clear', 'ras-inject', 'health-recover', 'health-test'];

/**
 * The probe, run as nobody (or another group): for every op of accel and drm-ras that nlctrl
 * lists, a do and/or a dump with a device handle, printed as { "family op do|dump": errno }.
 */
const PROBE = `
  import { createClient } from './genl';
  import { putU32 } from './attrs';
  (async () => {
    const [port, fams] = [Number(process.argv[2]), process.argv[3].split(',')];
    const c = createClient({ serverPort: port, timeoutMs: 3000 });
    const out: Record<string, number> = {};
    for (const name of fams) {
      const f = await c.resolve(name);
      for (const op of f.ops) {
        for (const dump of [false, true]) {
          if (!(op.flags & (dump ? 4 : 2))) continue;
          const fill = (w: any) => putU32(w, 1, 0);
          try {
            if (dump) { for await (const _ of c.dump(f.id, op.id, { fill })) { /* drain */ } }
            else await c.request(f.id, op.id, { fill });
            out[name + ' ' + op.id + ' ' + (dump ? 'dump' : 'do')] = 0;
          } catch (e) { out[name + ' ' + op.id + ' ' + (dump ? 'dump' : 'do')] = (e as { errno: number }).errno; }
        }
      }
    }
    process.stdout.write(JSON.stringify(out) + '\\n');
    c.close();
  })();
`;

let probe: NobodyBundle;
let d: Daemon;
beforeAll(async () => {
  probe = bundleForNobody({ code: PROBE });
  d = startDaemon({ port: PORT, config: 'devices: [{}, {}]', tick: false });
});
afterAll(() => { d.close(); probe.dispose(); });

/** Start a bundle as nobody with primary group `group` (runuser -g); its output once it exits. */
function spawnNobody(b: NobodyBundle, args: string[], group = 'nogroup') {
  const proc = spawn('runuser', ['-u', 'nobody', '-g', group, '--', process.execPath, path.join(b.dir, 'main.js'), ...args],
    { cwd: b.dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ACCELNL_NATIVE: path.join(b.dir, ADDON_FILE) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  proc.stdout.on('data', (x) => { out += x; });
  proc.stderr.on('data', (x) => { err += x; });
  const done = new Promise<{ code: number | null; out: string; err: string }>((r) => proc.on('close', (code) => r({ code, out, err })));
  return { proc, done, out: () => out };
}

async function runProbe(port: number, group: string): Promise<Record<string, number>> {
  const r = await spawnNobody(probe, [String(port), 'accel,drm-ras'], group).done;
  if (r.code !== 0) throw new Error(`probe exited ${r.code}: ${r.err}`);
  return JSON.parse(r.out);
}

/** Op names by family and cmd, and which ops nlctrl reports with GENL_ADMIN_PERM. */
async function opTable(port: number) {
  const c = G.createClient({ serverPort: port });
  const names = new Map<string, string>();
  const admin = new Set<string>();
  for (const fam of ['accel', 'drm-ras']) {
    const f = await c.resolve(fam);
    const famSpec = fam === 'accel' ? spec : rasSpec;
    for (const op of f.ops) {
      const name = famSpec.operations.find((o) => o.value === op.id)!.name;
      names.set(`${fam} ${op.id}`, `${fam} ${name}`);
      if (op.flags & G.GENL_OP.ADMIN_PERM) admin.add(`${fam} ${name}`);
    }
  }
  c.close();
  return { names, admin };
}

test('as nobody: every admin op is refused with EPERM (SCM_CREDENTIALS), every other op is not', async () => {
  const { names, admin } = await opTable(PORT);
  for (const op of ACCEL_ADMIN) expect(admin).toContain(`accel ${op}`);
  for (const op of ['list-nodes', 'get-error-counter', 'clear-error-counter']) expect(admin).toContain(`drm-ras ${op}`);
  const got = await runProbe(PORT, 'nogroup');
  const wrong: string[] = [];
  for (const [k, errno] of Object.entries(got)) {
    const [fam, id, half] = k.split(' ');
    const name = names.get(`${fam} ${id}`)!;
    if (admin.has(name) !== (errno === 1)) wrong.push(`${name} ${half}: errno ${errno}`);
  }
  expect(wrong).toEqual([]);
  expect(Object.keys(got).length).toBeGreaterThan(admin.size);
});

test('admin-group: a member (by primary gid) may run admin ops; other groups still get EPERM; an unknown group is a config error', async () => {
  const gd = startDaemon({ port: GROUP_PORT, config: 'admin-group: nogroup\ndevices: [{}, {}]', tick: false });
  try {
    const { names, admin } = await opTable(GROUP_PORT);
    const member = await runProbe(GROUP_PORT, 'nogroup');
    const eperm = Object.entries(member).filter(([, e]) => e === 1).map(([k]) => names.get(k.split(' ').slice(0, 2).join(' ')));
    expect(eperm).toEqual([]);
    const other = await runProbe(GROUP_PORT, 'daemon');
    const refused = new Set(Object.entries(other).filter(([, e]) => e === 1).map(([k]) => names.get(k.split(' ').slice(0, 2).join(' '))));
    expect([...refused].sort()).toEqual([...admin].sort());
  } finally {
    gd.close();
  }
  expect(() => startDaemon({ port: GROUP_PORT, config: 'admin-group: no-such-group-here', tick: false })).toThrow(/admin-group: no group "no-such-group-here" in \/etc\/group/);
}, 20000);

test('events forged by another socket (any user may send to a USERSOCK group) are never delivered', async () => {
  const c = await connectAccel({ serverPort: PORT });
  const seen: AccelEvent[] = [];
  const sub = await c.subscribe(['ras'], (e) => seen.push(e));
  expect(sub.mode).toBe('multicast');
  const group = c.family.groups.get('ras')!;
  // A well-formed ras-event-ntf, as the server would send it, from another port: as nobody...
  const w = A.newWriter(256);
  const at = G.genlStart(w, c.family.id, 0, 0, 0, CMD.RAS_EVENT_NTF, 1);
  writeAttrs(w, spec, 'accel', { devIndex: 0, event: [{ devIndex: 0, seq: 999999, kind: 'error', block: 'hbm', severity: 'uncorrectable-fatal', count: 1 }] });
  G.msgEnd(w, at);
  const forged = Buffer.from(A.bytes(w)).toString('hex');
  const forger = await (bundleForNobody({ code: `
    import { openSocket } from './genl/socket';
    const s = openSocket({ protocol: 2, onBatch: () => {} });
    const r = s.send(Buffer.from(process.argv[2], 'hex'), 0, 1 << (Number(process.argv[3]) - 1));
    process.stdout.write(String(r)); s.close();` }));
  try {
    const r = await forger.run([forged, String(group)]);
    expect(r.stdout).toBe('-111'); // delivered to the group (USERSOCK reports ECONNREFUSED after a group send)
    // ...and as root, straight to the subscriber's port.
    const root = openSocket({ protocol: G.NETLINK_USERSOCK, onBatch: () => {} });
    root.send(A.bytes(w), c.genl.port);
    root.close();
    await c.do(CMD.RAS_INJECT, { devIndex: 0, block: 'dma', severity: 'deferred' });
    await sleep(100);
    const ras = seen.filter((e) => e.cmd === 'ras-event-ntf');
    expect(ras.length).toBe(1);
    expect(ras[0].attrs.event![0]).toMatchObject({ block: 'dma', severity: 'deferred' });
    expect(seen.some((e) => e.attrs.event?.[0]?.seq === 999999)).toBe(false);
  } finally {
    forger.dispose();
    await sub.close();
    c.close();
  }
});

test('the client checks the server credentials: a root client refuses a daemon running as nobody unless told its uid', async () => {
  const fake = bundleForNobody({ code: `
    import { startDaemon } from './device';
    startDaemon({ port: Number(process.argv[2]), tick: false, computeThreads: 0 });
    process.stdout.write('ready\\n');
    setTimeout(() => process.exit(0), 15000).unref();
    setInterval(() => {}, 1000);` });
  const port = 0x41530000 + (process.pid & 0xfff);
  const p = spawnNobody(fake, [String(port)]);
  try {
    const t0 = Date.now();
    while (!p.out().includes('ready') && Date.now() - t0 < 5000) await sleep(20);
    await expect(connectAccel({ serverPort: port })).rejects.toMatchObject({
      errno: 1, message: expect.stringContaining(`the server at port 0x${port.toString(16)} runs as uid 65534, not 0`),
    });
    const ok = await connectAccel({ serverPort: port, serverUid: 65534 });
    expect((await ok.dump(CMD.DEV_GET)).length).toBe(2);
    ok.close();
    const unchecked = await connectAccel({ serverPort: port, serverUid: null });
    unchecked.close();
  } finally {
    p.proc.kill('SIGTERM'); // runuser passes it on to the daemon
    await p.done;
    fake.dispose();
  }
}, 20000);

test('the daemon refuses to start on a port that is already bound (CLI: exit 1, a message naming the port)', async () => {
  await require('../bin/build.js').build();
  const r = await runAccel(['daemon', '--port', String(PORT)]);
  expect(r.code).toBe(1);
  expect(r.stderr).toBe(`accel daemon: netlink port 0x${PORT.toString(16)} is already bound (is another daemon running?)\n`);
}, 30000);

describe('limits, each with its errno', () => {
  /** Raw exchange with the daemon on a socket of our own. */
  const peer = (sndbuf?: number) => {
    const got: Uint8Array[] = [];
    const s = openSocket({ protocol: G.NETLINK_USERSOCK, sndbuf, onBatch: (b) => { for (let i = 0; i < b.count; i++) got.push(new Uint8Array(b.data(i))); } });
    return { s, got };
  };
  const accelId = () => G.familyByName(G.registryOf(d.served.srv), 'accel')!.id!;

  test('maximum message size: a datagram over 256 KiB gets EMSGSIZE with the limit in the message', async () => {
    const { s, got } = peer(1 << 20); // a send buffer that allows it
    const w = A.newWriter(128);
    const at = G.genlStart(w, accelId(), G.NLM_F.REQUEST | G.NLM_F.ACK, 42, 0, CMD.DEV_GET, 1);
    for (let i = 0; i < 4; i++) A.putBytes(w, 60, new Uint8Array(65000));
    A.putBytes(w, 60, new Uint8Array(10000));
    G.msgEnd(w, at);
    s.send(A.bytes(w), PORT);
    await sleep(50);
    s.close();
    const msgs = got.flatMap((x) => messagesOf(x));
    expect(msgs.map((x) => [x.type, x.seq, G.decodeStatus(x)])).toEqual([[G.NLMSG.ERROR, 42,
      { error: -90, extack: { msg: `message of ${w.len} bytes exceeds the server's 262144-byte limit` } }]]);
  });

  test('dump state per port: one dump at a time; a second on the same socket gets EBUSY', async () => {
    const { s, got } = peer();
    const w = A.newWriter(128);
    for (const seq of [1, 2]) {
      const at = G.genlStart(w, G.GENL_ID_CTRL, G.NLM_F.REQUEST | G.NLM_F.ACK | G.NLM_F.DUMP, seq, 0, G.CTRL_CMD.GETPOLICY, 1);
      A.putString(w, G.CTRL_ATTR.FAMILY_NAME, 'accel');
      G.msgEnd(w, at);
    }
    s.send(A.bytes(w), PORT); // both in one datagram: the first is still running when the second arrives
    // Until the first dump's DONE (up to 3 s: a fixed 100 ms saw nothing yet on a loaded CI machine).
    const doneOf = (seq: number) => got.flatMap((x) => messagesOf(x)).some((m) => m.seq === seq && m.type === G.NLMSG.DONE);
    for (let t = 0; t < 300 && !doneOf(1); t++) await sleep(10);
    s.close();
    const msgs = got.flatMap((x) => messagesOf(x));
    const status = msgs.filter((m) => m.type === G.NLMSG.ERROR || m.type === G.NLMSG.DONE).map((m) => [m.seq, m.type, G.decodeStatus(m).error]);
    expect(status).toEqual([[2, G.NLMSG.ERROR, -16], [1, G.NLMSG.DONE, 0]]);
  });

  test(`subscribers per group: ${MAX_SUBSCRIBERS}; one more gets ENOSPC`, async () => {
    const hub = G.newHub();
    const hd = startDaemon({ port: PORT, tick: false, open: (onBatch) => G.openInproc(hub, { port: PORT, onBatch }) });
    const clients: G.Client[] = [];
    try {
      const put = (w: A.Writer) => writeAttrs(w, spec, 'accel', { group: 'ras' });
      const id = G.familyByName(G.registryOf(hd.served.srv), 'accel')!.id!;
      for (let i = 0; i < MAX_SUBSCRIBERS; i++) {
        // Many users (each may hold MAX_SUBSCRIBERS_PER_UID).
        const uid = 10000 + (i % 32);
        const c = G.createClient({ serverPort: PORT, open: (onBatch) => G.openInproc(hub, { onBatch, uid }) });
        clients.push(c);
        await c.request(id, CMD.SUBSCRIBE, { fill: put });
      }
      const late = G.createClient({ serverPort: PORT, open: (onBatch) => G.openInproc(hub, { onBatch, uid: 10000 }) });
      clients.push(late);
      await expect(late.request(id, CMD.SUBSCRIBE, { fill: put })).rejects.toMatchObject({ errno: 28, extack: { msg: `group already has ${MAX_SUBSCRIBERS} subscribers` } });
      // A subscriber that leaves frees its place.
      await clients[0].request(id, CMD.UNSUBSCRIBE, { fill: put });
      await late.request(id, CMD.SUBSCRIBE, { fill: put });
    } finally {
      for (const c of clients) c.close();
      hd.close();
    }
  }, 20000);

  test(`subscribers per group from one non-admin uid: ${MAX_SUBSCRIBERS_PER_UID}; root is not limited so`, async () => {
    const hub = G.newHub();
    const hd = startDaemon({ port: PORT, tick: false, open: (onBatch) => G.openInproc(hub, { port: PORT, onBatch }) });
    const clients: G.Client[] = [];
    const client = (uid: number) => {
      const c = G.createClient({ serverPort: PORT, open: (onBatch) => G.openInproc(hub, { onBatch, uid }) });
      clients.push(c);
      return c;
    };
    try {
      const put = (w: A.Writer) => writeAttrs(w, spec, 'accel', { group: 'ras' });
      const id = G.familyByName(G.registryOf(hd.served.srv), 'accel')!.id!;
      for (let i = 0; i < MAX_SUBSCRIBERS_PER_UID; i++) await client(65534).request(id, CMD.SUBSCRIBE, { fill: put });
      await expect(client(65534).request(id, CMD.SUBSCRIBE, { fill: put })).rejects.toMatchObject({
        errno: 28, extack: { msg: `uid 65534 already has ${MAX_SUBSCRIBERS_PER_UID} subscribers to ras` } });
      // Subscribing again from a port that already is one is not a new subscriber.
      await clients[0].request(id, CMD.SUBSCRIBE, { fill: put });
      await client(65533).request(id, CMD.SUBSCRIBE, { fill: put });
      await client(0).request(id, CMD.SUBSCRIBE, { fill: put });
      for (let i = 0; i < MAX_SUBSCRIBERS_PER_UID; i++) await client(0).request(id, CMD.SUBSCRIBE, { fill: put });
    } finally {
      for (const c of clients) c.close();
      hd.close();
    }
  }, 20000);

  test('nest depth: the validator refuses the 10th level of policy recursion with EINVAL (see test/fuzz/props.test.ts)', () => {
    const self: A.Policy = A.policy({ 2: A.pol.u32() }, 2);
    (self.entries as A.PolicyEntry[])[1] = A.pol.nested(self, 2);
    const w = A.newWriter(64);
    const open: number[] = [];
    for (let i = 0; i < 10; i++) open.push(A.nestStart(w, 1));
    A.putU32(w, 2, 1);
    while (open.length) A.nestEnd(w, open.pop()!);
    const ext = A.newExtack();
    expect(A.validate(A.view(A.bytes(w)), 0, w.len, 2, self, A.NL_VALIDATE.STRICT, ext)).toBe(-22);
    expect(ext.msg).toBe('allowed policy recursion depth exceeded');
  });
});
