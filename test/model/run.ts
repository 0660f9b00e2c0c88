// The model test's coordinator: a real daemon (bin/accel daemon, temp state dir, private port),
// client processes as root and as nobody holding the sockets, one actor per socket slot taking
// random steps (steps.ts), sockets closed and their ports rebound by another process (mostly of
// the other user), and the daemon killed with SIGKILL and restarted. Every datagram is checked as
// it arrives (model.ts); after every restart and at the end the RAS log is checked against the
// ledger of acknowledged records.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { type AccelClient, connectAccel } from '../../device/client';
import { CMD } from '../../device/gen/accel';
import { helloMessages } from '../../genl/sockopt';
import { type Running, startAccel } from '../helpers/cli';
import {
  KINDS, type Kind, type Sock, type Violations, type World, abandonAll, eventContent, judgeJobEvents, onDatagram, onOverrun, request, violation,
} from './model';
import { type Proc, bundleClient, startProc } from './procs';
import { type Rng, rng } from './rng';
import { pickStep, probe, STEPS } from './steps';

export interface ModelOptions {
  seed: number;
  seconds: number;
  /** Client processes, half of them nobody (default 8). */
  procs?: number;
  /** Sockets (actors) over all processes (default 12). */
  slots?: number;
  /** Time between daemon kills, ms (default 5-12 s; longer runs 10-40 s). */
  killEvery?: [number, number];
  /** Chance that a step closes the socket and another process rebinds its port. */
  closeChance?: number;
  port?: number;
  log?: (line: string) => void;
}

export interface ModelResult {
  seed: number;
  seconds: number;
  clients: { procs: number; root: number; nobody: number; slots: number; sockets: number };
  stats: World['stats'] & { records: number; stepsByName: Record<string, number> };
  violations: Partial<Record<Kind, Violations>>;
  /** Harness trouble (a client process that died, a daemon that would not start): not model violations. */
  errors: string[];
  /**
   * Successor leaks the daemon reported itself as raced sends (the window userspace cannot close:
   * docs/transport.md "Raced sends"): not violations, counted apart. Unreported ones are in violations.
   */
  raced: { lines: number; messages: number; examples: string[] };
}

/** genl/outbox.ts's line for a datagram that may have reached the next socket on its port. */
const RACED = /^accelnl: raced send: port 0x([0-9a-f]{8}) socket inode \d+ changed hands during the send \((?:now inode \d+|now no socket)\); (a reply|a dump chunk|an event|an overrun notice) for it may have reached the next socket$/gm;

/**
 * Judge the successor leaks against the daemons' logs: a leak is reported when the daemon that sent
 * it (same restart epoch) logged a raced send to that port of its class (an event for M3; a reply,
 * dump chunk or overrun notice for M4). One line covers the messages of its datagram, so the match
 * is per daemon, port and class, not per message.
 */
function judgeLeaks(w: World, logs: Map<number, string>): ModelResult['raced'] {
  const reported = new Set<string>();
  let lines = 0;
  for (const [epoch, text] of logs) {
    for (const m of text.matchAll(RACED)) {
      lines++;
      reported.add(`${epoch}:${parseInt(m[1], 16)}:${m[2] === 'an event' ? 'dead-event-to-successor' : 'dead-reply-to-successor'}`);
    }
  }
  const raced = { lines, messages: 0, examples: [] as string[] };
  for (const l of w.successorLeaks) {
    if (reported.has(`${l.epoch}:${l.port >>> 0}:${l.kind}`)) {
      raced.messages++;
      if (raced.examples.length < 5) raced.examples.push(`step ${l.step}: ${l.detail}`);
      continue;
    }
    violation(w, l.kind, `${l.detail} (not reported by the daemon as a raced send)`, l.variant, l.step);
  }
  return raced;
}

const CONFIG = `storm: { burst: 1000000 }
devices:
  - { log-capacity: 1048576 }
  - { log-capacity: 1048576 }
`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runModel(o: ModelOptions): Promise<ModelResult> {
  const log = o.log ?? (() => {});
  const r = rng(o.seed);
  const nProcs = o.procs ?? 8, nSlots = o.slots ?? 12;
  const killEvery = o.killEvery ?? (o.seconds > 300 ? [10000, 40000] : [5000, 12000]);
  const closeChance = o.closeChance ?? 0.03;
  const port = o.port ?? 0x415d0000 + (process.pid & 0xfff);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-model-'));
  fs.writeFileSync(path.join(dir, 'config.yaml'), CONFIG);
  const errors: string[] = [];
  const stepsByName: Record<string, number> = {};
  const w: World = {
    seed: o.seed, daemonPort: port, family: 0, groups: new Map(), epoch: 0, up: false, socks: new Map(), nextSock: 1,
    bySeq: new Map(), nextSeq: (o.seed & 0xffffff) * 64 + 1, clock: 0, ledger: [], acked: new Map(), violations: new Map(), successorLeaks: [],
    jobs: new Map(), jobEvents: [],
    stats: { steps: 0, requests: 0, restarts: 0, rebinds: 0, rebindsOtherUser: 0, closes: 0, optedIn: 0, events: 0, injections: 0, jobs: 0,
      probes: 0, jobProbes: 0, jobEvents: 0, ownJobEvents: 0, lostToKill: 0, foreign: 0, settled: 0, overruns: 0, watchesChecked: 0 },
  };

  // --- the daemon -------------------------------------------------------------------------------
  let daemon: Running | undefined;
  /** Every daemon of the run by restart epoch, for its stderr (raced-send lines) at the end. */
  const daemonLogs = new Map<number, Running>();
  let admin: AccelClient | undefined;
  let killing = false;
  let upWaiters: (() => void)[] = [];
  const whenUp = (): Promise<void> => (w.up ? Promise.resolve() : new Promise((res) => upWaiters.push(res)));
  const startDaemon = async (): Promise<void> => {
    const d = startAccel(['daemon', '--state-dir', path.join(dir, 'state'), '--config', path.join(dir, 'config.yaml'), '--port', String(port)]);
    d.proc.once('close', (code, signal) => {
      if (!killing && !stopped) violation(w, 'daemon-died', `the daemon exited (${code ?? signal}) on its own: ${d.stderr().slice(-500)}`);
    });
    daemonLogs.set(w.epoch, d);
    await d.waitFor(/accel daemon ready/, 'stdout', 30000);
    daemon = d;
    admin = await connectAccel({ serverPort: port, timeoutMs: 15000 });
    w.family = admin.family.id;
    w.groups = admin.family.groups;
    await verifyLog();
    w.up = true;
    for (const f of upWaiters) f();
    upWaiters = [];
  };
  /** Every acknowledged record is in the log with its content, and no record twice. */
  const verifyLog = async (): Promise<void> => {
    const got = new Map<string, string>();
    const bySyndrome = new Map<string, number>();
    for (const dev of [0, 1]) {
      for (const m of await admin!.dump(CMD.RAS_LOG_GET, { devIndex: dev, cursor: 1 })) {
        if (m.lost) violation(w, 'record-lost', `device ${dev}: the log no longer holds ${m.lost} records`);
        for (const e of m.event ?? []) {
          got.set(`${dev}:${e.seq}`, eventContent(e));
          const syn = Buffer.from(e.syndrome ?? []).toString('hex');
          bySyndrome.set(syn, (bySyndrome.get(syn) ?? 0) + 1);
        }
      }
    }
    const missing = w.ledger.filter((x) => got.get(x.key) !== x.content);
    if (missing.length) violation(w, 'record-lost', `after restart ${w.stats.restarts}: ${missing.length} of ${w.ledger.length} acknowledged records missing or changed, e.g. ${missing.slice(0, 3).map((x) => x.key).join(', ')}`);
    const twice = [...bySyndrome].filter(([, n]) => n > 1);
    if (twice.length) violation(w, 'record-lost', `after restart ${w.stats.restarts}: ${twice.length} records appear more than once in the log`);
  };
  const restart = async (): Promise<void> => {
    w.up = false;
    killing = true;
    const closed = new Promise((res) => daemon!.proc.once('close', res));
    daemon!.proc.kill('SIGKILL');
    await closed;
    killing = false;
    admin?.close();
    // What the client processes received from the old daemon is judged before the model forgets it.
    await sleep(300);
    await Promise.all(procs.map((p) => p.cmd('sync', 0)));
    w.epoch++;
    w.stats.restarts++;
    for (const s of w.socks.values()) {
      w.stats.lostToKill += s.pending.size;
      abandonAll(w, s, 'daemon killed');
      // The daemon's memory is gone: BOs, jobs, unicast subscriptions. Kernel memberships stay.
      s.bos.clear();
      s.jobs.clear();
      s.uni.clear();
      s.predUni.clear();
      if (s.watch?.mode === 'unicast') s.watch = undefined;
    }
    log(`model: restart ${w.stats.restarts} (epoch ${w.epoch}), ${w.ledger.length} records acknowledged so far`);
    await startDaemon();
  };

  // --- client processes and sockets ----------------------------------------------------------------
  let stopped = false;
  const bundle = bundleClient();
  const procs: Proc[] = [];
  const onEvent = (p: Proc, e: { ev: string; sock: number; from?: number; uid?: number; groups?: number; hex?: string }): boolean => {
    const s = w.socks.get(e.sock);
    if (!s) return false;
    if (e.ev === 'overrun') { onOverrun(w, s, false); return false; }
    return onDatagram(w, s, e.from!, e.uid!, e.groups!, Buffer.from(e.hex!, 'hex'));
  };
  const onExit = (p: Proc, code: number | null, stderr: string): void => {
    if (!stopped) errors.push(`client process ${p.index} (uid ${p.uid}) exited ${code}: ${stderr.slice(-500)}`);
  };
  /**
   * Ports are chosen here (never by kernel autobind), so a socket's port is known before it can
   * receive. From the seed, shifted by this process's pid: two runs of one seed at once (a long
   * run beside `npm test`) do not fight over the same ports, and a run still takes its seed's steps.
   */
  const usedPorts = new Set<number>();
  const shift = Math.imul(process.pid, 0x9e3779b1) >>> 0;
  const freshPort = (rr: Rng): number => {
    for (;;) {
      const p = 0x50000000 + ((rr.int(0x2fffffff) + shift) % 0x2fffffff);
      if (!usedPorts.has(p)) { usedPorts.add(p); return p; }
    }
  };
  const openSock = async (p: Proc, rr: Rng, bindPort: number, pred?: Sock): Promise<Sock | undefined> => {
    const s: Sock = {
      id: w.nextSock++, proc: p, uid: p.uid, port: bindPort, alive: true, pending: new Map(), bos: new Map(), jobs: new Map(),
      // A subscription left on a port reaches every later socket on it, so what the predecessors held is inherited.
      uni: new Set(), joined: false, pred, predUni: new Map([...(pred?.predUni ?? []), ...[...(pred?.uni ?? [])].map((g) => [g, pred!] as const)]), lastEvSeq: new Map(), stepEpoch: w.epoch,
    };
    w.socks.set(s.id, s);
    // Some sockets get a small receive buffer, so the daemon meets full ports (queues, dumps held).
    const rc = await p.cmd('open', s.id, { port: bindPort, rcvbuf: rr.chance(0.2) ? 8192 : 0 });
    if (rc < 0) { w.socks.delete(s.id); return undefined; }
    if (rc !== bindPort) errors.push(`socket bound to port ${rc}, not ${bindPort}`);
    // Half the sockets say what genl/client.ts says before its first request: its read length and
    // joined answers (genl/sockopt.ts). The daemon then joins their answers and fills their dump
    // datagrams to 32 KiB; a successor on the port must get neither.
    if (rr.chance(0.5)) {
      for (const m of helloMessages({ recvLen: 65536, joinAnswers: true })) {
        await p.cmd('send', s.id, { to: port, hex: Buffer.from(m).toString('hex') });
      }
      w.stats.optedIn++;
    }
    return s;
  };

  /**
   * Close the slot's socket (sometimes busy: not reading, with a dump and a job-wait in flight)
   * and have another process, mostly of the other user, bind the very port at once. The new
   * socket then asks for the old one's BOs: none may be there.
   */
  const closeAndRebind = async (slot: { sock: Sock }, rr: Rng): Promise<void> => {
    const old = slot.sock;
    if (rr.chance(0.5)) {
      await old.proc.cmd('pause', old.id);
      const big = [...old.bos].sort((a, b) => b[1].size - a[1].size)[0];
      if (big) void request(w, old, CMD.BO_READ, { boHandle: big[0], boOffset: 0, boSize: big[1].size }, { dump: true });
      void request(w, old, CMD.RAS_LOG_GET, { devIndex: rr.int(2), cursor: 1 }, { dump: true });
      const job = [...old.jobs.keys()][0];
      if (job !== undefined) void request(w, old, CMD.JOB_WAIT, { jobId: job, timeoutMs: 15000 });
      await sleep(rr.range(5, 40));
    }
    await old.proc.cmd('close', old.id);
    old.alive = false;
    old.watch = undefined;
    abandonAll(w, old, 'socket closed');
    w.stats.closes++;
    // A closed socket receives nothing more; what its successor needs of it is its BO handles (the
    // data is dropped: long runs close thousands) and its port's leftover subscriptions.
    w.socks.delete(old.id);
    for (const b of old.bos.values()) b.data = new Uint8Array(0);
    old.pred = undefined;
    const otherUser = procs.filter((p) => p.uid !== old.uid);
    const sameUser = procs.filter((p) => p.uid === old.uid && p !== old.proc);
    const q = rr.chance(0.75) || !sameUser.length ? rr.pick(otherUser) : rr.pick(sameUser);
    let s = await openSock(q, rr, old.port, old);
    if (s) {
      w.stats.rebinds++;
      if (q.uid !== old.uid) w.stats.rebindsOtherUser++;
    } else {
      errors.push(`${q.uid === 0 ? 'root' : 'nobody'} could not bind port ${old.port} right after it closed`);
      s = await openSock(q, rr, freshPort(rr));
      if (!s) { errors.push('could not open a socket'); return; }
    }
    slot.sock = s;
    s.stepEpoch = w.epoch;
    for (const h of [...old.bos.keys()].slice(0, 3)) await probe(w, s, rr, h);
  };

  // --- the run -----------------------------------------------------------------------------------
  const t0 = Date.now();
  let stopping = false;
  const slots: { sock: Sock }[] = [];
  try {
    await startDaemon();
    for (let i = 0; i < nProcs; i++) procs.push(await startProc(bundle, i, i % 2 === 1, onEvent, onExit));
    for (let i = 0; i < nSlots; i++) {
      const s = await openSock(procs[i % nProcs], r, freshPort(r));
      if (!s) throw new Error(`could not open socket ${i}`);
      slots.push({ sock: s });
    }
    log(`model: seed ${o.seed} (ACCELNL_MODEL_SEED to replay), ${o.seconds} s, ${nProcs} processes (${procs.filter((p) => p.uid === 0).length} root, ` +
      `${procs.filter((p) => p.uid !== 0).length} nobody), ${nSlots} sockets, daemon port 0x${port.toString(16)}`);
    const actor = async (slot: { sock: Sock }, rr: Rng): Promise<void> => {
      while (!stopping) {
        if (!w.up) { await whenUp(); continue; }
        const s = slot.sock;
        s.stepEpoch = w.epoch;
        if (rr.chance(closeChance)) {
          await closeAndRebind(slot, rr);
          stepsByName['close+rebind'] = (stepsByName['close+rebind'] ?? 0) + 1;
        } else {
          const st = pickStep(s, rr);
          await st.run(w, s, rr);
          stepsByName[st.name] = (stepsByName[st.name] ?? 0) + 1;
        }
        w.stats.steps++;
      }
    };
    const killer = async (rr: Rng): Promise<void> => {
      for (;;) {
        const at = Date.now() + rr.range(killEvery[0], killEvery[1]);
        while (Date.now() < at && !stopping) await sleep(100);
        if (stopping) return;
        await restart();
      }
    };
    const progress = setInterval(() => {
      // Forget answered requests after two minutes: a later answer with their seq counts as a stray.
      const old = Date.now() - 120000;
      for (const [seq, q] of w.bySeq) if (q.settledAt !== undefined && q.settledAt < old) w.bySeq.delete(seq);
      log(`model: ${((Date.now() - t0) / 1000).toFixed(0)} s, ${w.stats.steps} steps, ${w.stats.restarts} restarts, ${w.stats.rebinds} rebinds, ` +
        `violations ${JSON.stringify(Object.fromEntries([...w.violations].map(([k, v]) => [k, v.count])))}`);
    }, o.seconds > 120 ? 60000 : 15000);
    const actors = slots.map((sl) => actor(sl, r.fork()));
    const killing_ = killer(r.fork());
    await sleep(o.seconds * 1000);
    stopping = true;
    clearInterval(progress);
    await Promise.all(actors);
    await killing_.catch(() => undefined);
    // The end: every open subscription interval is checked, and the log once more.
    if (!w.up) await whenUp();
    for (const sl of slots) {
      const s = sl.sock;
      s.stepEpoch = w.epoch;
      const unsub = STEPS.find((x) => x.name === 'unsubscribe')!;
      if (unsub.weight(s)) await unsub.run(w, s, r);
    }
    await verifyLog();
  } finally {
    stopped = true;
    stopping = true;
    for (const p of procs) await p.stop();
    admin?.close();
    if (daemon) await daemon.stop('SIGTERM');
    bundle.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const sockets = w.nextSock - 1;
  const raced = judgeLeaks(w, new Map([...daemonLogs].map(([e, d]) => [e, d.stderr()])));
  judgeJobEvents(w);
  return {
    seed: o.seed, seconds: (Date.now() - t0) / 1000,
    clients: { procs: nProcs, root: procs.filter((p) => p.uid === 0).length, nobody: procs.filter((p) => p.uid !== 0).length, slots: nSlots, sockets },
    stats: { ...w.stats, records: w.ledger.length, stepsByName },
    violations: Object.fromEntries(w.violations),
    errors,
    raced,
  };
}

export { KINDS, type Kind };
