// devlink objects an accelerator has none of (shared buffers, params, regions, traps, trap groups
// and policers, rates, line cards): the kernel registers these dumps for every instance and a
// driver without them dumps nothing, so `devlink dev param show` & co. print nothing and succeed.
// They were EOPNOTSUPP ("kernel answers: Operation not supported", exit 1) before.
import * as fs from 'fs';
import * as path from 'path';
import * as A from '../attrs';
import * as G from '../genl';
import { type Daemon, manualClock, startDaemon } from '../device';
import { CMD, DEVLINK } from '../device/gen/devlink';
import { runAccel } from './helpers/cli';

const NONE = { SB_GET: 11, PARAM_GET: 38, REGION_GET: 42, TRAP_GET: 61, TRAP_GROUP_GET: 65, TRAP_POLICER_GET: 69, RATE_GET: 74, LINECARD_GET: 78 } as const;
const INPROC_PORT = 0x41434347;

describe('devlink: empty dumps over the wire', () => {
  let d: Daemon;
  let c: G.Client;
  let fam: G.FamilyInfo;
  beforeEach(async () => {
    const hub = G.newHub();
    d = startDaemon({ port: INPROC_PORT, tick: false, clock: manualClock(), open: (onBatch) => G.openInproc(hub, { port: INPROC_PORT, onBatch }) });
    c = G.createClient({ serverPort: INPROC_PORT, open: (onBatch) => G.openInproc(hub, { onBatch, uid: 65534 }) });
    fam = await c.resolve('devlink');
  });
  afterEach(() => { c.close(); d.close(); });

  const dump = async (cmd: number, fill?: (w: A.Writer) => void) => {
    const out: G.Message[] = [];
    for await (const m of c.dump(fam.id, cmd, { fill })) out.push(m);
    return out;
  };
  const handle = (dev: string) => (w: A.Writer) => { A.putString(w, DEVLINK.BUS_NAME, 'pci'); A.putString(w, DEVLINK.DEV_NAME, dev); };

  test('the ids are the uapi ones, listed by nlctrl as dump-only and open to any user', () => {
    for (const [k, id] of Object.entries(NONE)) expect([k, CMD[k as keyof typeof NONE]]).toEqual([k, id]);
    const flags = new Map(fam.ops.map((o) => [o.id, o.flags]));
    for (const id of Object.values(NONE)) expect([id, flags.get(id)! & 0x07]).toEqual([id, 0x04]); // dumpit, not doit, not admin
  });

  test.each(Object.entries(NONE))('%s: empty dump of all and of one instance; an unknown instance is ENODEV; a do is EOPNOTSUPP', async (_, id) => {
    expect(await dump(id)).toEqual([]);
    expect(await dump(id, handle('0000:03:00.0'))).toEqual([]);
    await expect(dump(id, handle('0000:99:00.0'))).rejects.toMatchObject({ errno: 19 });
    await expect(c.request(fam.id, id, { fill: handle('0000:03:00.0') })).rejects.toMatchObject({ errno: 95 });
  });
});

const DEVLINK_BIN = ['/usr/sbin/devlink', '/sbin/devlink', '/usr/bin/devlink'].find((p) => fs.existsSync(p));
const SHIM = process.env.ACCELNL_SHIM ?? path.resolve(__dirname, '../shim/build/accelnl_shim.so');
const why = !DEVLINK_BIN ? 'the iproute2 devlink binary is not installed (package iproute2)'
  : !fs.existsSync(SHIM) ? `the preload shim ${SHIM} is not built (node shim/build.js)` : undefined;
if (why) console.warn(`devlink empty dumps through accel wrap: skipped: ${why}`);

(why ? describe.skip : describe)('stock devlink through accel wrap: objects an accelerator has none of', () => {
  const PORT = 0x41450000 + (process.pid & 0xffff);
  let d: Daemon;
  beforeAll(() => { d = startDaemon({ port: PORT, tick: false }); });
  afterAll(() => d?.close());
  const devlink = (...args: string[]) => runAccel(['wrap', '--port', String(PORT), '--', 'devlink', ...args], { timeoutMs: 20000 });

  test.each([
    [['dev', 'param', 'show'], 'param'], [['sb', 'show'], 'sb'], [['region', 'show'], 'regions'], [['trap', 'show'], 'trap'],
    [['trap', 'group', 'show'], 'trap_group'], [['trap', 'policer', 'show'], 'trap_policer'], [['lc', 'show'], 'lc'],
    [['port', 'function', 'rate', 'show'], 'rate'],
  ])('devlink %j prints nothing and succeeds; -j is an empty section', async (args, section) => {
    const r = await devlink(...args);
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: '', stderr: '' });
    const j = await devlink('-j', ...args);
    expect(j.code).toBe(0);
    const doc = JSON.parse(j.stdout);
    expect(Object.values(doc)).toEqual([{}]);
    expect(Object.keys(doc)[0]).toMatch(new RegExp(`^${section}`));
  });
});
