// The steps an actor takes on its socket, chosen at random with weights, each checked against the
// model when its answers are in: requests (do and dump), buffer objects (mapped too), GEMM jobs with async
// job-wait, subscriptions (unicast op or multicast), RAS injections, probes for other sockets' BOs.
// Closing a socket and rebinding its port lives in run.ts (it needs the processes).
import { CMD } from '../../device/gen/accel';
import {
  type Outcome, type Sock, type World, acknowledge, closeWatch, request, users, violation, who,
} from './model';
import type { Rng } from './rng';
import type { Accel } from './wire';

const ENOENT = 2, EPERM = 1, EBUSY = 16;
const BLOCKS = ['pcie', 'dma', 'mmu', 'compute-core', 'interconnect'] as const;
const SEVERITIES = ['correctable', 'deferred'] as const;
const MAX_WRITE = 60000;

/** An ok outcome's replies; anything else while the daemon lived is an unexpected error. Undefined when not ok. */
function ok(w: World, s: Sock, o: Outcome, what: string, epoch: number): Accel[] | undefined {
  if (o.kind === 'ok') return o.replies;
  if (o.kind !== 'error' || w.epoch !== epoch || !s.alive) return undefined;
  if (o.errno === EBUSY && o.dump && s.pred) {
    // One dump per socket: a dump refused on a socket that never started another is the closed one's, still running.
    violation(w, 'dead-reply-to-successor', `${what} from ${who(s)}: EBUSY "${o.msg}", a dump of the closed socket still runs on its port`, `EBUSY, ${users(s, s.pred)}`);
  } else violation(w, 'unexpected-error', `${what} from ${who(s)}: errno ${o.errno}${o.msg ? ` "${o.msg}"` : ''}`);
  return undefined;
}

/** Requests whose effect on the model holds only if the daemon did not restart meanwhile. */
const same = (w: World, epoch: number, s: Sock): boolean => w.epoch === epoch && s.alive;

async function devGet(w: World, s: Sock, r: Rng): Promise<void> {
  const e = s.stepEpoch, dev = r.int(2);
  const rep = ok(w, s, await request(w, s, CMD.DEV_GET, { devIndex: dev }), 'dev-get', e);
  if (rep && (rep.length !== 1 || rep[0].devIndex !== dev || rep[0].devName !== `accel${dev}`)) {
    violation(w, 'wrong-reply', `dev-get of device ${dev} from ${who(s)} answered ${JSON.stringify(rep.map((x) => [x.devIndex, x.devName]))}`);
  }
}

async function devDump(w: World, s: Sock): Promise<void> {
  const e = s.stepEpoch;
  const rep = ok(w, s, await request(w, s, CMD.DEV_GET, {}, { dump: true }), 'dev-get dump', e);
  if (rep && rep.map((x) => x.devName).join(',') !== 'accel0,accel1') {
    violation(w, 'wrong-reply', `dev-get dump from ${who(s)} listed ${rep.map((x) => x.devName).join(',')}`);
  }
}

async function rasGet(w: World, s: Sock, r: Rng): Promise<void> {
  const e = s.stepEpoch, dev = r.int(2);
  const rep = ok(w, s, await request(w, s, CMD.RAS_GET, { devIndex: dev }), 'ras-get', e);
  if (rep && (rep.length !== 1 || rep[0].devIndex !== dev)) violation(w, 'wrong-reply', `ras-get of device ${dev} from ${who(s)} answered device ${rep[0]?.devIndex}`);
}

/** A log dump from a cursor: records in order, each acknowledged one with its content. */
async function logDump(w: World, s: Sock, r: Rng): Promise<void> {
  const e = s.stepEpoch, dev = r.int(2);
  let top = 1;
  for (let i = w.ledger.length - 1; i >= 0; i--) if (w.ledger[i].key.startsWith(`${dev}:`)) { top = Number(w.ledger[i].key.slice(2)); break; }
  const cursor = r.chance(0.3) ? 1 : Math.max(1, top - r.int(300));
  const rep = ok(w, s, await request(w, s, CMD.RAS_LOG_GET, { devIndex: dev, cursor, limit: r.range(1, 600) }, { dump: true }), 'ras-log-get dump', e);
  if (!rep) return;
  let last = 0n;
  for (const m of rep) {
    if (m.devIndex !== dev) { violation(w, 'wrong-reply', `ras-log-get of device ${dev} from ${who(s)} carried device ${m.devIndex}`); return; }
    for (const ev of m.event ?? []) {
      const seq = BigInt(ev.seq ?? 0);
      if (seq < BigInt(cursor) || seq <= last) { violation(w, 'wrong-reply', `ras-log-get from ${cursor} of device ${dev} from ${who(s)}: record ${seq} after ${last}`); return; }
      last = seq;
      const rec = w.acked.get(`${dev}:${seq}`);
      if (rec && rec.content !== `${ev.kind} ${ev.block} ${ev.severity} ${ev.count} ${ev.address} ${Buffer.from(ev.syndrome ?? []).toString('hex')}`) {
        violation(w, 'record-lost', `ras-log-get: record ${dev}:${seq} is not the acknowledged one`);
      }
    }
  }
}

async function inject(w: World, s: Sock, r: Rng): Promise<void> {
  const e = s.stepEpoch, dev = r.int(2);
  const syndrome = Buffer.from(`m${w.seed.toString(16)}.${s.id}.${w.stats.injections++}`);
  const a: Accel = { devIndex: dev, block: r.pick(BLOCKS), severity: r.pick(SEVERITIES), count: r.range(1, 3), address: r.int(1 << 30), syndrome };
  const sent = ++w.clock;
  const late = (rep: Accel[]): void => acknowledge(w, dev, sent, rep[0]?.event ?? []);
  const o = await request(w, s, CMD.RAS_INJECT, a, { onLate: late });
  if (s.uid !== 0) {
    if (o.kind !== 'error' || o.errno !== EPERM) {
      if (o.kind !== 'lost') violation(w, 'unexpected-error', `ras-inject from ${who(s)} (not root) was answered ${o.kind === 'ok' ? 'with success' : `errno ${o.errno}`}, not EPERM`);
    }
    return;
  }
  const rep = ok(w, s, o, 'ras-inject', e);
  if (!rep) return;
  const all = rep[0]?.event ?? [];
  // A correctable error the storm limiter folded is answered with its window's storm-overflow
  // record so far, without a seq (not logged yet): an answer, but no record to hold the log to.
  // (The model's daemon is configured never to fold: burst 1000000.)
  const pending = all.filter((x) => x.seq === undefined);
  const evs = all.filter((x) => x.seq !== undefined);
  if (pending.length === 1 && pending[0].kind === 'storm-overflow' && a.severity === 'correctable' &&
    Buffer.from(pending[0].syndrome ?? []).toString() === syndrome.toString()) return;
  if (!all.length && (rep.length === 0 || (rep.length === 1 && rep[0].devIndex === dev))) {
    // Acknowledged with nothing: neither its record nor a fold (finding M7).
    violation(w, 'inject-no-record', `ras-inject ${syndrome} (device ${dev}) from ${who(s)} answered with ${rep.length} reply message(s) and no event`);
    return;
  }
  if (rep.length !== 1 || rep[0].devIndex !== dev || !evs.length || evs.some((x) => Buffer.from(x.syndrome ?? []).toString() !== syndrome.toString() || x.block !== a.block)) {
    violation(w, 'wrong-reply', `ras-inject ${syndrome} from ${who(s)} answered ${JSON.stringify(evs.map((x) => [x.seq, x.block, Buffer.from(x.syndrome ?? []).toString()]))}`);
    return;
  }
  acknowledge(w, dev, sent, evs);
}

async function boCreate(w: World, s: Sock, r: Rng, size = r.range(1, 12) * 8192, dev = r.int(2)): Promise<number | undefined> {
  const e = s.stepEpoch;
  const rep = ok(w, s, await request(w, s, CMD.BO_CREATE, { devIndex: dev, boSize: size }), 'bo-create', e);
  if (!rep || !same(w, e, s)) return undefined;
  const h = rep[0]?.boHandle;
  if (h === undefined || rep[0].boSize !== size || s.bos.has(h)) {
    violation(w, 'wrong-reply', `bo-create of ${size} bytes from ${who(s)} answered handle ${h} size ${rep[0]?.boSize}${h !== undefined && s.bos.has(h) ? ' (a handle it already holds)' : ''}`);
    return undefined;
  }
  s.bos.set(h, { size, data: new Uint8Array(size), busy: false });
  return h;
}

async function boWrite(w: World, s: Sock, h: number, off: number, data: Uint8Array): Promise<boolean> {
  const e = s.stepEpoch;
  const rep = ok(w, s, await request(w, s, CMD.BO_WRITE, { boHandle: h, boOffset: off, data }), `bo-write of BO ${h}`, e);
  if (!rep || !same(w, e, s)) return false;
  s.bos.get(h)?.data.set(data, off);
  return true;
}

/** Read [off, off+len) of BO h; compares with the model unless told what to expect. */
async function boRead(w: World, s: Sock, h: number, off: number, len: number): Promise<Uint8Array | undefined> {
  const e = s.stepEpoch;
  const rep = ok(w, s, await request(w, s, CMD.BO_READ, { boHandle: h, boOffset: off, boSize: len }, { dump: true }), `bo-read of BO ${h}`, e);
  if (!rep || !same(w, e, s)) return undefined;
  const parts: Uint8Array[] = [];
  let at = off;
  for (const m of rep) {
    if (m.boHandle !== h || Number(m.boOffset) !== at) {
      violation(w, 'wrong-reply', `bo-read of BO ${h} at ${at} from ${who(s)} answered BO ${m.boHandle} at ${m.boOffset}`);
      return undefined;
    }
    parts.push(m.data ?? new Uint8Array());
    at += m.data?.length ?? 0;
  }
  const got = Buffer.concat(parts);
  const want = s.bos.get(h)?.data.subarray(off, off + len);
  if (want && !got.equals(want)) {
    const other = [...w.socks.values()].find((x) => x !== s && [...x.bos.values()].some((b) => b.data.length >= off + len && Buffer.from(b.data.subarray(off, off + len)).equals(got)));
    violation(w, other ? 'foreign-bo' : 'wrong-reply', `bo-read of BO ${h} [${off}, +${len}) from ${who(s)}: ${got.length} bytes unlike what it wrote${other ? `; they are ${who(other)}'s` : ''}`);
  }
  return got;
}

async function boWriteStep(w: World, s: Sock, r: Rng): Promise<void> {
  const idle = [...s.bos].filter(([, b]) => !b.busy);
  if (!idle.length) return;
  const [h, b] = r.pick(idle);
  const len = r.range(1, Math.min(b.size, MAX_WRITE));
  const off = r.int(b.size - len + 1);
  await boWrite(w, s, h, off, r.bytes(len));
}

async function boReadStep(w: World, s: Sock, r: Rng): Promise<void> {
  const [h, b] = r.pick([...s.bos].filter(([, x]) => !x.busy)); // a job may be writing a busy one
  const whole = r.chance(0.5);
  const off = whole ? 0 : r.int(b.size);
  await boRead(w, s, h, off, whole ? b.size : r.range(0, b.size - off));
}

/**
 * bo-map of one of its idle BOs: the reply names the BO with its size and a 16-byte token. The BO's
 * memory moves into a memfd (written bytes are copied): later bo-reads still check its content.
 */
async function boMapStep(w: World, s: Sock, r: Rng): Promise<void> {
  const [h, b] = r.pick([...s.bos].filter(([, x]) => !x.busy));
  const e = s.stepEpoch;
  const rep = ok(w, s, await request(w, s, CMD.BO_MAP, { boHandle: h }), `bo-map of BO ${h}`, e);
  if (!rep || !same(w, e, s)) return;
  if (rep.length !== 1 || rep[0].boHandle !== h || Number(rep[0].boSize) !== b.size || rep[0].mapToken?.length !== 16 || !rep[0].mapPath?.startsWith('@')) {
    violation(w, 'wrong-reply', `bo-map of BO ${h} (${b.size} bytes) from ${who(s)} answered ${JSON.stringify(rep.map((x) => [x.boHandle, Number(x.boSize), x.mapPath, x.mapToken?.length]))}`);
  }
}

async function boDestroy(w: World, s: Sock, h: number): Promise<void> {
  const e = s.stepEpoch;
  if (ok(w, s, await request(w, s, CMD.BO_DESTROY, { boHandle: h }), `bo-destroy of BO ${h}`, e) && same(w, e, s)) s.bos.delete(h);
}

/**
 * Ask for a BO this socket does not hold: one its port's previous socket held, one another socket
 * holds, or a small handle. The daemon must answer ENOENT: handles are per socket.
 */
export async function probe(w: World, s: Sock, r: Rng, h?: number): Promise<void> {
  if (h === undefined) {
    const others = [...w.socks.values()].filter((x) => x !== s).flatMap((x) => [...x.bos.keys()]);
    const cands = [...(s.pred?.bos.keys() ?? []), ...others, 1, 2, 3].filter((x) => !s.bos.has(x));
    if (!cands.length) return;
    h = r.pick(cands);
  }
  if (s.bos.has(h)) return;
  w.stats.probes++;
  const e = s.stepEpoch;
  // A read, or a bo-map (which would hand over the BO's memory itself): both must be ENOENT.
  const map = r.chance(0.3);
  const o = map ? await request(w, s, CMD.BO_MAP, { boHandle: h })
    : await request(w, s, CMD.BO_READ, { boHandle: h, boOffset: 0, boSize: 1 }, { dump: true });
  if (!same(w, e, s) || s.bos.has(h)) return;
  if (o.kind === 'ok') {
    const owner = s.pred?.bos.has(h) && s.pred.port === s.port ? ` that ${who(s.pred)} created before it closed` : '';
    violation(w, 'foreign-bo', `${who(s)} ${map ? 'was offered the memory of' : 'read'} BO ${h}, which it never created${owner}`, owner ? `predecessor's, ${users(s, s.pred!)}` : 'not the predecessor\'s');
  } else if (o.kind === 'error' && o.errno === EBUSY && s.pred) {
    violation(w, 'dead-reply-to-successor', `bo-read probe from ${who(s)}: EBUSY "${o.msg}", a dump of the closed socket still runs on its port`, `EBUSY, ${users(s, s.pred)}`);
  } else if (o.kind === 'error' && o.errno !== ENOENT) {
    violation(w, 'unexpected-error', `${map ? 'bo-map' : 'bo-read'} of BO ${h} (not held) from ${who(s)}: errno ${o.errno}, not ENOENT`);
  }
}

/** bo-get lists every BO with its owner port: those under this socket's port must be exactly its own. */
async function boList(w: World, s: Sock): Promise<void> {
  const e = s.stepEpoch;
  const rep = ok(w, s, await request(w, s, CMD.BO_GET, {}, { dump: true }), 'bo-get dump', e);
  if (!rep || !same(w, e, s)) return;
  const mine = rep.flatMap((m) => m.bo ?? []).filter((b) => b.owner === s.port);
  const extra = mine.filter((b) => !s.bos.has(b.handle!));
  const missing = [...s.bos.keys()].filter((h) => !mine.some((b) => b.handle === h));
  if (extra.length) violation(w, 'foreign-bo', `bo-get lists BOs ${extra.map((b) => b.handle).join(',')} as owned by port ${s.port} of ${who(s)}, which never created them`, 'listed by bo-get');
  if (missing.length) {
    // Is it gone, or listed under another owner? Ask for it by handle.
    const h = missing[0];
    const o = await request(w, s, CMD.BO_READ, { boHandle: h, boOffset: 0, boSize: 1 }, { dump: true });
    const listed = rep.flatMap((m) => m.bo ?? []).filter((b) => b.handle === h).map((b) => `owner ${b.owner} size ${b.size}`);
    violation(w, o.kind === 'ok' ? 'dump-incomplete' : 'wrong-reply', `bo-get from ${who(s)} does not list its BOs ${missing.join(',')}; BO ${h} read by handle: ` +
      `${o.kind === 'ok' ? 'still there' : o.kind === 'error' ? `errno ${o.errno}` : o.why}; handle ${h} listed as ${listed.join('; ') || 'nothing'}`);
  }
}

/** GEMM in f64 with small integers (exact): A (m x k) and B (k x n) written, C computed by the daemon. */
async function jobSubmit(w: World, s: Sock, r: Rng): Promise<void> {
  // Mostly small; some large enough (tens of ms) that job-wait is still waiting when other requests come in.
  const big = r.chance(0.25);
  const m = big ? r.range(160, 288) : r.range(1, 40), n = big ? r.range(160, 288) : r.range(1, 40), k = big ? r.range(160, 288) : r.range(1, 40);
  const dev = r.int(2);
  const A = Float64Array.from({ length: m * k }, () => r.int(10));
  const B = Float64Array.from({ length: k * n }, () => r.int(10));
  const C = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) { let x = 0; for (let p = 0; p < k; p++) x += A[i * k + p] * B[p * n + j]; C[i * n + j] = x; }
  const e = s.stepEpoch;
  const hs: number[] = [];
  for (const size of [A.byteLength, B.byteLength, C.byteLength]) {
    const h = await boCreate(w, s, r, size, dev);
    if (h === undefined) return;
    hs.push(h);
  }
  for (const [h, arr] of [[hs[0], A], [hs[1], B]] as const) {
    const bytes = new Uint8Array(arr.buffer);
    for (let off = 0; off < bytes.length; off += MAX_WRITE) if (!await boWrite(w, s, h, off, bytes.subarray(off, off + MAX_WRITE))) return;
  }
  const gemm = { m, n, k, dtype: 'f64' as const, aHandle: hs[0], bHandle: hs[1], cHandle: hs[2] };
  const rep = ok(w, s, await request(w, s, CMD.JOB_SUBMIT, { devIndex: dev, gemm, timeoutMs: 30000 }), 'job-submit', e);
  if (!rep || !same(w, e, s)) return;
  const id = rep[0]?.jobId;
  if (id === undefined || s.jobs.has(id)) { violation(w, 'wrong-reply', `job-submit from ${who(s)} answered job ${id}`); return; }
  w.stats.jobs++;
  w.jobs.set(`${e}:${id}`, { uid: s.uid, flops: 2 * m * n * k });
  for (const h of hs) s.bos.get(h)!.busy = true;
  s.jobs.set(id, { a: hs[0], b: hs[1], c: hs[2], m, n, expected: new Uint8Array(C.buffer) });
  if (r.chance(big ? 0.8 : 0.4)) await jobWait(w, s, r, id);
}

/** job-wait (async in the daemon): the answer names this job, done; then C holds A x B. */
async function jobWait(w: World, s: Sock, r: Rng, which?: number): Promise<void> {
  const id = which ?? r.pick([...s.jobs.keys()]);
  const j = s.jobs.get(id)!;
  const e = s.stepEpoch;
  const rep = ok(w, s, await request(w, s, CMD.JOB_WAIT, { jobId: id, timeoutMs: 15000 }), `job-wait for job ${id}`, e);
  if (!rep || !same(w, e, s)) return;
  const got = rep[0]?.job?.[0];
  if (rep.length !== 1 || got?.id !== id || got.status !== 'done') {
    violation(w, 'wrong-reply', `job-wait for job ${id} from ${who(s)} answered ${JSON.stringify(rep.map((x) => x.job?.map((y) => [y.id, y.status, y.message])))}`);
    return;
  }
  s.jobs.delete(id);
  for (const h of [j.a, j.b, j.c]) { const b = s.bos.get(h); if (b) b.busy = false; }
  s.bos.get(j.c)!.data.set(j.expected);  // what the daemon must have computed
  await boRead(w, s, j.c, 0, j.expected.length);
  for (const h of [j.a, j.b, j.c]) await boDestroy(w, s, h);
}

async function jobGet(w: World, s: Sock, r: Rng): Promise<void> {
  const id = r.pick([...s.jobs.keys()]);
  const e = s.stepEpoch;
  const rep = ok(w, s, await request(w, s, CMD.JOB_GET, { jobId: id }), `job-get of job ${id}`, e);
  if (rep && rep[0]?.job?.[0]?.id !== id) violation(w, 'wrong-reply', `job-get of job ${id} from ${who(s)} answered job ${rep[0]?.job?.[0]?.id}`);
}

/**
 * job-get of a job another user's socket submitted (this daemon's): a non-root socket must get
 * ENOENT. Jobs are seen by their submitter's user and by admins, never by another user.
 */
async function jobProbe(w: World, s: Sock, r: Rng): Promise<void> {
  const e = s.stepEpoch;
  const theirs = [...w.jobs].filter(([k, j]) => k.startsWith(`${e}:`) && j.uid !== s.uid).map(([k]) => Number(k.split(':')[1]));
  if (!theirs.length) return;
  const id = r.pick(theirs);
  w.stats.jobProbes++;
  const o = await request(w, s, CMD.JOB_GET, { jobId: id });
  if (!same(w, e, s)) return;
  if (o.kind === 'ok') violation(w, 'foreign-job', `${who(s)} read job ${id}, which uid ${w.jobs.get(`${e}:${id}`)!.uid} submitted`, 'job-get');
  else if (o.kind === 'error' && o.errno !== ENOENT) violation(w, 'unexpected-error', `job-get of another user's job ${id} from ${who(s)}: errno ${o.errno}, not ENOENT`);
}

async function subscribe(w: World, s: Sock, r: Rng): Promise<void> {
  if (s.uid === 0 && r.chance(0.5)) {
    const rc = await s.proc.cmd('join', s.id, { group: w.groups.get('ras') });
    if (rc !== 0) { violation(w, 'unexpected-error', `root ${who(s)} could not join the ras group: errno ${-rc}`); return; }
    s.joined = true;
    s.watch = { mode: 'multicast', start: ++w.clock, got: new Set(), overrun: false };
    return;
  }
  const groups = r.chance(0.3) ? ['ras', 'jobs'] : ['ras'];
  const e = s.stepEpoch;
  for (const g of groups) {
    s.uni.add(g);
    const rep = ok(w, s, await request(w, s, CMD.SUBSCRIBE, { group: g }), `subscribe ${g}`, e);
    if (!rep || !same(w, e, s)) { s.uni.delete(g); return; }
  }
  s.watch = { mode: 'unicast', start: ++w.clock, got: new Set(), overrun: false };
}

/** A request answered after everything it must follow, then the subscription interval is checked and ended. */
async function unsubscribe(w: World, s: Sock): Promise<void> {
  const e = s.stepEpoch;
  const sync = ++w.clock;
  const rep = ok(w, s, await request(w, s, CMD.DEV_GET, { devIndex: 0 }), 'dev-get (sync)', e);
  if (rep && same(w, e, s)) closeWatch(w, s, sync);
  s.watch = undefined;
  if (s.joined) {
    const rc = await s.proc.cmd('leave', s.id, { group: w.groups.get('ras') });
    // Events queued before the leave are still read after it: a round trip later, none can be left.
    if (rc === 0) { await request(w, s, CMD.DEV_GET, { devIndex: 1 }); s.joined = false; }
  }
  for (const g of [...s.uni]) {
    const o = await request(w, s, CMD.UNSUBSCRIBE, { group: g });
    if (o.kind === 'ok' || w.epoch !== e) s.uni.delete(g);
    else ok(w, s, o, `unsubscribe ${g}`, e);
  }
}

type Step = { name: string; weight: (s: Sock) => number; run: (w: World, s: Sock, r: Rng) => Promise<void> };

export const STEPS: Step[] = [
  { name: 'dev-get', weight: () => 6, run: devGet },
  { name: 'dev-get dump', weight: () => 3, run: devDump },
  { name: 'ras-get', weight: () => 3, run: rasGet },
  { name: 'ras-log-get dump', weight: () => 4, run: logDump },
  { name: 'ras-inject', weight: (s) => (s.uid === 0 ? 12 : 1), run: inject },
  { name: 'bo-create', weight: (s) => (s.bos.size < 6 ? 6 : 0), run: async (w, s, r) => { await boCreate(w, s, r); } },
  { name: 'bo-write', weight: (s) => ([...s.bos.values()].some((b) => !b.busy) ? 8 : 0), run: boWriteStep },
  { name: 'bo-read', weight: (s) => ([...s.bos.values()].some((b) => !b.busy) ? 8 : 0), run: boReadStep },
  { name: 'bo-map', weight: (s) => ([...s.bos.values()].some((b) => !b.busy) ? 2 : 0), run: boMapStep },
  { name: 'bo-destroy', weight: (s) => ([...s.bos.values()].some((b) => !b.busy) ? 2 : 0),
    run: (w, s, r) => boDestroy(w, s, r.pick([...s.bos].filter(([, b]) => !b.busy))[0]) },
  { name: 'bo probe', weight: () => 3, run: (w, s, r) => probe(w, s, r) },
  { name: 'bo-get dump', weight: () => 2, run: (w, s) => boList(w, s) },
  { name: 'job-submit', weight: (s) => (s.jobs.size < 2 ? 4 : 0), run: jobSubmit },
  { name: 'job-wait', weight: (s) => (s.jobs.size ? 6 : 0), run: jobWait },
  { name: 'job-get', weight: (s) => (s.jobs.size ? 2 : 0), run: jobGet },
  { name: 'job probe', weight: (s) => (s.uid !== 0 ? 1 : 0), run: jobProbe },
  { name: 'subscribe', weight: (s) => (!s.watch && !s.uni.size && !s.joined ? 3 : 0), run: subscribe },
  { name: 'unsubscribe', weight: (s) => (s.watch || s.uni.size || s.joined ? 2 : 0), run: (w, s) => unsubscribe(w, s) },
];

export function pickStep(s: Sock, r: Rng): Step {
  const ws = STEPS.map((x) => x.weight(s));
  let t = r.next() * ws.reduce((a, b) => a + b, 0);
  for (let i = 0; i < STEPS.length; i++) { t -= ws[i]; if (t < 0) return STEPS[i]; }
  return STEPS[0];
}

