// A client is a SOCKET, not a port number. Real NETLINK_USERSOCK sockets against the daemon: a
// socket that holds buffer objects, a unicast subscription and a dump in progress closes, and
// another socket binds its port at once (before the periodic sweep could notice), from this process
// and as another user (nobody, via runuser). The successor must see none of its resources, get
// none of its events or dump chunks, and the old resources must be freed.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ADDON_FILE } from '../genl/native/load';
import * as A from '../attrs';
import * as G from '../genl';
import { type Daemon, inject, startDaemon } from '../device';
import { ACCEL, CMD, spec } from '../device/gen/accel';
import { readAttrs, writeAttrs } from '../genl/ynl';
import { openSocket } from '../genl/socket';
import { connectAccel } from '../device/client';
import { bundleForNobody } from './helpers/nobody';
import { type SocketTable, querySockets } from '../genl/sockdiag';
import { SETTLE_MS } from '../genl/outbox';
import { ACCELNL_MSG_SOCKOPT, ACCELNL_OPT_CLOSING } from '../genl/sockopt';

const PORT = 0x41490000 + (process.pid & 0xfff);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Waits (up to 3 s, for a loaded CI machine) until `f` holds, then returns its last value. */
async function until<T>(f: () => T, ok: (v: T) => boolean): Promise<T> {
  const end = Date.now() + 3000;
  for (;;) { const v = f(); if (ok(v) || Date.now() > end) return v; await sleep(10); }
}
const root = os.userInfo().uid === 0;

let d: Daemon;
let famId: number;
beforeAll(() => {
  d = startDaemon({ port: PORT, config: 'devices: [{}]', tick: false });
  famId = G.familyByName(G.registryOf(d.served.srv), 'accel')!.id!;
});
afterAll(() => d.close());

interface Msg { type: number; flags: number; seq: number; error?: number; attrs?: Record<string, unknown> }

/** A raw socket at a fixed port that records every message it receives. */
function rawAt(port: number, rcvbuf?: number) {
  const got: Msg[] = [];
  const sock = openSocket({
    protocol: G.NETLINK_USERSOCK, port, rcvbuf,
    onBatch: (b) => {
      for (let i = 0; i < b.count; i++) {
        const data = new Uint8Array(b.data(i));
        const v = A.view(data);
        for (let at = 0; at + 16 <= data.length;) {
          const len = v.dv.getUint32(at, true);
          if (len < 16) break;
          const m: Msg = { type: v.dv.getUint16(at + 4, true), flags: v.dv.getUint16(at + 6, true), seq: v.dv.getUint32(at + 8, true) };
          if (m.type === G.NLMSG.ERROR || m.type === G.NLMSG.DONE) m.error = v.dv.getInt32(at + 16, true);
          else if (m.type === famId) m.attrs = readAttrs(v, at + 20, at + len, spec, 'accel');
          got.push(m);
          at += (len + 3) & ~3;
        }
      }
    },
  });
  const send = (cmd: number, seq: number, attrs: object, dump = false) => {
    const w = A.newWriter();
    const at = G.genlStart(w, famId, G.NLM_F.REQUEST | G.NLM_F.ACK | (dump ? G.NLM_F.DUMP : 0), seq, 0, cmd, 1);
    writeAttrs(w, spec, 'accel', attrs);
    G.msgEnd(w, at);
    return sock.send(A.bytes(w), PORT);
  };
  const answer = async (seq: number): Promise<Msg> => {
    for (let i = 0; i < 200; i++) {
      const m = got.find((x) => x.seq === seq && (x.type === G.NLMSG.ERROR || x.type === G.NLMSG.DONE));
      if (m) return m;
      await sleep(5);
    }
    throw new Error(`no answer to seq ${seq}`);
  };
  return { sock, got, send, answer };
}

const it_ = root ? test : test.skip;
if (!root) console.warn('client-identity: the cross-user half needs root (runuser); only the same-user half runs');

test('a successor socket on a recycled port sees no BO, dump or subscription of the old one, which are freed', async () => {
  const port = 0x7e000000 + (process.pid & 0xffff);
  const a = rawAt(port, 4096); // a small buffer, so its dump stays in progress
  a.send(CMD.BO_CREATE, 1, { devIndex: 0, boSize: 1 << 20 });
  const created = await a.answer(1);
  expect(created.error).toBe(0);
  const handle = a.got.find((m) => m.seq === 1 && m.attrs)!.attrs!.boHandle as number;
  a.send(CMD.BO_WRITE, 2, { boHandle: handle, data: new Uint8Array(64).fill(0x5e) });
  expect((await a.answer(2)).error).toBe(0);
  a.send(CMD.SUBSCRIBE, 3, { group: 'ras' });
  expect((await a.answer(3)).error).toBe(0);
  a.send(CMD.BO_READ, 4, { boHandle: handle }, true); // 1 MiB in 32 KiB chunks: it cannot all fit
  const before = await until(() => G.serverStats(d.served.srv), (x) => x.dumpsRunning === 1);
  expect(before.dumpsRunning).toBe(1);
  expect(d.engine.bos.size).toBe(1);

  a.sock.close();
  const b = rawAt(port); // the same port, at once: the sweeper has not run
  // Events meant for the old subscriber do not reach the successor.
  inject(d.rt.emu, d.rt.emu.devices.get(0)!, { block: 'dma', severity: 'deferred' });
  await sleep(100);
  expect(b.got.filter((m) => m.type === famId)).toEqual([]);
  // Nor do the old dump's chunks or its DONE.
  expect(b.got.filter((m) => m.seq === 4)).toEqual([]);
  // The old handle does not exist for it; its own numbering starts afresh.
  b.send(CMD.BO_READ, 10, { boHandle: handle }, true);
  expect((await b.answer(10)).error).toBe(-2);
  b.send(CMD.BO_CREATE, 11, { devIndex: 0, boSize: 64 });
  expect((await b.answer(11)).error).toBe(0);
  expect(b.got.find((m) => m.seq === 11 && m.attrs)!.attrs!.boHandle).toBe(1);
  // The old socket's resources were freed: one BO (the successor's), no dump, no subscriber.
  const after = G.serverStats(d.served.srv);
  expect(d.engine.bos.size).toBe(1);
  expect(after.dumpsRunning).toBe(0);
  expect(Object.values(after.subscribers).reduce((x, y) => x + y, 0)).toBe(0);
  b.sock.close();
  d.served.sweeper.run();
  expect(d.engine.bos.size).toBe(0);
});

it_('a port rebound by another user (nobody) never reaches the old socket\'s BOs, even before the sweep', async () => {
  const port = 0x7d000000 + (process.pid & 0xffff);
  const a = rawAt(port);
  a.send(CMD.BO_CREATE, 1, { devIndex: 0, boSize: 4096 });
  expect((await a.answer(1)).error).toBe(0);
  const handle = a.got.find((m) => m.seq === 1 && m.attrs)!.attrs!.boHandle as number;
  a.send(CMD.BO_WRITE, 2, { boHandle: handle, data: new TextEncoder().encode('root-secret') });
  expect((await a.answer(2)).error).toBe(0);
  const w = A.newWriter();
  const at = G.genlStart(w, famId, G.NLM_F.REQUEST | G.NLM_F.ACK | G.NLM_F.DUMP, 7, 0, CMD.BO_READ, 1);
  writeAttrs(w, spec, 'accel', { boHandle: handle });
  G.msgEnd(w, at);
  const thief = bundleForNobody({ code: `
    import { openSocket } from './genl/socket';
    const out: string[] = [];
    const s = openSocket({ protocol: 2, port: Number(process.argv[2]), onBatch: (b) => {
      for (let i = 0; i < b.count; i++) out.push(Buffer.from(b.data(i)).toString('latin1'));
    } });
    s.send(Buffer.from(process.argv[3], 'hex'), Number(process.argv[4]));
    setTimeout(() => { process.stdout.write(JSON.stringify(out)); s.close(); }, 400);` });
  try {
    a.sock.close();
    const r = await thief.run([String(port), Buffer.from(A.bytes(w)).toString('hex'), String(PORT)]);
    expect(r.stderr).toBe('');
    const got = JSON.parse(r.stdout) as string[];
    expect(got.join('')).not.toContain('root-secret');
    // Its answer is an error: NLMSG_DONE with ENOENT (the handle does not exist for this socket).
    const dv = new DataView(new Uint8Array(Buffer.from(got[0], 'latin1')).buffer);
    expect([dv.getUint16(4, true), dv.getInt32(16, true)]).toEqual([G.NLMSG.DONE, -2]);
    expect(await until(() => d.engine.bos.size, (n) => n === 0)).toBe(0); // the old socket's BO was freed when its port changed hands
  } finally {
    thief.dispose();
  }
});

it_('a dump in progress for a closed socket never reaches another user who binds its port and only listens', async () => {
  const port = 0x7c000000 + (process.pid & 0xffff);
  const a = rawAt(port, 4096); // a small buffer: the dump waits in the server's queue
  a.send(CMD.BO_CREATE, 1, { devIndex: 0, boSize: 1 << 20 });
  expect((await a.answer(1)).error).toBe(0);
  const handle = a.got.find((m) => m.seq === 1 && m.attrs)!.attrs!.boHandle as number;
  a.send(CMD.BO_WRITE, 2, { boHandle: handle, data: new TextEncoder().encode('root-dump-secret') });
  expect((await a.answer(2)).error).toBe(0);
  a.send(CMD.SUBSCRIBE, 3, { group: 'ras' });
  expect((await a.answer(3)).error).toBe(0);
  const listener = bundleForNobody({ code: `
    import { openSocket } from './genl/socket';
    let n = 0; let text = '';
    const s = openSocket({ protocol: 2, port: Number(process.argv[2]), onBatch: (b) => {
      for (let i = 0; i < b.count; i++) { n++; text += Buffer.from(b.data(i)).toString('latin1'); }
    } });
    setTimeout(() => { process.stdout.write(JSON.stringify({ n, secret: text.includes('root-dump-secret') })); s.close(); }, 700);` });
  try {
    a.sock.setOption(270, 5, 1); // NETLINK_NO_ENOBUFS: keep it quiet, it will not read
    a.send(CMD.BO_READ, 4, { boHandle: handle }, true);
    // 1 MiB in 3776-byte chunks, two at a time into its 8 KiB buffer: it runs for well over 100 ms.
    expect((await until(() => G.serverStats(d.served.srv), (x) => x.dumpsRunning === 1)).dumpsRunning).toBe(1);
    a.sock.close();
    const run = listener.run([String(port)]);
    await sleep(300);
    inject(d.rt.emu, d.rt.emu.devices.get(0)!, { block: 'dma', severity: 'deferred' });
    const r = await run;
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ n: 0, secret: false });
    expect(G.serverStats(d.served.srv).dumpsRunning).toBe(0);
  } finally {
    a.sock.close(); // again if an assertion above threw: a later case binds this port
    listener.dispose();
  }
});

test('the client table: a different uid on a known port is a new client; the old one is dropped', () => {
  const srv = G.createServer();
  const a = G.clientAt(srv, { port: 77, uid: 1000, gid: 1000, pid: 5 });
  const gone: number[] = [];
  G.onClientGone(srv, (c) => gone.push(c.id));
  G.subscribe(G.subscriptionsOf(srv), a, 40);
  const b = G.clientAt(srv, { port: 77, uid: 1001, gid: 1001, pid: 6 });
  expect(b).not.toBe(a);
  expect(b.id).not.toBe(a.id);
  expect(a.gone).toBe(true);
  expect(gone).toEqual([a.id]);
  expect(G.subscribersOf(G.subscriptionsOf(srv), 40).size).toBe(0);
  expect(G.clientAt(srv, { port: 77, uid: 1001, gid: 1001, pid: 6 })).toBe(b);
  expect(ACCEL.BO_HANDLE).toBeGreaterThan(0);
});

test('a socket already closed when its first datagram is read never adopts the socket that took its port', async () => {
  const table: SocketTable = new Map();
  const srv = G.createServer({ sockets: () => table });
  const a = G.clientAt(srv, { port: 88, uid: 0, gid: 0, pid: 9 }); // nobody holds 88 any more
  await Promise.resolve(); // a later callback: the table is read again
  table.set(88, { port: 88, inode: 7, cookie: 7n, flags: 0, dstPort: 0, groups: 0 }); // a successor
  expect(G.clientPresent(srv, a)).toBe(false);
  expect(a.gone).toBe(true);
  const b = G.clientAt(srv, { port: 88, uid: 0, gid: 0, pid: 10 });
  expect(b).not.toBe(a);
  expect(b.sock?.inode).toBe(7);
  await Promise.resolve();
  expect(G.clientPresent(srv, b)).toBe(true);
});

test('a request a closed socket sent is answered to nobody when another process holds its port by the time the daemon reads it', async () => {
  const port = 0x7b000000 + (process.pid & 0xffff);
  const a = rawAt(port);
  a.send(CMD.BO_CREATE, 1, { devIndex: 0, boSize: 1 << 16 });
  expect((await a.answer(1)).error).toBe(0);
  const handle = a.got.find((m) => m.seq === 1 && m.attrs)!.attrs!.boHandle as number;
  const marker = path.join(os.tmpdir(), `accelnl-core-bound-${process.pid}`);
  fs.rmSync(marker, { force: true });
  const b = bundleForNobody({ code: `
    import * as fs from 'fs';
    import { openSocket } from './genl/socket';
    let n = 0;
    const s = openSocket({ protocol: 2, port: Number(process.argv[2]), onBatch: (x) => { n += x.count; } });
    fs.writeFileSync(process.argv[3], 'bound');
    setTimeout(() => { process.stdout.write(JSON.stringify({ n })); s.close(); }, 600);` });
  try {
    const before = G.serverStats(d.served.srv).staleDatagrams;
    // The request reaches the daemon's socket now, but the daemon (this process) reads it only
    // after the event loop runs again: by then the socket closed and another process has the port.
    a.send(CMD.BO_READ, 5, { boHandle: handle }, true);
    a.sock.close();
    const child = spawn(process.execPath, [path.join(b.dir, 'main.js'), String(port), marker],
      { cwd: b.dir, env: { ACCELNL_NATIVE: path.join(b.dir, ADDON_FILE) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (x) => { out += x; });
    const t0 = Date.now();
    while (!fs.existsSync(marker) && Date.now() - t0 < 10000) { /* hold the event loop: the daemon must not read yet */ }
    expect(fs.existsSync(marker)).toBe(true);
    await new Promise((r) => child.on('close', r));
    expect(JSON.parse(out)).toEqual({ n: 0 }); // no dump chunk, no DONE, no ACK for the new socket
    expect(G.serverStats(d.served.srv).staleDatagrams).toBe(before + 1);
  } finally {
    fs.rmSync(marker, { force: true });
    b.dispose();
  }
}, 20000);

// A known client's datagrams are taken as its own while their uid and pid match (no check), so a
// socket this process opens on the port its closed socket had is first taken for that socket. A
// flush that checks its destinations (here: a unicast event to a subscriber rides with the answer)
// must then send the answer to the socket that asked, not drop it as meant for a closed one.
test('a socket this process reopens on its port gets its answers in a checked flush, and a late (async) answer too', async () => {
  const sub = rawAt(0x7c000000 + (process.pid & 0xffff));
  sub.send(CMD.SUBSCRIBE, 1, { group: 'ras' }); // unicast: every inject sends it an event
  expect((await sub.answer(1)).error).toBe(0);
  const port = 0x7d000000 + (process.pid & 0xffff);
  const a = rawAt(port);
  a.send(CMD.BO_CREATE, 1, { devIndex: 0, boSize: 64 });
  expect((await a.answer(1)).error).toBe(0);
  a.sock.close();
  const b = rawAt(port); // the same port, same pid and uid, before any sweep
  b.send(CMD.RAS_INJECT, 2, { devIndex: 0, block: 'dma', severity: 'deferred' });
  expect((await b.answer(2)).error).toBe(0);
  // The old socket's BO was freed; the new socket owns nothing of it.
  b.send(CMD.BO_GET, 3, {}, true);
  expect((await b.answer(3)).error).toBe(0);
  expect(b.got.filter((m) => m.seq === 3 && m.attrs)).toEqual([]);
  b.sock.close();
  // An async op (job-wait) answered after its callback, from a reopened socket.
  const port2 = port + 0x10000;
  const c = rawAt(port2);
  c.send(CMD.BO_CREATE, 1, { devIndex: 0, boSize: 64 });
  expect((await c.answer(1)).error).toBe(0);
  c.sock.close();
  const e = rawAt(port2);
  e.send(CMD.JOB_WAIT, 4, { jobId: 0x7fffffff, timeoutMs: 10 });
  expect((await e.answer(4)).error).toBe(-2);
  e.sock.close();
  sub.sock.close();
});

test('a library client that closes is forgotten at once (ACCELNL_OPT_CLOSING): its BOs are freed without a sweep', async () => {
  d.served.sweeper.stop(); // the periodic sweep would free them too: only the closing message may here
  const before = d.engine.bos.size;
  const c = await connectAccel({ serverPort: PORT });
  await c.do(CMD.BO_CREATE, { devIndex: 0, boSize: 4096 });
  expect(d.engine.bos.size).toBe(before + 1);
  c.close();
  expect(await until(() => d.engine.bos.size, (n) => n === before)).toBe(before);
});

test('clients a process closes and opens one after another share its port: none of their answers is reported as a raced send', async () => {
  // The kernel binds a process's first free socket to its pid: each new client gets the port the
  // closed one had (here a fixed port, so that a socket another test left on the pid cannot change
  // that). Each says, closing, that it read every answer (its CLOSING carries its inode), which
  // proves what was sent to it: the next socket on the port is no race.
  const reused = 0x7e200000 + (process.pid & 0xffff);
  const before = G.serverStats(d.served.srv);
  const ports: number[] = [];
  for (let i = 0; i < 40; i++) {
    const c = G.createClient({ serverPort: PORT, port: reused });
    try {
      expect((await c.resolve('accel')).id).toBe(famId);
      ports.push(c.port);
    } finally {
      c.close();
    }
  }
  await sleep(SETTLE_MS * 5);  // past the time a suspect would be reported
  const after = G.serverStats(d.served.srv);
  expect(ports.filter((p, i) => i > 0 && p === ports[i - 1]).length).toBeGreaterThan(30);
  expect(after.racedSends - before.racedSends).toBe(0);
  expect(after.clients).toBeLessThanOrEqual(before.clients);

  // The control: the same loop from sockets that say nothing when they close. Each answer is a
  // suspect when the next socket shows up on the port, and is reported: nobody proved it read.
  const quiet: number[] = [];
  for (let i = 0; i < 10; i++) {
    const a = rawAt(reused); // the same port again
    quiet.push(a.sock.port);
    a.send(CMD.DEV_GET, 1, { devIndex: 0 });
    expect((await a.answer(1)).error).toBe(0);
    a.sock.close();
  }
  await sleep(SETTLE_MS * 5);
  expect(quiet.filter((p, i) => i > 0 && p === quiet[i - 1]).length).toBeGreaterThan(5);
  expect(G.serverStats(d.served.srv).racedSends - after.racedSends).toBeGreaterThan(0);
});

test('a client vouches, closing, only when it read the answer to every request it sent', async () => {
  // A stand-in server that records the CLOSING value and answers only requests it is told to.
  const serverPort = 0x7e100000 + (process.pid & 0xffff);
  const closing: number[] = [];
  let answerTo: number | undefined;
  const srv = openSocket({
    protocol: G.NETLINK_USERSOCK, port: serverPort,
    onBatch: (b) => {
      for (let i = 0; i < b.count; i++) {
        const v = A.view(new Uint8Array(b.data(i)));
        if (v.dv.getUint16(4, true) === ACCELNL_MSG_SOCKOPT && v.dv.getUint32(16, true) === ACCELNL_OPT_CLOSING) closing.push(v.dv.getUint32(20, true));
        if (v.dv.getUint16(4, true) !== famId || answerTo === undefined) continue;
        if ((v.dv.getUint16(6, true) & G.NLM_F.DUMP) === G.NLM_F.DUMP) {
          // A dump ends with NLMSG_DONE (NLM_F_MULTI, an int 0), as the kernel ends one.
          const done = new Uint8Array(20);
          const dv = new DataView(done.buffer);
          dv.setUint32(0, 20, true); dv.setUint16(4, G.NLMSG.DONE, true); dv.setUint16(6, 2, true);
          dv.setUint32(8, v.dv.getUint32(8, true), true); dv.setUint32(12, answerTo, true);
          srv.send(done, answerTo);
          continue;
        }
        const w = A.newWriter();
        G.writeAck(w, v, 0, 0, undefined, answerTo);
        srv.send(A.bytes(w), answerTo);
      }
    },
  });
  try {
    const unanswered = G.createClient({ serverPort, timeoutMs: 50 });
    await expect(unanswered.request(famId, CMD.DEV_GET)).rejects.toThrow(/no answer/);
    unanswered.close();
    const pending = G.createClient({ serverPort });
    const never = pending.request(famId, CMD.DEV_GET).catch((e: Error) => e.message);
    pending.close();
    expect(await never).toBe('client closed');
    const answered = G.createClient({ serverPort });
    answerTo = answered.port;
    await answered.request(famId, CMD.DEV_GET);
    for await (const m of answered.dump(famId, CMD.DEV_GET)) expect(m).toBeUndefined();  // DONE at once: nothing in it
    await Promise.all([answered.request(famId, CMD.DEV_GET), answered.request(famId, CMD.DEV_GET)]);
    const inode = querySockets(G.NETLINK_USERSOCK)!.table.get(answered.port)!.inode;
    answered.close();
    await until(() => closing.length, (n) => n === 3);
    expect(closing).toEqual([0, 0, inode]);
    expect(inode).toBeGreaterThan(0);
  } finally {
    srv.close();
  }
});

test('a malformed or false CLOSING is no crash: a short one is ignored, one naming another inode proves nothing and closes as a plain one', async () => {
  const a = rawAt(0);
  const bos = d.engine.bos.size;
  a.send(CMD.BO_CREATE, 1, { devIndex: 0, boSize: 64 });
  expect((await a.answer(1)).error).toBe(0);
  // 20 bytes: the option name without its value. Not a well-formed option: nothing happens.
  const short = new Uint8Array(20);
  new DataView(short.buffer).setUint32(0, 20, true);
  new DataView(short.buffer).setUint16(4, ACCELNL_MSG_SOCKOPT, true);
  new DataView(short.buffer).setUint32(16, ACCELNL_OPT_CLOSING, true);
  expect(a.sock.send(short, PORT)).toBe(0);
  a.send(CMD.DEV_GET, 2, { devIndex: 0 });
  expect((await a.answer(2)).error).toBe(0);
  expect(d.engine.bos.size).toBe(bos + 1);
  // An inode that is not this socket's: the daemon checks the socket as for any CLOSING (it is
  // this one, still open, saying it closes), so its client goes with its BO, and nothing else.
  const before = G.serverStats(d.served.srv);
  const own = querySockets(G.NETLINK_USERSOCK)!.table.get(a.sock.port)!.inode;
  const m = new Uint8Array(24);
  const dv = new DataView(m.buffer);
  dv.setUint32(0, 24, true); dv.setUint16(4, ACCELNL_MSG_SOCKOPT, true);
  dv.setUint32(16, ACCELNL_OPT_CLOSING, true); dv.setUint32(20, own + 12345, true);
  expect(a.sock.send(m, PORT)).toBe(0);
  expect(await until(() => d.engine.bos.size, (n) => n === bos)).toBe(bos);
  // The socket, still open, is served afresh.
  a.send(CMD.DEV_GET, 3, { devIndex: 0 });
  expect((await a.answer(3)).error).toBe(0);
  expect(G.serverStats(d.served.srv).racedSends).toBe(before.racedSends);
  a.sock.close();
});
