// The kernel's own ynl CLI (tools/net/ynl/pyynl/cli.py, a copy in ../shared/peers/ynl), unmodified,
// through `accel wrap` against a daemon: with the upstream drm_ras.yaml (mainline, and the
// error-event series for notifications) and with our accel.yaml and drm-ras.yaml. Do and dump
// requests, errors with their extack decoded, notifications (--subscribe), and a mapped BO taken by
// a Python program on ynl's library; as root and as nobody, from a directory outside the repo.
import * as fs from 'fs';
import * as path from 'path';
import { type Daemon, startDaemon } from '../device';
import { NETLINK_USERSOCK, type NlSocket, openSocket } from '../genl/socket';
import { createClient } from '../genl/client';
import * as G from '../genl';
import { SETTLE_MS } from '../genl/outbox';
import { PY, type Run, type WrapEnv, asRoot, itIf, missing, run, wrapEnv, ACCEL } from './helpers/wrap';

const PORT = 0x41590000 + (process.pid & 0xfff);
const PORT_CAPPED = 0x415a0000 + (process.pid & 0xfff);
let d: Daemon;
let capped: Daemon;
let env: WrapEnv;
const why = missing({ python: ['yaml', 'jsonschema'], ynl: true });

beforeAll(async () => {
  await require('../bin/build.js').build();
  d = startDaemon({ port: PORT, config: 'devices: [{}, {}]', tick: false });
  // The daemon-wide override of the ACK shape: capped error ACKs whatever the socket asked.
  capped = startDaemon({ port: PORT_CAPPED, config: 'netlink: { cap-ack: true }\ndevices: [{}]', tick: false });
  env = wrapEnv({ nobody: true });
});
afterAll(() => { d.close(); capped.close(); env.dispose(); });

type Spec = 'accel' | 'drm-ras' | 'upstream' | 'upstream-event';

/** cli.py's arguments for a spec: ours by path with the kernel's schema, upstream's in-tree by name. */
function ynl(spec: Spec, ...args: string[]): string[] {
  const root = env.ynl!;
  const cli = path.join(root, 'tools/net/ynl/pyynl/cli.py');
  const schema = ['--schema', path.join(root, 'Documentation/netlink/genetlink.yaml')];
  switch (spec) {
    case 'upstream': return [PY, cli, '--family', 'drm_ras', ...args];
    case 'upstream-event': return [PY, cli, '--spec', path.join(root, 'Documentation/netlink/specs-event/drm_ras.yaml'), ...schema, ...args];
    default: return [PY, cli, '--spec', path.join(env.specs, `${spec}.yaml`), ...schema, ...args];
  }
}

const wrapped = (argv: string[], o: { port?: number; nobody?: boolean; timeoutMs?: number } = {}): Promise<Run> =>
  env.accel(['wrap', '--', ...argv], { port: o.port ?? PORT, nobody: o.nobody, timeoutMs: o.timeoutMs ?? 30000 });

const json = (r: Run): any => {
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
};

const who = asRoot ? ['root', 'nobody'] as const : ['this user'] as const;

describe.each(who)('ynl CLI through accel wrap, as %s', (user) => {
  const nobody = user === 'nobody';
  const it_ = itIf(why ?? missing({ nobody }));

  it_('accel.yaml: dev-get do and dump', async () => {
    const raced = G.serverStats(d.served.srv).racedSends;
    const one = json(await wrapped(ynl('accel', '--do', 'dev-get', '--json', '{"dev-index": 1}', '--output-json'), { nobody }));
    expect(one).toMatchObject({ 'dev-index': 1, 'dev-name': 'accel1', 'bus-name': 'pci', 'bus-addr': '0000:04:00.0', driver: 'accelnl_emu' });
    const all = json(await wrapped(ynl('accel', '--dump', 'dev-get', '--output-json'), { nobody }));
    expect(all.map((x: any) => x['dev-name'])).toEqual(['accel0', 'accel1']);
    // ynl closes the socket that resolved the family and opens the next, which gets the same port:
    // the shim's closing message says the first read every answer, so that is no raced send.
    await new Promise((r) => setTimeout(r, SETTLE_MS * 5));
    expect(G.serverStats(d.served.srv).racedSends - raced).toBe(0);
  });

  it_('accel.yaml: a BO mapped by a Python program on the kernel\'s ynl library, from the spec and docs/daemon.md alone', async () => {
    // An independent client of bo-map: ynl.py for the netlink side, then Python's own socket
    // (SCM_RIGHTS), fcntl and mmap. Its write through the mapping must be what bo-read returns.
    const script = path.join(env.dir, 'bomap.py');
    fs.writeFileSync(script, [
      'import fcntl, json, mmap, socket, sys',
      `sys.path.append(${JSON.stringify(path.join(env.ynl!, 'tools/net/ynl/pyynl'))})`,
      'from lib import YnlFamily',
      `ynl = YnlFamily(${JSON.stringify(path.join(env.specs, 'accel.yaml'))}, ${JSON.stringify(path.join(env.ynl!, 'Documentation/netlink/genetlink.yaml'))})`,
      "h = ynl.do('bo-create', {'dev-index': 0, 'bo-size': 8192})['bo-handle']",
      "m = ynl.do('bo-map', {'bo-handle': h})",
      's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
      "s.connect('\\0' + m['map-path'][1:])",
      "s.sendall(m['map-token'])",
      '_, fds, _, _ = socket.recv_fds(s, 1, 1)',
      "mem = mmap.mmap(fds[0], m['bo-size'])",
      "mem[100:104] = bytes([1, 2, 3, 4])",
      "back = ynl.dump('bo-read', {'bo-handle': h, 'bo-offset': 100, 'bo-size': 4})",
      "print(json.dumps({'size': m['bo-size'], 'seals': fcntl.fcntl(fds[0], fcntl.F_GET_SEALS), 'read': list(back[0]['data'])}))",
    ].join('\n'));
    fs.chmodSync(script, 0o644);
    expect(json(await wrapped([PY, script], { nobody }))).toEqual({ size: 8192, seals: 7, read: [1, 2, 3, 4] });
  });

  it_('drm-ras: list-nodes and get-error-counter with the upstream spec and ours (admin-perm: EPERM for nobody)', async () => {
    for (const spec of ['upstream', 'drm-ras'] as const) {
      const nodes = await wrapped(ynl(spec, '--dump', 'list-nodes', '--output-json'), { nobody });
      const counter = await wrapped(ynl(spec, '--do', 'get-error-counter', '--json', '{"node-id": 0, "error-id": 1}', '--output-json'), { nobody });
      if (user !== 'root') {
        for (const r of [nodes, counter]) {
          expect(r.code).toBe(1);
          expect(r.stdout).toMatch(/^Netlink error: .*Operation not permitted/);
        }
        continue;
      }
      const list = json(nodes);
      expect(list[0]).toEqual({ 'node-id': 0, 'device-name': '0000:03:00.0', 'node-name': 'correctable-errors', 'node-type': 'error-counter' });
      expect(list.length).toBeGreaterThanOrEqual(4);
      expect(json(counter)).toMatchObject({ 'error-id': 1, 'error-name': 'hbm' });
    }
  });

  it_('an error with extack, decoded as the kernel\'s would be (daemon with capped ACKs)', async () => {
    const r = await wrapped(ynl('accel', '--do', 'dev-get', '--json', '{"dev-index": 7}'), { port: PORT_CAPPED, nobody });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("Netlink error: no such device: No such device {'bad-attr': '.dev-index'}\n");
  });

  it_('an error with extack, decoded, from a daemon on its defaults (ynl sets CAP_ACK on its socket)', async () => {
    if (!(await answersCapAck(PORT))) {
      console.warn('SKIPPED (part): the daemon does not yet answer a CAP_ACK socket with a capped ACK (issue 15, per-socket ACK shape)');
      return;
    }
    const r = await wrapped(ynl('accel', '--do', 'dev-get', '--json', '{"dev-index": 7}'), { nobody });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("Netlink error: no such device: No such device {'bad-attr': '.dev-index'}\n");
  });

  itIf(why ?? missing({ nobody }) ?? (asRoot ? undefined : 'the events are injected with an admin op, which needs root'))(
    'notifications: --subscribe gets drm-ras error events (upstream event spec and ours) and accel ras events', async () => {
    if (!(await honoursMembership(PORT))) {
      console.warn('SKIPPED (part): the daemon does not serve the shim\'s in-band NETLINK_ADD_MEMBERSHIP (wrapped programs ask it for groups)');
      return;
    }
    // Every event is the group's notification; one of them is ours (a device may report others).
    const cases: [Spec, string, string, object][] = [
      ['upstream-event', 'error-report', 'error-event', { 'device-name': '0000:03:00.0', 'node-name': 'correctable-errors', 'error-name': 'hbm' }],
      ['drm-ras', 'error-report', 'error-event', { 'device-name': '0000:03:00.0', 'node-name': 'correctable-errors', 'error-name': 'hbm' }],
      ['accel', 'ras', 'ras-event-ntf', { 'dev-index': 0, event: expect.arrayContaining([expect.objectContaining({ block: 'hbm', severity: 'correctable' })]) }],
    ];
    for (const [spec, group, name, ours] of cases) {
      const sub = wrapped(ynl(spec, '--subscribe', group, '--sleep', '4', '--output-json'), { nobody });
      // Inject until the subscriber has gone (it listens for 4 s; joining takes it a moment).
      let done = false;
      void sub.then(() => { done = true; });
      await new Promise((r) => setTimeout(r, 1500));
      for (let i = 0; i < 4 && !done; i++) {
        const inj = await run(process.execPath, [ACCEL, '--port', String(PORT), 'ras', 'inject', 'accel0', 'block', 'hbm', 'severity', 'correctable'], { cwd: env.dir });
        expect(inj.code).toBe(0);
        await new Promise((r) => setTimeout(r, 400));
      }
      const r = await sub;
      expect(r.stderr).toBe('');
      const events = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
      expect(events.length).toBeGreaterThanOrEqual(1);
      for (const e of events) expect(e.name).toBe(name);
      expect(events).toContainEqual(expect.objectContaining({ msg: expect.objectContaining(ours) }));
    }
  }, 60000);
});

/** Whether the daemon answers an error to a CAP_ACK socket capped (flags 0x100), as the kernel does. */
function answersCapAck(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { s.close(); resolve(false); }, 2000);
    const s = openRaw(port, (flags) => { clearTimeout(timer); resolve((flags & 0x100) !== 0); });
  });
}

/** A bare USERSOCK socket with CAP_ACK that sends one request to an unknown family and reports the ACK's flags. */
function openRaw(port: number, onAck: (flags: number) => void): NlSocket {
  const s = openSocket({
    protocol: NETLINK_USERSOCK,
    onBatch(b) {
      for (let i = 0; i < b.count; i++) {
        const m = b.data(i);
        if (m.readUInt16LE(4) === 2) { onAck(m.readUInt16LE(6)); s.close(); return; }
      }
    },
  });
  s.setOption(270, 10, 1);
  const req = Buffer.alloc(20);
  req.writeUInt32LE(20, 0); req.writeUInt16LE(0x7ff0, 4); req.writeUInt16LE(5, 6); req.writeUInt32LE(1, 8);
  req.writeUInt8(1, 16);
  s.send(req, port);
  return s;
}

/**
 * Whether the daemon delivers a group by unicast to a socket that asked with the shim's control
 * message (ACCELNL_MSG_SOCKOPT NETLINK_ADD_MEMBERSHIP) instead of joining: what nobody needs.
 */
async function honoursMembership(port: number): Promise<boolean> {
  const c = createClient({ serverPort: port, timeoutMs: 2000 });
  try {
    const fam = await c.resolve('drm-ras');
    const group = fam.groups.get('error-report')!;
    let got = false;
    c.onEvent(() => { got = true; });
    const ctl = Buffer.alloc(24);
    ctl.writeUInt32LE(24, 0); ctl.writeUInt16LE(0x0f, 4); ctl.writeUInt32LE(1, 16); ctl.writeUInt32LE(group, 20);
    c.socket.send(ctl, port);
    await new Promise((r) => setTimeout(r, 200));
    const inj = await run(process.execPath, [ACCEL, '--port', String(port), 'ras', 'inject', 'accel1', 'block', 'hbm', 'severity', 'correctable'], { cwd: env.dir });
    if (inj.code !== 0) return false;
    await new Promise((r) => setTimeout(r, 500));
    return got;
  } finally {
    c.close();
  }
}
