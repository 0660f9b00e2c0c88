// The devlink family on the wire, over the in-process hub: ids against the uapi header (compiled),
// nlctrl's view (version, op flags, the config group), every served op read back with a raw TLV
// walk (ids, types, nesting, fmsg order), admin ops refused for a non-root sender, notifications,
// and the one device model behind the devlink and accel views.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as A from '../attrs';
import * as G from '../genl';
import { addDevice, manualClock, removeDevice, startDaemon } from '../device';
import { CMD, DEVLINK, FAMILY_NAME, FAMILY_VERSION } from '../device/gen/devlink';
import { CMD as ACMD, spec as accelSpec } from '../device/gen/accel';
import { readAttrs, writeAttrs } from '../genl/ynl';

const PORT = 0x41434346;
const BUS = 'pci';
const DEV = '0000:03:00.0';

/** A raw attribute walk, independent of the codec: type (flags stripped), NLA_F_NESTED, payload. */
interface Tlv { type: number; nested: boolean; data: Uint8Array }
function tlvs(buf: Uint8Array, from: number, to: number): Tlv[] {
  const out: Tlv[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let at = from; at + 4 <= to;) {
    const len = dv.getUint16(at, true);
    const raw = dv.getUint16(at + 2, true);
    if (len < 4 || at + len > to) throw new Error(`bad attribute at ${at}`);
    out.push({ type: raw & 0x3fff, nested: !!(raw & 0x8000), data: buf.subarray(at + 4, at + len) });
    at += (len + 3) & ~3;
  }
  return out;
}
const kids = (t: Tlv) => tlvs(t.data, 0, t.data.length);
const str = (t: Tlv) => Buffer.from(t.data).toString('utf8').replace(/\0$/, '');
const u8 = (t: Tlv) => { expect(t.data.length).toBe(1); return t.data[0]; };
const u64 = (t: Tlv) => { expect(t.data.length).toBe(8); return Buffer.from(t.data).readBigUInt64LE(0); };
const top = (m: G.Message) => tlvs(m.v.buf, m.attrs, m.end);
const one = (ts: Tlv[], type: number) => { const x = ts.filter((t) => t.type === type); expect(x).toHaveLength(1); return x[0]; };

function boot() {
  const hub = G.newHub();
  const d = startDaemon({ port: PORT, tick: false, clock: manualClock(), open: (onBatch) => G.openInproc(hub, { port: PORT, onBatch }) });
  const client = (uid = 0) => G.createClient({ serverPort: PORT, open: (onBatch) => G.openInproc(hub, { onBatch, uid }) });
  return { d, client };
}

let t: ReturnType<typeof boot>;
let c: G.Client;
let fam: G.FamilyInfo;
beforeEach(async () => { t = boot(); c = t.client(); fam = await c.resolve('devlink'); });
afterEach(() => { c.close(); t.d.close(); });

/** Attributes written by hand (putString etc.), as iproute2's dl_opts_put does. */
const handle = (more?: (w: A.Writer) => void) => (w: A.Writer) => {
  A.putString(w, DEVLINK.BUS_NAME, BUS);
  A.putString(w, DEVLINK.DEV_NAME, DEV);
  more?.(w);
};
const reporter = (name: string) => handle((w) => A.putString(w, DEVLINK.HEALTH_REPORTER_NAME, name));
const dumpAll = async (cl: G.Client, cmd: number, fill?: (w: A.Writer) => void) => {
  const out: G.Message[] = [];
  for await (const m of cl.dump(fam.id, cmd, { fill })) out.push(m);
  return out;
};

describe('devlink: ids', () => {
  // The numbers must be the kernel's: print them from the installed uapi header with a compiler
  // (never by counting lines: the command enum holds alias #defines).
  const header = '/usr/include/linux/devlink.h';
  const cc = spawnSync('cc', ['--version']).status === 0;
  const it_ = fs.existsSync(header) && cc ? it : it.skip;
  if (!(fs.existsSync(header) && cc)) console.warn(`devlink ids vs ${header}: skipped (${cc ? 'no header (linux-libc-dev)' : 'no C compiler'})`);
  it_('every command and attribute id the installed header defines equals the generated one', () => {
    const text = fs.readFileSync(header, 'utf8');
    const body = (e: string) => text.match(new RegExp(`enum ${e} \\{([\\s\\S]*?)\\};`))![1].replace(/\/\*[\s\S]*?\*\//g, '').replace(/#define[^\n]*(\\\n[^\n]*)*/g, '');
    const names = (e: string, pre: string) => [...body(e).matchAll(/^\s*([A-Z0-9_]+)\s*(?:=[^,\n]*)?,?/gm)].map((m) => m[1]).filter((n) => n.startsWith(pre) && !n.startsWith('__') && !n.endsWith('_MAX'));
    const cmds = names('devlink_command', 'DEVLINK_CMD_');
    const attrs = names('devlink_attr', 'DEVLINK_ATTR_');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-devlink-ids-'));
    try {
      const src = ['#include <stdio.h>', '#include <linux/devlink.h>', 'int main(void) {',
        ...[...cmds, ...attrs].map((n) => `printf("${n} %d\\n", (int)${n});`), 'return 0; }'].join('\n');
      fs.writeFileSync(path.join(dir, 'ids.c'), src);
      const b = spawnSync('cc', ['-o', path.join(dir, 'ids'), path.join(dir, 'ids.c')], { encoding: 'utf8' });
      expect(b.stderr).toBe('');
      const got = new Map(spawnSync(path.join(dir, 'ids'), { encoding: 'utf8' }).stdout.trim().split('\n').map((l) => l.split(' ')).map(([n, v]) => [n, Number(v)]));
      expect(got.get('DEVLINK_CMD_INFO_GET')).toBe(51);
      expect(got.get('DEVLINK_CMD_HEALTH_REPORTER_TEST')).toBe(73);
      // Every attribute of the header, used or not, has its id in the generated set.
      for (const n of attrs) expect([n, (DEVLINK as Record<string, number>)[n.slice('DEVLINK_ATTR_'.length)]]).toEqual([n, got.get(n)]);
      for (const [k, v] of Object.entries(CMD)) {
        const n = `DEVLINK_CMD_${k}`;
        if (got.has(n)) expect([n, v]).toEqual([n, got.get(n)]);
      }
      expect(attrs.length).toBeGreaterThan(150);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('devlink: nlctrl', () => {
  test('family "devlink" version 1, the config group, admin flags as net/devlink/netlink_gen.c', () => {
    expect(fam.name).toBe(FAMILY_NAME);
    expect(fam.version).toBe(FAMILY_VERSION);
    expect(FAMILY_VERSION).toBe(1);
    expect([...fam.groups.keys()]).toEqual(['config']);
    const flags = new Map(fam.ops.map((o) => [o.id, o.flags]));
    const ADMIN = 0x01;
    for (const cmd of [CMD.GET, CMD.INFO_GET, CMD.HEALTH_REPORTER_GET, CMD.PORT_GET]) expect([cmd, flags.get(cmd)! & ADMIN]).toEqual([cmd, 0]);
    for (const cmd of [CMD.HEALTH_REPORTER_SET, CMD.HEALTH_REPORTER_RECOVER, CMD.HEALTH_REPORTER_DIAGNOSE,
      CMD.HEALTH_REPORTER_DUMP_GET, CMD.HEALTH_REPORTER_DUMP_CLEAR, CMD.HEALTH_REPORTER_TEST]) expect([cmd, flags.get(cmd)! & ADMIN]).toEqual([cmd, ADMIN]);
    expect(flags.get(CMD.HEALTH_REPORTER_DUMP_GET)! & 0x06).toBe(0x04); // dump only
    expect(flags.get(CMD.GET)! & 0x06).toBe(0x06);
  });
});

describe('devlink: ops on the wire', () => {
  test('get: dump and do carry bus-name "pci" and the PCI address, cmd DEVLINK_CMD_NEW', async () => {
    const ms = await dumpAll(c, CMD.GET);
    expect(ms.map((m) => str(one(top(m), DEVLINK.DEV_NAME)))).toEqual(['0000:03:00.0', '0000:04:00.0']);
    for (const m of ms) {
      expect(m.cmd).toBe(CMD.NEW);
      expect(str(one(top(m), DEVLINK.BUS_NAME))).toBe('pci');
      expect(u8(one(top(m), DEVLINK.RELOAD_FAILED))).toBe(0);
    }
    const [r] = await c.request(fam.id, CMD.GET, { fill: handle() });
    expect(str(one(top(r), DEVLINK.DEV_NAME))).toBe(DEV);
  });

  test('info-get: driver, serials, versions nested as {name, value} under fixed/running/stored', async () => {
    const [m] = await c.request(fam.id, CMD.INFO_GET, { fill: handle() });
    const ts = top(m);
    expect(m.cmd).toBe(CMD.INFO_GET);
    expect(str(one(ts, DEVLINK.INFO_DRIVER_NAME))).toBe('accelnl_emu');
    const dev = t.d.rt.emu.devices.get(0)!;
    expect(str(one(ts, DEVLINK.INFO_SERIAL_NUMBER))).toBe(dev.serial);
    expect(str(one(ts, DEVLINK.INFO_BOARD_SERIAL_NUMBER))).toBe(dev.boardSerial);
    const versions = (type: number) => Object.fromEntries(ts.filter((x) => x.type === type).map((v) => {
      expect(v.nested).toBe(true);
      const k = kids(v);
      return [str(one(k, DEVLINK.INFO_VERSION_NAME)), str(one(k, DEVLINK.INFO_VERSION_VALUE))];
    }));
    expect(versions(DEVLINK.INFO_VERSION_FIXED)).toEqual(dev.versions.fixed);
    expect(versions(DEVLINK.INFO_VERSION_RUNNING)).toEqual(dev.versions.running);
    expect(versions(DEVLINK.INFO_VERSION_STORED)).toEqual(dev.versions.stored);
    expect((await dumpAll(c, CMD.INFO_GET)).length).toBe(2);
  });

  test('health-reporter-get: one nest per reporter with name, state u8, counts u64, settings', async () => {
    const ms = await dumpAll(c, CMD.HEALTH_REPORTER_GET);
    expect(ms).toHaveLength(10);
    const [m] = await c.request(fam.id, CMD.HEALTH_REPORTER_GET, { fill: reporter('mem') });
    expect(m.cmd).toBe(CMD.HEALTH_REPORTER_GET);
    const nest = one(top(m), DEVLINK.HEALTH_REPORTER);
    expect(nest.nested).toBe(true);
    const k = kids(nest);
    expect(str(one(k, DEVLINK.HEALTH_REPORTER_NAME))).toBe('mem');
    expect(u8(one(k, DEVLINK.HEALTH_REPORTER_STATE))).toBe(0);
    expect(u64(one(k, DEVLINK.HEALTH_REPORTER_ERR_COUNT))).toBe(0n);
    expect(u64(one(k, DEVLINK.HEALTH_REPORTER_RECOVER_COUNT))).toBe(0n);
    expect(u64(one(k, DEVLINK.HEALTH_REPORTER_GRACEFUL_PERIOD))).toBe(500n);
    expect(u8(one(k, DEVLINK.HEALTH_REPORTER_AUTO_RECOVER))).toBe(1);
    expect(u8(one(k, DEVLINK.HEALTH_REPORTER_AUTO_DUMP))).toBe(1);
    expect(k.some((x) => x.type === DEVLINK.HEALTH_REPORTER_DUMP_TS_NS)).toBe(false); // no dump yet
    // A dump filtered by handle gives that device's five reporters.
    expect(await dumpAll(c, CMD.HEALTH_REPORTER_GET, handle())).toHaveLength(5);
  });

  test('diagnose: an fmsg nest of ordered items: obj start, (pair, name, type, data, end)*, end', async () => {
    const [m] = await c.request(fam.id, CMD.HEALTH_REPORTER_DIAGNOSE, { fill: reporter('mem') });
    expect(m.cmd).toBe(CMD.HEALTH_REPORTER_DIAGNOSE);
    const items = kids(one(top(m), DEVLINK.FMSG));
    expect(items[0].type).toBe(DEVLINK.FMSG_OBJ_NEST_START);
    expect(items[items.length - 1].type).toBe(DEVLINK.FMSG_NEST_END);
    const pairs: Record<string, unknown> = {};
    for (let i = 1; i < items.length - 1; i += 5) {
      expect(items.slice(i, i + 5).map((x) => x.type)).toEqual([DEVLINK.FMSG_PAIR_NEST_START, DEVLINK.FMSG_OBJ_NAME,
        DEVLINK.FMSG_OBJ_VALUE_TYPE, DEVLINK.FMSG_OBJ_VALUE_DATA, DEVLINK.FMSG_NEST_END]);
      const vt = u8(items[i + 2]);
      const data = items[i + 3];
      pairs[str(items[i + 1])] = vt === A.NLA.U64 ? u64(data) : vt === A.NLA.FLAG ? u8(data) === 1 : vt === A.NLA.NUL_STRING ? str(data) : `type ${vt}`;
    }
    expect(pairs).toMatchObject({ state: 'healthy', device_state: 'operational', rows_active: 0n, rma: false });
  });

  test('test, dump-get, dump-clear, recover: counts and stored dump change as devlink health does', async () => {
    await c.request(fam.id, CMD.HEALTH_REPORTER_TEST, { fill: reporter('fw') });
    const state = async () => kids(one(top((await c.request(fam.id, CMD.HEALTH_REPORTER_GET, { fill: reporter('fw') }))[0]), DEVLINK.HEALTH_REPORTER));
    let k = await state();
    expect(u8(one(k, DEVLINK.HEALTH_REPORTER_STATE))).toBe(1); // fw: no auto-recover
    expect(u64(one(k, DEVLINK.HEALTH_REPORTER_ERR_COUNT))).toBe(1n);
    expect(u64(one(k, DEVLINK.HEALTH_REPORTER_DUMP_TS_NS))).toBeGreaterThan(0n); // auto-dump took one
    const dump = await dumpAll(c, CMD.HEALTH_REPORTER_DUMP_GET, reporter('fw'));
    expect(dump.length).toBeGreaterThan(1); // items spread over several messages
    const items = dump.flatMap((m) => { expect(m.cmd).toBe(CMD.HEALTH_REPORTER_DUMP_GET); return kids(one(top(m), DEVLINK.FMSG)); });
    const names = items.filter((x) => x.type === DEVLINK.FMSG_OBJ_NAME).map(str);
    expect(names).toEqual(expect.arrayContaining(['reporter', 'error_count', 'last_error']));
    expect(items.filter((x) => x.type === DEVLINK.FMSG_OBJ_NAME && str(x) === 'last_error').length).toBe(1);
    await c.request(fam.id, CMD.HEALTH_REPORTER_DUMP_CLEAR, { fill: reporter('fw') });
    k = await state();
    expect(k.some((x) => x.type === DEVLINK.HEALTH_REPORTER_DUMP_TS_NS)).toBe(false);
    await c.request(fam.id, CMD.HEALTH_REPORTER_RECOVER, { fill: reporter('fw') });
    k = await state();
    expect(u8(one(k, DEVLINK.HEALTH_REPORTER_STATE))).toBe(0);
    expect(u64(one(k, DEVLINK.HEALTH_REPORTER_RECOVER_COUNT))).toBe(1n);
  });

  test('set: grace period, auto-recover, auto-dump; burst period is EOPNOTSUPP', async () => {
    await c.request(fam.id, CMD.HEALTH_REPORTER_SET, { fill: (w) => { reporter('core')(w); A.putU64(w, DEVLINK.HEALTH_REPORTER_GRACEFUL_PERIOD, 1234n); A.putU8(w, DEVLINK.HEALTH_REPORTER_AUTO_RECOVER, 0); } });
    const r = t.d.rt.emu.devices.get(0)!.reporters.get('core')!;
    expect([r.gracePeriodMs, r.autoRecover, r.autoDump]).toEqual([1234, false, true]);
    await expect(c.request(fam.id, CMD.HEALTH_REPORTER_SET, { fill: (w) => { reporter('core')(w); A.putU64(w, DEVLINK.HEALTH_REPORTER_BURST_PERIOD, 1n); } }))
      .rejects.toMatchObject({ errno: 95 });
  });

  test('errors: unknown instance ENODEV, no handle EINVAL, unknown reporter EINVAL, a port ENODEV, bad type EINVAL', async () => {
    await expect(c.request(fam.id, CMD.GET, { fill: (w) => { A.putString(w, DEVLINK.BUS_NAME, 'pci'); A.putString(w, DEVLINK.DEV_NAME, '0000:99:00.0'); } }))
      .rejects.toMatchObject({ errno: 19 });
    await expect(c.request(fam.id, CMD.GET, { fill: (w) => { A.putString(w, DEVLINK.BUS_NAME, 'usb'); A.putString(w, DEVLINK.DEV_NAME, DEV); } }))
      .rejects.toMatchObject({ errno: 19 });
    await expect(c.request(fam.id, CMD.INFO_GET)).rejects.toMatchObject({ errno: 22 });
    await expect(c.request(fam.id, CMD.HEALTH_REPORTER_DIAGNOSE, { fill: reporter('nope') })).rejects.toMatchObject({ errno: 22, extack: { msg: expect.stringContaining('no reporter') } });
    await expect(c.request(fam.id, CMD.HEALTH_REPORTER_GET, { fill: (w) => { reporter('fw')(w); A.putU32(w, DEVLINK.PORT_INDEX, 1); } })).rejects.toMatchObject({ errno: 19 });
    // The policy is the kernel's: the reporter name is a NUL string, a u32 in its place is refused.
    await expect(c.request(fam.id, CMD.HEALTH_REPORTER_RECOVER, { fill: handle((w) => A.putU32(w, DEVLINK.HEALTH_REPORTER_NAME, 7)) })).rejects.toMatchObject({ errno: 22 });
    expect(await dumpAll(c, CMD.PORT_GET)).toEqual([]);
  });
});

describe('devlink: admin ops and a non-root sender', () => {
  test('uid 65534 reads (get, info, health show) but gets EPERM for set, recover, diagnose, dump, clear, test', async () => {
    const nobody = t.client(65534);
    try {
      expect((await dumpAll(nobody, CMD.GET)).length).toBe(2);
      expect((await dumpAll(nobody, CMD.INFO_GET)).length).toBe(2);
      expect((await dumpAll(nobody, CMD.HEALTH_REPORTER_GET)).length).toBe(10);
      await nobody.request(fam.id, CMD.HEALTH_REPORTER_GET, { fill: reporter('fw') });
      for (const cmd of [CMD.HEALTH_REPORTER_SET, CMD.HEALTH_REPORTER_RECOVER, CMD.HEALTH_REPORTER_DIAGNOSE,
        CMD.HEALTH_REPORTER_DUMP_CLEAR, CMD.HEALTH_REPORTER_TEST]) {
        await expect(nobody.request(fam.id, cmd, { fill: reporter('fw') })).rejects.toMatchObject({ errno: 1 });
      }
      await expect(dumpAll(nobody, CMD.HEALTH_REPORTER_DUMP_GET, reporter('fw'))).rejects.toMatchObject({ errno: 1 });
      const r = t.d.rt.emu.devices.get(0)!.reporters.get('fw')!;
      expect([r.errCount, r.recoverCount]).toEqual([0n, 0n]); // nothing ran
    } finally {
      nobody.close();
    }
  });
});

describe('devlink: one device model, three views', () => {
  test('an error injected through accel shows in devlink health, with a config notification; devlink recover shows in accel', async () => {
    const events: G.Message[] = [];
    const listener = t.client();
    listener.join(fam.groups.get('config')!);
    listener.onEvent((m) => { if (m.type === fam.id) events.push(m); });
    try {
      const accel = await c.resolve('accel');
      // accel ras-inject: a fatal HBM error needs a reset, so the mem reporter stays in error.
      await c.request(accel.id, ACMD.RAS_INJECT, { fill: (w) => writeAttrs(w, accelSpec, 'accel', { devIndex: 0, block: 'hbm', severity: 'uncorrectable-fatal' }) });
      await new Promise((r) => setTimeout(r, 50));
      const [m] = await c.request(fam.id, CMD.HEALTH_REPORTER_GET, { fill: reporter('mem') });
      const k = kids(one(top(m), DEVLINK.HEALTH_REPORTER));
      expect(u8(one(k, DEVLINK.HEALTH_REPORTER_STATE))).toBe(1);
      expect(u64(one(k, DEVLINK.HEALTH_REPORTER_ERR_COUNT))).toBe(1n);
      const ev = events.filter((e) => e.cmd === CMD.HEALTH_REPORTER_RECOVER);
      expect(ev.length).toBeGreaterThanOrEqual(1);
      const evk = kids(one(top(ev[0]), DEVLINK.HEALTH_REPORTER));
      expect(str(one(evk, DEVLINK.HEALTH_REPORTER_NAME))).toBe('mem');
      expect(str(one(top(ev[0]), DEVLINK.DEV_NAME))).toBe(DEV);
      // devlink recover (resets the device) -> accel's health-get sees the reporter healthy again.
      await c.request(fam.id, CMD.HEALTH_REPORTER_RECOVER, { fill: reporter('mem') });
      const [h] = await c.request(accel.id, ACMD.HEALTH_GET, { fill: (w) => writeAttrs(w, accelSpec, 'accel', { devIndex: 0, reporterName: 'mem' }) });
      const a = readAttrs<{ reporter?: { name: string; state: string; recoverCount: number }[] }>(h.v, h.attrs, h.end, accelSpec, 'accel');
      expect(a.reporter![0]).toMatchObject({ name: 'mem', state: 'healthy', recoverCount: 1 });
      await new Promise((r) => setTimeout(r, 50));
      const last = events.filter((e) => e.cmd === CMD.HEALTH_REPORTER_RECOVER).pop()!;
      expect(u8(one(kids(one(top(last), DEVLINK.HEALTH_REPORTER)), DEVLINK.HEALTH_REPORTER_STATE))).toBe(0);
      // A settings change is not a state change: no event (as the kernel).
      const before = events.length;
      await c.request(fam.id, CMD.HEALTH_REPORTER_SET, { fill: (w) => { reporter('mem')(w); A.putU8(w, DEVLINK.HEALTH_REPORTER_AUTO_DUMP, 0); } });
      await new Promise((r) => setTimeout(r, 50));
      expect(events.length).toBe(before);
      // Hot-plug: DEVLINK_CMD_NEW and _DEL on config.
      const d = t.d.rt.emu;
      const nd = addDevice(d, {});
      removeDevice(d, nd);
      await new Promise((r) => setTimeout(r, 50));
      const hp = events.filter((e) => e.cmd === CMD.NEW || e.cmd === CMD.DEL);
      expect(hp.map((e) => [e.cmd, str(one(top(e), DEVLINK.DEV_NAME))])).toEqual([[CMD.NEW, nd.busAddr], [CMD.DEL, nd.busAddr]]);
    } finally {
      listener.close();
    }
  });
});
