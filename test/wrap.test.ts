// `accel wrap`: stock, unmodified netlink programs talking to the daemon through the preload shim,
// run from a directory outside the repo, as root and as nobody. The shim's own protocol (where
// requests go, what the program sees as the sender, the EXT_ACK and membership control messages,
// CAP_ACK passed through to the socket) is checked against a bare USERSOCK socket standing in for
// the daemon, so that it does not depend on how the daemon answers.
import * as fs from 'fs';
import * as path from 'path';
import { type Daemon, startDaemon } from '../device';
import { NETLINK_USERSOCK, type NlSocket, openSocket } from '../genl/socket';
import { NDIAG_FLAG, querySockets } from '../genl/sockdiag';
import { PY, type WrapEnv, asRoot, itIf, missing, run, wrapEnv } from './helpers/wrap';

const PORT = 0x41570000 + (process.pid & 0xfff);
const FAKE = 0x41580000 + (process.pid & 0xfff);
let d: Daemon;
let env: WrapEnv;

beforeAll(async () => {
  await require('../bin/build.js').build();  // fresh bundle once, so spawned runs never rebuild it
  d = startDaemon({ port: PORT, config: 'devices: [{}, {}]', tick: false });
  env = wrapEnv({ nobody: true });
});
afterAll(() => { d.close(); env.dispose(); });

const GENL = '/usr/sbin/genl';
const who = asRoot ? ['root', 'nobody'] as const : ['this user'] as const;

describe.each(who)('iproute2 genl ctrl list, as %s', (user) => {
  const nobody = user === 'nobody';
  itIf(missing({ bins: [GENL], nobody }))('lists the daemon\'s families, ops and groups (the kernel\'s list has none of them)', async () => {
    const r = await env.accel(['wrap', '--', GENL, 'ctrl', 'list'], { port: PORT, nobody });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/Name: nlctrl\n\s+ID: 0x10 {2}Version: 0x2/);
    expect(r.stdout).toMatch(/Name: accel\n/);
    expect(r.stdout).toMatch(/Name: drm-ras\n/);
    expect(r.stdout).toMatch(/ID-0x[0-9a-f]+ {2}name: ras/);
    expect(r.stdout).toMatch(/ID-0x[0-9a-f]+ {2}name: error-report/);
    const kernel = await run(GENL, ['ctrl', 'list'], { cwd: env.dir });
    expect(kernel.stdout).toMatch(/Name: nlctrl/);
    expect(kernel.stdout).not.toMatch(/Name: accel\n/);
  });

  itIf(missing({ bins: [GENL], nobody }))('genl ctrl get name accel: a do request', async () => {
    const r = await env.accel(['wrap', '--', GENL, 'ctrl', 'get', 'name', 'accel'], { port: PORT, nobody });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^\nName: accel\n\s+ID: 0x[0-9a-f]+ {2}Version: 0x1/);
    const none = await env.accel(['wrap', '--', GENL, 'ctrl', 'get', 'name', 'nosuch'], { port: PORT, nobody });
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/No such file or directory/);
  });
});

describe('accel wrap itself', () => {
  itIf(missing({}))('--port and ACCEL_NL_PORT reach the program; its exit status is ours', async () => {
    const r = await env.accel(['wrap', '--port', '0x1234', '--', 'sh', '-c', 'echo "$ACCEL_NL_PORT $LD_PRELOAD"; exit 7'], { port: PORT });
    expect(r.code).toBe(7);
    expect(r.stdout).toMatch(/^4660 \S*accelnl_shim\.so\n$/);
  });

  itIf(missing({}))('usage errors exit 2; a missing or static program exits 1 naming why', async () => {
    expect((await env.accel(['wrap'], { port: PORT })).code).toBe(2);
    expect((await env.accel(['wrap', '--'], { port: PORT })).code).toBe(2);
    expect((await env.accel(['wrap', '--port', 'x', '--', 'true'], { port: PORT })).code).toBe(2);
    const nf = await env.accel(['wrap', '--', 'no-such-command-here'], { port: PORT });
    expect(nf).toMatchObject({ code: 1, stderr: 'accel wrap: no-such-command-here: command not found.\n' });
    // A static binary: the dynamic loader never runs, so LD_PRELOAD cannot reach it.
    const staticBin = path.join(env.dir, 'static');
    fs.writeFileSync(`${staticBin}.c`, 'int main(void) { return 0; }\n');
    const cc = await run('cc', ['-static', '-o', staticBin, `${staticBin}.c`], { cwd: env.dir }).catch(() => undefined);
    if (!cc || cc.code !== 0 || !fs.existsSync(staticBin)) {
      console.warn('SKIPPED (part): cannot link a static test binary (no static libc)');
      return;
    }
    const r = await env.accel(['wrap', '--', staticBin], { port: PORT });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/statically linked/);
  });

  itIf(missing({ bins: ['/usr/sbin/ip'] }))('other netlink protocols pass through: rtnetlink still reaches the kernel', async () => {
    const r = await env.accel(['wrap', '--', '/usr/sbin/ip', '-j', 'link', 'show', 'lo'], { port: PORT });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)[0]).toMatchObject({ ifname: 'lo' });
  });
});

// A Python program using the socket calls stock tools use, against a bare socket at FAKE.
const PROBE = `
import socket, struct, sys
SOL_NETLINK = 270
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
print('proto', s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL))
s.setsockopt(SOL_NETLINK, 10, 1)     # NETLINK_CAP_ACK
s.setsockopt(SOL_NETLINK, 11, 1)     # NETLINK_EXT_ACK
s.setsockopt(SOL_NETLINK, 12, 1)     # NETLINK_GET_STRICT_CHK
s.bind((0, 0))
try:
    s.setsockopt(SOL_NETLINK, 1, 5)  # NETLINK_ADD_MEMBERSHIP
    print('join ok')
except OSError as e:
    print('join', e.errno)
port = s.getsockname()[0]
print('port', port)
s.send(struct.pack('=IHHII', 20, 0x10, 5, 7, 0) + bytes([3, 1, 0, 0]))             # send()
s.sendto(struct.pack('=IHHII', 20, 0x10, 5, 8, 0) + bytes([3, 1, 0, 0]), (0, 0))  # sendto() "the kernel"
data, addr = s.recvfrom(1000)
print('reply from', addr[0], 'seq', struct.unpack_from('=I', data, 8)[0])
data, anc, flags, addr = s.recvmsg(40000)
print('reply from', addr[0], 'seq', struct.unpack_from('=I', data, 8)[0])
d = s.dup()                                                                        # fcntl(F_DUPFD_CLOEXEC)
d.send(struct.pack('=IHHII', 20, 0x10, 5, 9, 0) + bytes([3, 1, 0, 0]))
data, addr = d.recvfrom(1000)
print('reply from', addr[0], 'seq', struct.unpack_from('=I', data, 8)[0])
`;

describe.each(who)('the shim\'s protocol, as %s', (user) => {
  const nobody = user === 'nobody';
  let fake: NlSocket;
  const got: { port: number; type: number; flags: number; seq: number; payload: number[]; capAck: boolean }[] = [];
  beforeAll(() => {
    fake = openSocket({
      protocol: NETLINK_USERSOCK, port: FAKE + (nobody ? 1 : 0),
      onBatch(b) {
        for (let i = 0; i < b.count; i++) {
          const m = Buffer.from(b.data(i));
          const port = b.port(i);
          const flags = querySockets(NETLINK_USERSOCK)?.table.get(port)?.flags ?? 0;
          const payload = [];
          for (let o = 16; o + 4 <= m.length; o += 4) payload.push(m.readUInt32LE(o));
          got.push({ port, type: m.readUInt16LE(4), flags: m.readUInt16LE(6), seq: m.readUInt32LE(8), payload, capAck: !!(flags & NDIAG_FLAG.CAP_ACK) });
          if (m.readUInt16LE(4) >= 0x10) {
            // Answer as a server would: an ACK to the sender's port.
            const ack = Buffer.alloc(36);
            ack.writeUInt32LE(36, 0); ack.writeUInt16LE(2, 4); ack.writeUInt16LE(0x100, 6);
            ack.writeUInt32LE(m.readUInt32LE(8), 8); ack.writeUInt32LE(port, 12);
            m.copy(ack, 20, 0, 16);
            fake.send(ack, port);
          }
        }
      },
    });
  });
  afterAll(() => fake.close());

  itIf(missing({ python: ['socket'], nobody }))('requests go to the daemon; replies look as if from the kernel; EXT_ACK, refused memberships and read lengths are told in-band; CAP_ACK is the socket\'s', async () => {
    const script = path.join(env.dir, 'probe.py');
    fs.writeFileSync(script, PROBE, { mode: 0o644 });
    const r = await env.accel(['wrap', '--', PY, script], { port: FAKE + (nobody ? 1 : 0), nobody });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const port = Number(/port (\d+)/.exec(r.stdout)![1]);
    expect(r.stdout).toMatch(/^proto 16\n/);                       // SO_PROTOCOL says NETLINK_GENERIC
    expect(r.stdout).toMatch(/join ok\n/);                         // nobody's too: see below
    expect(r.stdout).toMatch(/reply from 0 seq 7\nreply from 0 seq 8\nreply from 0 seq 9\n$/);
    const mine = got.filter((g) => g.port === port);
    // Memberships are asked of the daemon, never joined: only CAP_NET_ADMIN may join a USERSOCK
    // group, and a joined group would bring every other daemon's events on the host too.
    const expected = [
      { type: 0x0f, flags: 0, payload: [11, 1] },                   // ACCELNL_MSG_SOCKOPT: NETLINK_EXT_ACK = 1
      { type: 0x0f, flags: 0, payload: [1, 5] },                    // NETLINK_ADD_MEMBERSHIP group 5
      { type: 0x10, flags: 5, seq: 7, payload: [0x103] },
      { type: 0x10, flags: 5, seq: 8, payload: [0x103] },
      { type: 0x0f, flags: 0, payload: [0x10001, 1000] },           // ACCELNL_OPT_MAX_RECVMSG_LEN: the first read's length
      { type: 0x0f, flags: 0, payload: [0x10001, 32448] },          // a larger read (40000), capped as the kernel caps it
      { type: 0x10, flags: 5, seq: 9, payload: [0x103] },            // through a dup of the socket (its reads are no larger)
    ];
    expect(mine).toMatchObject(expected);
    expect(mine.every((g) => g.capAck)).toBe(true);                 // sock_diag shows the program's CAP_ACK
  });

  itIf(missing({ python: ['socket'], nobody }))('close says ACCELNL_OPT_CLOSING with the inode only for a socket that read the awaited answer to each request, one at a time, and was never shared', async () => {
    const script = path.join(env.dir, 'closing.py');
    fs.writeFileSync(script, CLOSING_PROBE, { mode: 0o644 });
    const before = got.length;
    const r = await env.accel(['wrap', '--', PY, script], { port: FAKE + (nobody ? 1 : 0), nobody });
    expect([r.code, r.stderr]).toEqual([0, '']);
    const inode = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(' ')).map(([k, v]) => [k, Number(v)]));
    expect(Object.keys(inode)).toEqual(['clean', 'noack', 'pending', 'two', 'dup', 'fork', 'inherit', 'passed', 'again']);
    const closing = got.slice(before).filter((g) => g.type === 0x0f && g.payload[0] === 0x10003).map((g) => g.payload[1]);
    // a do without NLM_F_ACK, an answer not read, two requests at once, a dup, a fork, no
    // close-on-exec, passed to another socket (SCM_RIGHTS): no word
    expect(closing).toEqual([inode.clean, inode.again]);
  });
});

// Sockets one after another, each closed after one pattern of use; prints each one's inode.
const CLOSING_PROBE = `
import os, socket, struct
def req(s, seq, flags=5):
    s.send(struct.pack('=IHHII', 20, 0x10, flags, seq, 0) + bytes([3, 1, 0, 0]))
def answer(s):
    s.recv(1000)
def sock(name):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
    s.bind((0, 0))
    print(name, os.fstat(s.fileno()).st_ino)
    return s
s = sock('clean'); req(s, 1); answer(s); req(s, 2); answer(s); s.close()
s = sock('noack'); req(s, 1, 1); answer(s); s.close()
s = sock('pending'); req(s, 1); s.close()
s = sock('two'); req(s, 1); req(s, 2); answer(s); answer(s); s.close()
s = sock('dup'); req(s, 1); answer(s); d = s.dup(); d.close(); s.close()
s = sock('fork'); req(s, 1); answer(s)
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0); s.close()
s = sock('inherit'); s.set_inheritable(True); req(s, 1); answer(s); s.close()
s = sock('passed'); req(s, 1); answer(s)
a, b = socket.socketpair()
socket.send_fds(a, [b'x'], [s.fileno()])
a.close(); b.close(); s.close()
s = sock('again'); req(s, 1); answer(s); s.close()
`;

describe('iproute2 devlink, through accel wrap', () => {
  const DEVLINK = '/usr/sbin/devlink';
  itIf(missing({ bins: [DEVLINK] }))('devlink dev show lists our devices once the daemon serves devlink, else fails like the kernel without it', async () => {
    const ctrl = await env.accel(['wrap', '--', GENL, 'ctrl', 'get', 'name', 'devlink'], { port: PORT });
    const r = await env.accel(['wrap', '--', DEVLINK, '-j', 'dev', 'show'], { port: PORT });
    if (ctrl.code !== 0) {
      console.warn('PARTIAL: the daemon serves no devlink family yet: checking devlink\'s own failure only');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/Failed to connect to devlink Netlink/);
      return;
    }
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const j = JSON.parse(r.stdout);
    expect(Object.keys(j.dev)).toEqual(['pci/0000:03:00.0', 'pci/0000:04:00.0']);
  });
});
