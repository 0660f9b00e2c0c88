// The model of the multi-client test: what every socket should hold (BOs, jobs, subscriptions,
// requests in flight), the ledger of acknowledged RAS records, and the checks applied to every
// datagram a client process reports. A check that fails records a violation; nothing throws, so
// one run finds every kind of fault it meets.
import { spec } from '../../device/gen/accel';
import type { Proc } from './procs';
import { type Accel, type Message, NLMSG, decode, decodeStatus, echoedBody, echoedHeader, encodeRequest, messagesOf } from './wire';

export const KINDS = {
  'crosstalk': 'a reply or ACK carrying the seq of another live socket\'s request',
  'stray-reply': 'a reply or ACK with a seq no socket sent',
  'ack-mismatch': 'an ERROR/ACK whose echoed request is not the request its seq names',
  'wrong-reply': 'a reply whose content does not answer its request (other job, handle, device or data)',
  'duplicate-answer': 'a second answer to a request already answered',
  'no-answer': 'a request left without an answer for 20 s while the daemon ran',
  'unexpected-error': 'an error answering a request the model says is valid',
  'foreign-bo': 'a socket read or listed a BO it does not own',
  'foreign-job': 'a non-root socket saw a job another user submitted (job-get, or its job-ntf event)',
  'inject-no-record': 'a root ras-inject answered without its event record (no reply message, or one with no event)',
  'dump-incomplete': 'a dump left out an entry that existed all through it (bo-get without the socket\'s own BO)',
  'dead-reply-to-successor': 'a reply, ACK or dump chunk meant for a closed socket reached the socket that took its port, and the daemon did not report it as a raced send (or the closed socket\'s dump blocks the new socket)',
  'dead-event-to-successor': 'an event of a closed socket\'s subscription reached the socket that took its port, and the daemon did not report it as a raced send',
  'unsubscribed-event': 'an event reached a socket that is not subscribed',
  'event-order': 'a subscriber got a device\'s RAS records out of order or twice',
  'event-content': 'an event whose content differs from the acknowledged record with its seq',
  'record-lost': 'an acknowledged RAS record missing from the log (or changed) after a restart',
  'subscriber-missed': 'a subscriber did not get an acknowledged record injected while it was subscribed',
  'bad-datagram': 'a datagram from the daemon\'s port but another uid, or not whole messages',
  'daemon-died': 'the daemon exited without being killed by the test',
} as const;
export type Kind = keyof typeof KINDS;

export interface BoModel { size: number; data: Uint8Array; busy: boolean }
export interface JobModel { a: number; b: number; c: number; m: number; n: number; expected: Uint8Array }

/** A subscription interval whose completeness is checked when it ends. */
export interface Watch { mode: 'unicast' | 'multicast'; start: number; got: Set<string>; overrun: boolean }

export interface Sock {
  id: number;
  proc: Proc;
  uid: number;
  port: number;
  alive: boolean;
  pending: Map<number, Req>;
  bos: Map<number, BoModel>;
  jobs: Map<number, JobModel>;
  /** Groups subscribed with the subscribe op (from the moment it is sent until its undo is acknowledged). */
  uni: Set<string>;
  /** Member of the ras multicast group (root). */
  joined: boolean;
  watch?: Watch;
  /**
   * The closed socket whose port this one took, and the unicast subscriptions left on the port by
   * it or the sockets before it (group -> the socket that subscribed).
   */
  pred?: Sock;
  predUni: Map<string, Sock>;
  lastEvSeq: Map<number, bigint>;
  /** The daemon epoch its current step started in: a step never outlives its daemon. */
  stepEpoch: number;
}

export type Outcome =
  | { kind: 'ok'; replies: Accel[] }
  | { kind: 'error'; errno: number; msg?: string; dump?: boolean }
  | { kind: 'lost'; why: string };

export interface Req {
  seq: number;
  sock: Sock;
  cmd: number;
  dump: boolean;
  bytes: Buffer;
  epoch: number;
  replies: Accel[];
  /** Set once answered or abandoned; later answers are duplicates (or late, after a kill). */
  settled?: 'answered' | 'abandoned';
  settledAt?: number;
  resolve: (o: Outcome) => void;
  timer?: NodeJS.Timeout;
  /** On a late answer to an abandoned request (after a kill): still acknowledged. */
  onLate?: (replies: Accel[]) => void;
}

export interface Record_ { key: string; content: string; sent: number; acked: number }

export interface World {
  seed: number;
  daemonPort: number;
  family: number;
  groups: Map<string, number>;
  /** Incremented at every daemon kill: what the model knew of the old daemon's memory is gone. */
  epoch: number;
  up: boolean;
  socks: Map<number, Sock>;
  nextSock: number;
  /** Every request by seq (seqs are unique over the whole run). */
  bySeq: Map<number, Req>;
  nextSeq: number;
  /** A logical clock: request sends, subscription starts, acknowledgements. */
  clock: number;
  /** Acknowledged RAS records in acknowledgement order, and by dev:seq. */
  ledger: Record_[];
  acked: Map<string, Record_>;
  violations: Map<Kind, Violations>;
  /**
   * Messages of a closed socket that reached the socket on its port next (M3, M4), held until the
   * end of the run: those the daemon itself reported as raced sends (genl/outbox.ts logs each
   * datagram that may have reached a successor) are the documented window; the rest are violations.
   */
  successorLeaks: SuccessorLeak[];
  /** Submitted jobs by `epoch:id` (job ids start again at every restart): the submitter's uid and the job's flops. */
  jobs: Map<string, { uid: number; flops: number }>;
  /**
   * job-ntf events non-root sockets received, judged at the end (an event can arrive before the
   * submitter's own answer that names the job): each must be of a job of the receiver's user.
   */
  jobEvents: { uid: number; epoch: number; id: number; flops: number; detail: string; step: number }[];
  stats: { steps: number; requests: number; restarts: number; rebinds: number; rebindsOtherUser: number; closes: number;
    /** Sockets that asked for joined answers and 32 KiB dump datagrams. */
    optedIn: number;
    events: number; injections: number; jobs: number; probes: number; jobProbes: number; jobEvents: number;
    /** job-ntf events of their own user's jobs that non-root sockets got (the audience lets those through). */
    ownJobEvents: number; lostToKill: number; foreign: number; settled: number; overruns: number; watchesChecked: number };
}

const CMD_NAME = new Map(spec.operations.map((o) => [o.value, o.name]));
export const cmdName = (cmd: number): string => CMD_NAME.get(cmd) ?? `cmd ${cmd}`;
const GROUP_OF: Record<string, string> = { 'ras-event-ntf': 'ras', 'job-ntf': 'jobs' };
const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('hex');
export const eventContent = (e: NonNullable<Accel['event']>[number]): string =>
  `${e.kind} ${e.block} ${e.severity} ${e.count} ${e.address} ${hex(e.syndrome)}`;

/** A message meant for a closed socket, seen by its port's successor: judged at the end (run.ts). */
export interface SuccessorLeak { kind: 'dead-reply-to-successor' | 'dead-event-to-successor'; port: number; epoch: number; detail: string; variant: string; step: number }

/** Hold a successor leak for the end of the run, when the daemons' logs say which were raced sends. */
function successorLeak(w: World, kind: SuccessorLeak['kind'], port: number, detail: string, variant: string): void {
  w.successorLeaks.push({ kind, port, epoch: w.epoch, detail, variant, step: w.stats.steps });
}

/** Per kind: how many, counts per variant (e.g. whether the two sockets had the same uid), first examples. */
export interface Violations { count: number; variants: Record<string, number>; examples: string[] }

export function violation(w: World, kind: Kind, detail: string, variant = '', step = w.stats.steps): void {
  let v = w.violations.get(kind);
  if (!v) w.violations.set(kind, (v = { count: 0, variants: {}, examples: [] }));
  v.count++;
  if (variant) v.variants[variant] = (v.variants[variant] ?? 0) + 1;
  if (v.examples.length < 5) v.examples.push(`step ${step}: ${detail}`);
}

/** Whether two sockets belong to one user: the case uid checks alone cannot tell apart. */
export const users = (a: Sock, b: Sock): string => (a.uid === b.uid ? 'same uid' : 'other uid');

export const who = (s: Sock): string => `socket #${s.id} (uid ${s.uid}, port ${s.port}${s.pred ? `, took it from #${s.pred.id} uid ${s.pred.uid}` : ''})`;

/** Send a request on `s`; resolves with its outcome (never rejects). */
export function request(w: World, s: Sock, cmd: number, a: Accel, o: { dump?: boolean; timeoutMs?: number; onLate?: (r: Accel[]) => void } = {}): Promise<Outcome> {
  // A step that began before a kill stops here: the new daemon's state is not the one it modelled.
  if (s.stepEpoch !== w.epoch) return Promise.resolve({ kind: 'lost', why: 'the daemon restarted during the step' });
  const seq = w.nextSeq;
  w.nextSeq = (w.nextSeq + 1) >>> 0 || 1;
  const bytes = encodeRequest(w.family, cmd, seq, !!o.dump, a);
  w.stats.requests++;
  return new Promise((resolve) => {
    const r: Req = { seq, sock: s, cmd, dump: !!o.dump, bytes, epoch: w.epoch, replies: [], resolve, onLate: o.onLate };
    w.bySeq.set(seq, r);
    s.pending.set(seq, r);
    r.timer = setTimeout(() => {
      if (r.settled) return;
      if (w.up && w.epoch === r.epoch && s.alive) violation(w, 'no-answer', `${cmdName(cmd)}${o.dump ? ' dump' : ''} seq ${seq} from ${who(s)}: no answer in ${(o.timeoutMs ?? 20000) / 1000} s`);
      settle(w, r, 'abandoned', { kind: 'lost', why: 'timeout' });
    }, o.timeoutMs ?? 20000);
    s.proc.cmd('send', s.id, { to: w.daemonPort, hex: bytes.toString('hex') }).then((rc) => {
      if (rc < 0 && !r.settled) settle(w, r, 'abandoned', { kind: 'lost', why: `send: errno ${-rc}` });
    });
  });
}

export function settle(w: World, r: Req, how: 'answered' | 'abandoned', o: Outcome): void {
  if (r.settled) return;
  r.settled = how;
  r.settledAt = Date.now();
  w.stats.settled++;
  clearTimeout(r.timer);
  r.sock.pending.delete(r.seq);
  r.resolve(o);
  // Keep a small record for recognising later strays; the bytes are not needed any more.
  r.bytes = Buffer.alloc(0);
  if (how === 'answered') r.replies = [];
}

/** Abandon what `s` has in flight (closed socket, daemon killed). */
export function abandonAll(w: World, s: Sock, why: string): void {
  for (const r of [...s.pending.values()]) settle(w, r, 'abandoned', { kind: 'lost', why });
}

/** Every datagram a client process received, checked and routed; true if it settled a request. */
export function onDatagram(w: World, s: Sock, from: number, uid: number, groups: number, data: Buffer): boolean {
  if (from !== w.daemonPort) {
    // Not ours to judge (another test's daemon still sending to a port it once knew): ignored, as the client library does.
    w.stats.foreign++;
    return false;
  }
  if (uid !== 0) {
    violation(w, 'bad-datagram', `${who(s)} got a datagram from the daemon's port sent by uid ${uid}`);
    return false;
  }
  const settledBefore = w.stats.settled;
  const { msgs, junk } = messagesOf(data, from, groups);
  if (junk) violation(w, 'bad-datagram', `${who(s)} got ${data.length} bytes that are not whole messages`);
  for (const m of msgs) {
    if (m.type === NLMSG.OVERRUN) { onOverrun(w, s, m.len >= 24 && !!(m.v.dv.getUint32(m.at + 20, true) & 1)); continue; }
    if (m.seq === 0 && m.type === w.family) { onEvent(w, s, m); continue; }
    onAnswer(w, s, m);
  }
  return w.stats.settled !== settledBefore;
}

export function onOverrun(w: World, s: Sock, lostReplies: boolean): void {
  w.stats.overruns++;
  if (s.watch) s.watch.overrun = true;
  if (lostReplies) abandonAll(w, s, 'the server dropped replies (NLMSG_OVERRUN)');
}

function onAnswer(w: World, s: Sock, m: Message): void {
  const r = w.bySeq.get(m.seq);
  const what = `${m.type === NLMSG.ERROR ? 'ERROR' : m.type === NLMSG.DONE ? 'DONE' : cmdName(m.cmd)} seq ${m.seq}`;
  if (!r) { violation(w, 'stray-reply', `${who(s)} got ${what}, a seq no socket sent`); return; }
  if (r.sock !== s) {
    if (!r.sock.alive && r.sock.port === s.port) {
      successorLeak(w, 'dead-reply-to-successor', s.port, `${who(s)} got ${what}, an answer to ${cmdName(r.cmd)}${r.dump ? ' dump' : ''} of closed ${who(r.sock)}`,
        `${cmdName(r.cmd)}${r.dump ? ' dump' : ''} ${what.split(' ')[0] === 'ERROR' || what.split(' ')[0] === 'DONE' ? what.split(' ')[0] : 'reply'}, ${users(s, r.sock)}`);
    } else {
      violation(w, 'crosstalk', `${who(s)} got ${what}, the answer to ${cmdName(r.cmd)}${r.dump ? ' dump' : ''} of ${who(r.sock)}`, users(s, r.sock));
    }
    return;
  }
  if (r.settled === 'answered') {
    // (A reply after its own ACK says the reply was delayed, not lost: told apart in the detail.)
    violation(w, 'duplicate-answer', `${who(s)} got ${what} after its request was answered${m.type !== NLMSG.ERROR && m.type !== NLMSG.DONE ? ` (a reply after the ${r.dump ? 'DONE' : 'ACK'}, ${Date.now() - (r.settledAt ?? 0)} ms later)` : ''}`);
    return;
  }
  const terminal = m.type === NLMSG.ERROR || (r.dump && m.type === NLMSG.DONE);
  if (m.type === NLMSG.ERROR) {
    const h = echoedHeader(m);
    const body = echoedBody(m);
    const reqBytes = r.settled ? undefined : r.bytes;
    if (!h || h.seq !== r.seq || h.type !== w.family || (reqBytes && (h.len !== reqBytes.length || (body && !Buffer.from(body).equals(reqBytes))))) {
      violation(w, 'ack-mismatch', `${who(s)}: the ERROR for ${cmdName(r.cmd)} seq ${r.seq} echoes ${h ? `type ${h.type} seq ${h.seq} len ${h.len}` : 'nothing'}` +
        `${body && reqBytes && !Buffer.from(body).equals(reqBytes) ? ' and other request bytes' : ''} (request: type ${w.family} len ${reqBytes?.length ?? '?'})`);
    }
  } else if (!terminal && m.type !== w.family) {
    // (NLM_F_MULTI on dump parts is per family, as in the kernel: not checked.)
    violation(w, 'wrong-reply', `${who(s)}: ${cmdName(r.cmd)}${r.dump ? ' dump' : ''} seq ${r.seq} answered by a message of type ${m.type} flags 0x${m.flags.toString(16)}`);
  }
  if (r.settled === 'abandoned') {
    // A late answer (the request was given up at a kill or timeout): only an acknowledgement matters.
    if (m.type !== NLMSG.ERROR && m.type !== NLMSG.DONE) { try { r.replies.push(decode(m)); } catch { /* counted below */ } }
    else if (decodeStatus(m).error === 0 && r.onLate) r.onLate(r.replies);
    return;
  }
  if (!terminal) {
    try { r.replies.push(decode(m)); } catch (e) { violation(w, 'wrong-reply', `${who(s)}: ${cmdName(r.cmd)} seq ${r.seq}: undecodable reply (${(e as Error).message})`); }
    return;
  }
  const { error, extack } = decodeStatus(m);
  const replies = r.replies;
  settle(w, r, 'answered', error ? { kind: 'error', errno: -error, msg: extack.msg, dump: r.dump } : { kind: 'ok', replies });
}

function onEvent(w: World, s: Sock, m: Message): void {
  w.stats.events++;
  const name = cmdName(m.cmd);
  const group = GROUP_OF[name] ?? 'config';
  if (m.groups === 0 && !s.uni.has(group)) {
    const holder = s.predUni.get(group);
    if (holder) successorLeak(w, 'dead-event-to-successor', s.port, `${who(s)} got ${name}, for the ${group} subscription of closed ${who(holder)}`, users(s, holder));
    else violation(w, 'unsubscribed-event', `${who(s)} got ${name} unicast without a ${group} subscription`);
    return;
  }
  if (m.groups !== 0 && !(s.joined && m.groups === 1 << ((w.groups.get('ras') ?? 1) - 1))) {
    violation(w, 'unsubscribed-event', `${who(s)} got ${name} on groups 0x${m.groups.toString(16)} without having joined`);
    return;
  }
  if (name !== 'ras-event-ntf' && name !== 'job-ntf') return;
  let a: Accel;
  try { a = decode(m); } catch (e) { violation(w, 'event-content', `${who(s)}: undecodable ${name} (${(e as Error).message})`); return; }
  if (name === 'job-ntf') {
    w.stats.jobEvents++;
    for (const j of a.job ?? []) {
      if (s.uid !== 0) w.jobEvents.push({ uid: s.uid, epoch: w.epoch, id: j.id ?? -1, flops: Number(j.flops), detail: `${who(s)} got job-ntf of job ${j.id} (${j.status})`, step: w.stats.steps });
    }
    return;
  }
  for (const e of a.event ?? []) {
    const dev = a.devIndex ?? -1;
    const seq = BigInt(e.seq ?? 0);
    const key = `${dev}:${seq}`;
    const last = s.lastEvSeq.get(dev);
    if (last !== undefined && seq <= last) violation(w, 'event-order', `${who(s)}: device ${dev} record ${seq} after ${last}`);
    s.lastEvSeq.set(dev, seq);
    const rec = w.acked.get(key);
    if (rec && rec.content !== eventContent(e)) violation(w, 'event-content', `${who(s)}: record ${key} is "${eventContent(e)}", acknowledged as "${rec.content}"`);
    s.watch?.got.add(key);
  }
}

/**
 * Judge the job-ntf events non-root sockets got: a job of another user is a violation. The job is
 * found by its id in the epoch the event arrived in, and must have the same flops (an event of the
 * killed daemon read after the restart names a job of the old epoch); unknown jobs are not judged.
 */
export function judgeJobEvents(w: World): void {
  for (const ev of w.jobEvents) {
    const j = w.jobs.get(`${ev.epoch}:${ev.id}`);
    if (!j || j.flops !== ev.flops) continue;
    if (j.uid !== ev.uid) violation(w, 'foreign-job', `${ev.detail}, which uid ${j.uid} submitted`, 'job-ntf event', ev.step);
    else w.stats.ownJobEvents++;
  }
}

/** Record an acknowledged injection's records (sent at clock `sent`). */
export function acknowledge(w: World, dev: number, sent: number, events: NonNullable<Accel['event']>): void {
  for (const e of events) {
    const rec: Record_ = { key: `${dev}:${e.seq}`, content: eventContent(e), sent, acked: ++w.clock };
    if (!w.acked.has(rec.key)) { w.ledger.push(rec); w.acked.set(rec.key, rec); }
  }
}

/**
 * End a subscription interval: `syncSent` is the clock when a request sent on the subscriber
 * after the interval was answered. Every record whose injection was sent after the interval
 * started and acknowledged before that request was sent must have reached the subscriber (on one
 * socket, an event caused by a request is queued before that request's ACK goes to anyone).
 */
export function closeWatch(w: World, s: Sock, syncSent: number): void {
  const x = s.watch;
  s.watch = undefined;
  if (!x || x.overrun) return;
  w.stats.watchesChecked++;
  const missed: string[] = [];
  for (let i = w.ledger.length - 1; i >= 0 && w.ledger[i].acked > x.start; i--) {
    const r = w.ledger[i];
    if (r.sent > x.start && r.acked < syncSent && !x.got.has(r.key)) missed.push(r.key);
  }
  if (missed.length) violation(w, 'subscriber-missed', `${who(s)} (${x.mode}) missed ${missed.length} acknowledged records, e.g. ${missed.slice(0, 3).join(', ')}`);
}

