// Request rate over real sockets: one client code path sends CTRL_CMD_GETFAMILY("nlctrl") with
// NLM_F_ACK to the kernel's nlctrl (NETLINK_GENERIC, port 0) and to our daemon's nlctrl
// (NETLINK_USERSOCK), sequentially and pipelined (32 in flight), and counts completed requests.
// The sequential row has a second anchor, the userspace floor: a C echo server and client on
// NETLINK_USERSOCK (bench/floor.c), the least any userspace server's round trip can cost. The same
// C client also asks the kernel's nlctrl and our daemon's (`floor genl`), so that the three servers
// are compared under one client too: ours ÷ floor with the C client is what our server adds, and
// the protocol's: a GETFAMILY is answered with two datagrams (reply, then ACK), the echo with one.
// A second daemon runs with `--busy-poll 50` (docs/transport.md): the same clients against it show
// what the wake-up of the daemon costs a client in a request loop, and what polling buys back.
// The like-for-like anchor for the daemon is `floor genl-server`: a C server sending the same two
// answer datagrams (nlctrl's reply and the ACK) in one sendmmsg, sleeping or polling as ours does.
import { type ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as A from '../attrs';
import { CTRL_ATTR, CTRL_CMD, GENL_ID_CTRL, NETLINK_GENERIC, NETLINK_USERSOCK, NLMSG, genlStart, msgEnd, openSocket } from '../genl';
import { helloMessages } from '../genl/sockopt';
import { type Child, startChild } from './_daemon';
import { fmt, quick, smoke, report, stats, table } from './_lib';

async function measure(protocol: number, peer: number, inflight: number, ms: number, joined = false, busyPollUs = 0): Promise<number> {
  const w = A.newWriter(64);
  const at = genlStart(w, GENL_ID_CTRL, 0x05, 0, 0, CTRL_CMD.GETFAMILY, 1);
  A.putString(w, CTRL_ATTR.FAMILY_NAME, 'nlctrl');
  msgEnd(w, at);
  const req = A.bytes(w);
  const dv = new DataView(req.buffer);
  let seq = 1;
  let done = 0;
  let outstanding = 0;
  let stop = false;
  let finish: () => void = () => {};
  const send = () => {
    while (!stop && outstanding < inflight) {
      dv.setUint32(8, seq++, true);
      if (sock.send(req, peer) === 0) outstanding++;
      else break;
    }
  };
  const sock = openSocket({
    protocol, rcvbuf: 4 << 20, backend: 'native', busyPollUs,
    onBatch: (b) => {
      for (let i = 0; i < b.count; i++) {
        const d = b.data(i);
        const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
        let off = 0;
        while (off + 16 <= d.length) {
          const len = v.getUint32(off, true);
          if (len < 16) break;
          if (v.getUint16(off + 4, true) === NLMSG.ERROR) { done++; outstanding--; }
          off += (len + 3) & ~3;
        }
      }
      if (stop) { if (outstanding <= 0) finish(); return; }
      send();
    },
  });
  try {
    // What genl/client.ts tells a userspace server before its first request (genl/sockopt.ts):
    // its read length, and that answers read in one batch may share a datagram.
    if (joined) for (const m of helloMessages({ recvLen: 65536, joinAnswers: true })) sock.send(m, peer);
    send();
    await new Promise((r) => setTimeout(r, ms / 4)); // warm up
    const d0 = done;
    const t0 = process.hrtime.bigint();
    await new Promise((r) => setTimeout(r, ms));
    const n = done - d0;
    const el = Number(process.hrtime.bigint() - t0) / 1e9;
    stop = true;
    await new Promise<void>((r) => { finish = r; setTimeout(r, 500); if (outstanding <= 0) r(); });
    return n / el;
  } finally {
    sock.close();
  }
}

/** The C echo pair (bench/floor.c), built with cc into a temp dir; null with the reason when it cannot be. */
function buildFloor(dir: string): { bin: string } | { why: string } {
  const root = process.env.ACCELNL_ROOT ?? process.cwd();
  const src = path.join(root, 'bench/floor.c');
  const bin = path.join(dir, 'floor');
  const r = spawnSync(process.env.CC ?? 'cc', ['-O2', '-o', bin, src], { encoding: 'utf8' });
  if (r.error) return { why: `cc not available (${r.error.message})` };
  if (r.status !== 0) return { why: `cc failed: ${r.stderr.trim()}` };
  return { bin };
}

/** Starts the C echo server (or `mode` genl-server) on `port` and waits for its ready line. */
async function startFloorServer(bin: string, port: number, pollUs = 0, mode = 'server'): Promise<ChildProcess> {
  const proc = spawn(bin, [mode, String(port), String(pollUs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d) => { out += d; if (out.includes('ready')) resolve(); });
    proc.on('exit', (code) => reject(new Error(`floor server exited ${code}`)));
  });
  return proc;
}

/**
 * One timed run of the C client: against the C echo server, or (`genl`: [protocol, port]) asking a
 * generic netlink server for GETFAMILY with an ACK. Round trips per second.
 */
function floorRate(bin: string, port: number, ms: number, genl?: [number, number], pollUs = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const args = [...(genl ? ['genl', String(genl[0]), String(genl[1]), String(ms)] : ['client', String(port), String(ms)]), String(pollUs)];
    const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    // The client gives up after 2 s without an answer; this is in case it cannot even do that.
    const timer = setTimeout(() => proc.kill('SIGKILL'), ms * 2 + 10000);
    let out = '';
    proc.stdout!.on('data', (d) => { out += d; });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      const m = /rate (\d+)/.exec(out);
      if (code === 0 && m) resolve(Number(m[1])); else reject(new Error(`floor client exited ${code}: ${out}`));
    });
  });
}

/**
 * The busy-polling daemon's setting. A client's next request comes within 10 µs of its answer here;
 * the rate is the same from 10 to 100 µs (docs/performance.md, tenth round).
 */
const BUSY_POLL_US = 50;

async function main(): Promise<void> {
  const port = 0x41450000 + (process.pid & 0xffff);
  const busyPort = 0x42450000 + (process.pid & 0xffff);
  const floorPort = 0x46450000 + (process.pid & 0xffff);
  const floorPollPort = 0x47450000 + (process.pid & 0xffff);
  const cGenlPort = 0x48450000 + (process.pid & 0xffff);
  const cGenlPollPort = 0x49450000 + (process.pid & 0xffff);
  // Rounds of each measurement interleaved, so drift and neighbours' load hit all of them alike.
  const rounds = smoke ? 1 : quick ? 3 : 5;
  const ms = smoke ? 60 : quick ? 150 : 500;
  // The build dir goes when the run ends (every run used to leave one behind in /tmp).
  const floorDir = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-floor-'));
  const floor = buildFloor(floorDir);
  const runs: Record<string, number[]> = {};
  const add = (key: string, v: number) => { (runs[key] ??= []).push(v); };
  let child: Child | undefined, busy: Child | undefined;
  const cServers: ChildProcess[] = [];
  try {
    child = await startChild(port);
    busy = await startChild(busyPort, ['--busy-poll', String(BUSY_POLL_US)]);
    if ('bin' in floor) {
      cServers.push(await startFloorServer(floor.bin, floorPort));
      cServers.push(await startFloorServer(floor.bin, floorPollPort, BUSY_POLL_US));
      cServers.push(await startFloorServer(floor.bin, cGenlPort, 0, 'genl-server'));
      cServers.push(await startFloorServer(floor.bin, cGenlPollPort, BUSY_POLL_US, 'genl-server'));
    }
    for (let r = 0; r < rounds; r++) {
      for (const inflight of [1, 32]) {
        add(`kernel_${inflight}`, await measure(NETLINK_GENERIC, 0, inflight, ms));
        add(`ours_${inflight}`, await measure(NETLINK_USERSOCK, port, inflight, ms));
        add(`joined_${inflight}`, await measure(NETLINK_USERSOCK, port, inflight, ms, true));
        add(`busy_${inflight}`, await measure(NETLINK_USERSOCK, busyPort, inflight, ms));
        add(`busyjoined_${inflight}`, await measure(NETLINK_USERSOCK, busyPort, inflight, ms, true));
      }
      // Both ends polling: our client's socket too (ClientOptions.busyPollUs).
      add('pollclient_1', await measure(NETLINK_USERSOCK, busyPort, 1, ms, false, BUSY_POLL_US));
      if ('bin' in floor) {
        add('floor_1', await floorRate(floor.bin, floorPort, ms));
        add('ckernel_1', await floorRate(floor.bin, 0, ms, [NETLINK_GENERIC, 0]));
        add('cours_1', await floorRate(floor.bin, 0, ms, [NETLINK_USERSOCK, port]));
        add('cbusy_1', await floorRate(floor.bin, 0, ms, [NETLINK_USERSOCK, busyPort]));
        // The polling floor: the C pair with both ends polling, and its client against our polling daemon.
        add('floorpoll_1', await floorRate(floor.bin, floorPollPort, ms, undefined, BUSY_POLL_US));
        add('cpoll_1', await floorRate(floor.bin, 0, ms, [NETLINK_USERSOCK, busyPort], BUSY_POLL_US));
        // The C genl server, sleeping and polling: what a server sending our two datagrams costs.
        add('cgenl_1', await floorRate(floor.bin, 0, ms, [NETLINK_USERSOCK, cGenlPort]));
        add('cgenlpoll_1', await floorRate(floor.bin, 0, ms, [NETLINK_USERSOCK, cGenlPollPort], BUSY_POLL_US));
      }
    }
  } finally {
    for (const p of cServers) p.kill('SIGTERM');
    await child?.stop();
    await busy?.stop();
    fs.rmSync(floorDir, { recursive: true, force: true });
  }
  const st = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, stats(v)]));
  const data: Record<string, unknown> = { rounds, msPerRound: ms, busyPollUs: BUSY_POLL_US, runs, stats: st };
  // Medians, as the figures always were (the keys summary.js and the docs read).
  for (const [k, v] of Object.entries(st)) data[k] = v.median;
  if (!('bin' in floor)) data.floorSkipped = floor.why;
  const spread = (k: string) => `${fmt(st[k].median)} (${fmt(st[k].min)}-${fmt(st[k].max)})`;
  /** Ratio of two medians of this run; '' when either was not measured (no C floor). */
  const ratio = (a: string, b: string) => (st[a] && st[b] ? fmt(st[a].median / st[b].median, 2) : '');
  const rows = [1, 32].map((inflight) => ({
    mode: inflight === 1 ? 'sequential' : `pipelined (${inflight})`,
    'kernel nlctrl req/s': spread(`kernel_${inflight}`),
    'C echo floor req/s': inflight === 1 && st.floor_1 ? spread('floor_1') : '',
    'accelnl nlctrl req/s': spread(`ours_${inflight}`),
    'ours/kernel': ratio(`ours_${inflight}`, `kernel_${inflight}`),
    'ours/floor': inflight === 1 ? ratio('ours_1', 'floor_1') : '',
    'joined req/s': spread(`joined_${inflight}`),
    'joined/kernel': ratio(`joined_${inflight}`, `kernel_${inflight}`),
    'joined/floor': inflight === 1 ? ratio('joined_1', 'floor_1') : '',
  }));
  table(`Request rate, GETFAMILY + ACK, one client process${quick ? ' (quick)' : ''}: median (min-max) of ${rounds} rounds of ${ms} ms`, rows);
  if (st.cours_1) {
    table('Sequential, the C client of bench/floor.c against each server (what the server adds, one client for all)', [{
      'C floor (echo) req/s': spread('floor_1'), 'kernel nlctrl req/s': spread('ckernel_1'), 'accelnl nlctrl req/s': spread('cours_1'),
      'ours/floor': ratio('cours_1', 'floor_1'), 'ours/kernel': ratio('cours_1', 'ckernel_1'),
    }]);
  }
  table(`The same requests to a daemon started with --busy-poll ${BUSY_POLL_US} (same rounds)`, [1, 32].map((inflight) => ({
    mode: inflight === 1 ? 'sequential' : `pipelined (${inflight})`,
    'busy req/s': spread(`busy_${inflight}`),
    'busy/kernel': ratio(`busy_${inflight}`, `kernel_${inflight}`),
    'busy/floor': inflight === 1 ? ratio('busy_1', 'floor_1') : '',
    'busy/ours': ratio(`busy_${inflight}`, `ours_${inflight}`),
    'busy joined req/s': spread(`busyjoined_${inflight}`),
    'busy joined/floor': inflight === 1 ? ratio('busyjoined_1', 'floor_1') : '',
    'busy joined/kernel': ratio(`busyjoined_${inflight}`, `kernel_${inflight}`),
    'C client, busy req/s': inflight === 1 && st.cbusy_1 ? spread('cbusy_1') : '',
    'C client, busy/floor': inflight === 1 ? ratio('cbusy_1', 'floor_1') : '',
  })));
  table(`Both ends polling ${BUSY_POLL_US} µs, sequential (same rounds): client and daemon, against the C pair that polls too`, [{
    'polling Node client req/s': spread('pollclient_1'),
    'polling C client req/s': st.cpoll_1 ? spread('cpoll_1') : '',
    'polling floor req/s': st.floorpoll_1 ? spread('floorpoll_1') : '',
    'Node client/polling floor': ratio('pollclient_1', 'floorpoll_1'),
    'C client/polling floor': ratio('cpoll_1', 'floorpoll_1'),
    'Node client/floor': ratio('pollclient_1', 'floor_1'),
    'polling floor/floor': ratio('floorpoll_1', 'floor_1'),
  }]);
  if (st.cgenl_1) {
    table('Sequential, the C client against a C genl server sending the same two datagrams (the like-for-like anchor for the daemon; same rounds)', [{
      'C genl server req/s': spread('cgenl_1'), 'accelnl req/s': spread('cours_1'), 'ours/C genl': ratio('cours_1', 'cgenl_1'),
      'polling C genl server req/s': spread('cgenlpoll_1'), 'polling accelnl req/s': spread('cpoll_1'), 'polling ours/C genl': ratio('cpoll_1', 'cgenlpoll_1'),
      'C genl/floor': ratio('cgenl_1', 'floor_1'),
    }]);
  }
  console.log('ours: answers as the kernel sends them, one datagram each; joined: with the options genl/client.ts sends (ACCELNL_OPT_JOIN_ANSWERS: answers read in one batch share datagrams)');
  if (!('bin' in floor)) console.log(`C floor skipped: ${floor.why}`);
  report('rate', data);
}

main().catch((e) => { console.error(e); process.exit(1); });
