// The fuzz target: one datagram goes to the attribute reader, the validator (with the policy of the
// op it names, strict and liberal) and the whole server dispatch (nlctrl, accel and drm-ras of an
// in-process daemon, answers captured synchronously). An oracle then judges what came back:
// exceptions, "internal error" answers, hangs, requests left unanswered, answers that are not
// well-formed netlink, extack offsets outside the request, admin ops that succeeded for nobody.
import * as A from '../../attrs';
import * as G from '../../genl';
import { type Daemon, manualClock, startDaemon } from '../../device';
import { type NlSocket, sendEach } from '../../genl/socket';
import { constants as os } from 'os';
import { putValidSet, type Rng } from './gen';

export const SERVER_PORT = 0x41434345;
/** Ports the fuzzer sends from: root, and nobody (uid 65534) for the permission oracle. */
export const ROOT_PORT = 4242;
export const NOBODY_PORT = 4243;
/** What the real server's socket keeps of a datagram (genl/serve.ts). */
export const MAX_MESSAGE = G.SERVER_MAX_MESSAGE;

export interface Sent { data: Uint8Array; port: number; groups: number }

export interface Half { fam: G.Family; op: G.Op; dump: boolean; h: G.OpHalf }

export interface Target {
  d: Daemon;
  srv: G.Server;
  clock: ReturnType<typeof manualClock>;
  sent: Sent[];
  halves: Half[];
  /** Inputs run against this target (it is rebuilt every so often to bound its state). */
  runs: number;
  /** Seqs of requests whose handler answered with a promise: answered later, or never if it waits. */
  async: Set<number>;
}

const CONFIG = `seed: 7
reset-ms: 2
storm: { burst: 4, interval-ms: 1000 }
devices:
  - { log-capacity: 16 }
  - {}
`;

/** A socket that records what the server sends and never blocks. */
function captureSocket(sent: Sent[]): NlSocket {
  const send = (data: Uint8Array, port: number, groups = 0): number => {
    sent.push({ data: data.slice(), port: port >>> 0, groups });
    return groups && !port ? -111 : 0; // USERSOCK: a group send reports ECONNREFUSED after delivering
  };
  return {
    port: SERVER_PORT, backend: 'native', credentials: true, send,
    sendMany: (data, spans, count = spans.length / 4, results) => sendEach(send, data, spans, count, results),
    addMembership() {}, dropMembership() {}, setOption: () => 0, close() {}, ref() {}, unref() {},
  };
}

export function newTarget(): Target {
  const sent: Sent[] = [];
  const clock = manualClock();
  const d = startDaemon({ port: SERVER_PORT, config: CONFIG, tick: false, clock, open: () => captureSocket(sent) });
  d.engine.hostLimit = 16 << 20; // buffer objects the fuzzer creates stay small
  const srv = d.served.srv;
  const halves = halvesOf(srv);
  const t: Target = { d, srv, clock, sent, halves, runs: 0, async: new Set() };
  // Note async handlers (job-wait...): their answer may come after this input is judged.
  for (const x of halves) {
    if (x.dump) continue;
    const h = x.h as G.DoHalf;
    const f = h.handler;
    h.handler = (c) => { const r = f(c); if (r instanceof Promise) t.async.add(c.seq); return r; };
  }
  return t;
}

export function closeTarget(t: Target): void {
  t.d.close();
}

/** Every op half (do, dump) of every family a server has. */
export function halvesOf(srv: G.Server): Half[] {
  const halves: Half[] = [];
  for (const fam of G.familiesIn(G.registryOf(srv))) {
    for (const op of fam.ops) {
      if (op.do) halves.push({ fam, op, dump: false, h: op.do });
      if (op.dump) halves.push({ fam, op, dump: true, h: op.dump });
    }
  }
  return halves;
}

/** Valid requests for every op of every family, `perOp` variants each: the seed corpus. */
export function seedCorpus(t: { halves: Half[] }, r: Rng, perOp = 3): Uint8Array[] {
  const out: Uint8Array[] = [];
  let seq = 1;
  for (const { fam, op, dump, h } of t.halves) {
    for (let k = 0; k < perOp; k++) {
      const w = A.newWriter(512);
      const flags = G.NLM_F.REQUEST | G.NLM_F.ACK | (dump ? G.NLM_F.DUMP : 0);
      const at = G.genlStart(w, fam.id!, flags, seq++, 0, op.cmd, fam.version);
      const pol = h.policy;
      if (pol && k > 0) putValidSet(w, r, pol, h.maxattr ?? pol.maxtype, 0, k === 1 ? 1 : 1 + r.int(5));
      G.msgEnd(w, at);
      out.push(A.bytes(w));
    }
  }
  return out;
}

const KNOWN_ERRNO = new Set(Object.values(os.errno));

/** The op half a message names, if any. */
function halfOf(t: Target, type: number, cmd: number, flags: number): Half | undefined {
  const dump = (flags & G.NLM_F.DUMP) === G.NLM_F.DUMP;
  return t.halves.find((x) => x.fam.id === type && x.op.cmd === cmd && x.dump === dump);
}

/** Throws on anything the reader or validator does wrong with this datagram; returns problems. */
function checkParsers(t: Target, data: Uint8Array, r: Rng | undefined): string[] {
  const probs: string[] = [];
  const v = A.view(data);
  const tb = new Int32Array(64);
  G.forEachMessage(v, 0, data.length, (at, len) => {
    const start = at + 20;
    const end = at + len;
    if (end < start) return;
    const rem = A.walk(v, start, end, () => {});
    if (rem > end - start || rem < -3) probs.push(`walk returned ${rem} for ${end - start} bytes`);
    A.parseInto(v, start, end, tb);
    deepWalk(v, start, end, 0);
    const type = v.dv.getUint16(at + 4, true), flags = v.dv.getUint16(at + 6, true), cmd = data[at + 16];
    const half = halfOf(t, type, cmd, flags) ?? (r ? r.pick(t.halves) : undefined);
    const pol = half?.h.policy;
    if (!pol) return;
    for (const mode of [A.NL_VALIDATE.STRICT, A.NL_VALIDATE.LIBERAL]) {
      const ext = A.newExtack();
      const maxattr = half.h.maxattr ?? pol.maxtype;
      const err = A.validate(v, start, end, maxattr, pol, mode, ext, new Int32Array(maxattr + 1));
      if (err > 0 || (err < 0 && !KNOWN_ERRNO.has(-err))) probs.push(`validate returned ${err}`);
      if (err < 0 && ext.badAttr >= 0 && (ext.badAttr < start || ext.badAttr + 4 > end)) {
        probs.push(`validate: bad attribute offset ${ext.badAttr} outside [${start}, ${end})`);
      }
    }
  });
  return probs;
}

/** Walk every payload that parses as attributes, at any depth (readers recurse like this). */
function deepWalk(v: A.View, start: number, end: number, depth: number): void {
  A.walk(v, start, end, (at) => {
    const n = A.attrLen(v, at);
    if (n >= 8 && depth < 64) deepWalk(v, at + 4, at + n, depth + 1);
    A.getString(v, at);
    A.getBytes(v, at);
    A.getUint(v, at);
    A.getSint(v, at);
  });
}

/** Messages as the server's receive loop sees them (netlink_rcv_skb). */
function requests(data: Uint8Array): { at: number; len: number; type: number; flags: number; seq: number; cmd: number }[] {
  const v = A.view(data);
  const out: { at: number; len: number; type: number; flags: number; seq: number; cmd: number }[] = [];
  G.forEachMessage(v, 0, data.length, (at, len) => {
    out.push({ at, len, type: v.dv.getUint16(at + 4, true), flags: v.dv.getUint16(at + 6, true),
      seq: v.dv.getUint32(at + 8, true), cmd: len > 16 ? data[at + 16] : -1 });
  });
  return out;
}

/** Well-formed attributes: they cover [start, end) exactly, and so do the payloads of flagged nests. */
export function attrsWellFormed(v: A.View, start: number, end: number, depth = 0): boolean {
  let ok = true;
  const rem = A.walk(v, start, end, (at) => {
    if ((A.attrTypeRaw(v, at) & A.NLA_F_NESTED) && depth < 32) ok &&= attrsWellFormed(v, at + 4, at + A.attrLen(v, at), depth + 1);
  });
  return ok && rem === 0;
}

/**
 * Judge the answers in t.sent to `data` from `port`: a list of problems, empty when all is well.
 * `data` is what the server was given (already cut to MAX_MESSAGE when longer).
 */
function judge(t: Target, data: Uint8Array, port: number, uid: number, truncated: boolean): string[] {
  const probs: string[] = [];
  const reqs = truncated ? [] : requests(data);
  const need = new Map<number, number>();
  const possible = new Map<number, number>();
  const bySeq = new Map<number, (typeof reqs)[number][]>();
  for (const q of reqs) {
    if (q.flags & G.NLM_F.ACK) need.set(q.seq, (need.get(q.seq) ?? 0) + 1);
    possible.set(q.seq, (possible.get(q.seq) ?? 0) + 1);
    bySeq.set(q.seq, [...(bySeq.get(q.seq) ?? []), q]);
  }
  const got = new Map<number, number>();
  for (const s of t.sent) {
    const d = s.data;
    const v = A.view(d);
    let at = 0;
    while (at < d.length) {
      if (d.length - at < 16) { probs.push(`datagram to ${s.port}: ${d.length - at} stray bytes at ${at}`); break; }
      const len = v.dv.getUint32(at, true);
      if (len < 16 || len > d.length - at) { probs.push(`datagram to ${s.port}: nlmsg_len ${len} at ${at} of ${d.length}`); break; }
      const type = v.dv.getUint16(at + 4, true), flags = v.dv.getUint16(at + 6, true), seq = v.dv.getUint32(at + 8, true);
      const pid = v.dv.getUint32(at + 12, true);
      if (pid !== (s.groups ? 0 : s.port) && !(seq === 0 && pid === 0)) probs.push(`nlmsg_pid ${pid} sent to port ${s.port}`);
      if (type === G.NLMSG.ERROR || type === G.NLMSG.DONE) {
        if (s.port === port) got.set(seq, (got.get(seq) ?? 0) + 1);
        probs.push(...judgeStatus(v, at, len, type, flags, seq, bySeq.get(seq), data, truncated));
      } else if (type >= G.NLMSG.MIN_TYPE) {
        const fam = G.familyById(G.registryOf(t.srv), type);
        if (!fam) probs.push(`message of unknown type 0x${type.toString(16)}`);
        else if (len < 20 || d[at + 17] !== fam.version || v.dv.getUint16(at + 18, true) !== 0) probs.push(`bad genl header in a ${fam.name} message`);
        else if (!attrsWellFormed(v, at + 20, at + len)) probs.push(`${fam.name} cmd ${d[at + 16]}: attributes not well-formed`);
        // Replies to an admin op sent by nobody mean it ran.
        const q = bySeq.get(seq);
        if (uid !== 0 && seq !== 0 && q?.length === 1 && isAdmin(t, q[0]) && s.port === port) probs.push(`admin op cmd ${q[0].cmd} replied to uid ${uid}`);
      } else probs.push(`message of control type ${type}`);
      at += (len + 3) & ~3;
    }
  }
  for (const [seq, n] of got) {
    if (n > (possible.get(seq) ?? 0) && !truncated && !t.async.has(seq)) probs.push(`${n} answers to seq ${seq}, ${possible.get(seq) ?? 0} requests`);
  }
  for (const [seq, n] of need) if ((got.get(seq) ?? 0) < n && !t.async.has(seq)) probs.push(`seq ${seq}: no answer (${got.get(seq) ?? 0} of ${n})`);
  if (truncated && (data[6] & G.NLM_F.REQUEST) && (got.size !== 1)) probs.push(`oversized datagram: ${got.size} answers`);
  return probs;
}

function isAdmin(t: Target, q: { type: number; cmd: number; flags: number }): boolean {
  const h = halfOf(t, q.type, q.cmd, q.flags);
  return !!h && !!((h.op.perm ?? 0) & (G.GENL_OP.ADMIN_PERM | G.GENL_OP.UNS_ADMIN_PERM));
}

function judgeStatus(v: A.View, at: number, len: number, type: number, flags: number, seq: number,
  qs: { at: number; len: number; flags: number; type: number; cmd: number }[] | undefined, data: Uint8Array, truncated: boolean): string[] {
  const probs: string[] = [];
  const what = type === G.NLMSG.ERROR ? 'ERROR' : 'DONE';
  if (len < (type === G.NLMSG.ERROR ? 36 : 20)) return [`${what} of ${len} bytes`];
  const m: G.Message = { v, at, len, type, flags, seq, cmd: 0, version: 0, attrs: at + 20, end: at + len, port: 0, groups: 0 };
  const err = v.dv.getInt32(at + 16, true);
  if (err > 0 || (err < 0 && !KNOWN_ERRNO.has(-err))) probs.push(`${what} with error ${err}`);
  let tlv: number;
  if (type === G.NLMSG.DONE) tlv = at + 20;
  else if (flags & G.NLM_F.CAPPED) tlv = at + 36;
  else tlv = at + 20 + ((v.dv.getUint32(at + 20, true) + 3) & ~3);
  if (flags & G.NLM_F.ACK_TLVS) {
    if (tlv > at + len || A.walk(v, tlv, at + len, () => {}) !== 0) probs.push(`${what}: TLVs not well-formed`);
  } else if (tlv !== at + len) probs.push(`${what}: ${at + len - tlv} bytes after the body without ACK_TLVS`);
  const { extack } = G.decodeStatus(m);
  if (extack.msg?.startsWith('internal error')) probs.push(`handler threw: ${extack.msg}`);
  const q = qs?.length === 1 ? qs[0] : undefined;
  if (q && !truncated) {
    if (extack.offset !== undefined && (extack.offset < 16 || extack.offset + 4 > q.len)) probs.push(`OFFS ${extack.offset} outside the ${q.len}-byte request`);
    if (extack.missNest !== undefined && (extack.missNest < 16 || extack.missNest + 4 > q.len)) probs.push(`MISS_NEST ${extack.missNest} outside the request`);
    if (type === G.NLMSG.ERROR) {
      const echo = flags & G.NLM_F.CAPPED ? 16 : q.len;
      const want = data.subarray(q.at, q.at + echo);
      const have = v.buf.subarray(at + 20, at + 20 + echo);
      if (have.length !== want.length || have.some((b, i) => b !== want[i])) probs.push('ERROR does not echo the request');
      if (err === 0 && !(q.flags & G.NLM_F.ACK)) probs.push('success ACK without NLM_F_ACK');
    }
  }
  return probs;
}

export interface Verdict { problems: string[]; ms: number }

/** How long one input may keep the server busy before it counts as a hang. */
export const HANG_MS = 2000;

/**
 * Run one datagram from root (or nobody) through parser, validator and dispatch; finish any dump it
 * started, synchronously, then judge. Exceptions that escape are problems too.
 */
export function runOne(t: Target, input: Uint8Array, nobody = false, r?: Rng): Verdict {
  const t0 = performance.now();
  const probs: string[] = [];
  const truncated = input.length > MAX_MESSAGE;
  const data = truncated ? input.subarray(0, MAX_MESSAGE) : input;
  const port = nobody ? NOBODY_PORT : ROOT_PORT;
  const uid = nobody ? 65534 : 0;
  try {
    probs.push(...checkParsers(t, data, r));
  } catch (e) {
    probs.push(`reader/validator threw: ${(e as Error).stack?.split('\n').slice(0, 3).join(' | ')}`);
  }
  t.sent.length = 0;
  try {
    G.receiveBatch(t.srv, {
      count: 1, data: () => data, port: () => port, uid: () => uid, gid: () => uid, pid: () => 1,
      truncated: () => (truncated ? input.length : 0),
    });
    let rounds = 0;
    while (G.serverStats(t.srv).dumpsRunning || G.serverStats(t.srv).backlogPorts) {
      G.pump(t.srv);
      if (++rounds % 1024 === 0 && performance.now() - t0 > HANG_MS) {
        probs.push(`hang: a dump still running after ${rounds} chunks`);
        G.abortDumps(t.srv);
        break;
      }
    }
  } catch (e) {
    probs.push(`dispatch threw: ${(e as Error).stack?.split('\n').slice(0, 3).join(' | ')}`);
  }
  try {
    probs.push(...judge(t, data, port, uid, truncated));
  } catch (e) {
    probs.push(`oracle threw: ${(e as Error).stack?.split('\n').slice(0, 3).join(' | ')}`);
  }
  const ms = performance.now() - t0;
  if (ms > HANG_MS) probs.push(`hang: ${ms.toFixed(0)} ms for one input`);
  t.runs++;
  // Time moves on, so resets complete and storm windows close between inputs.
  t.clock.advance(7);
  return { problems: probs, ms };
}
