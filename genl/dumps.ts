// Dumps in progress (netlink_dump semantics): one per socket, started by dispatch, continued a few
// datagrams per turn by the server's pump so that no client starves the others. A dump belongs to
// the client (socket) that asked; its request is an owned copy (it outlives the receive buffer),
// its chunks are written into the outbox's buffer and sent as that client's spans, checked before
// each send like anything for a client seen in an earlier callback (genl/outbox.ts).
import { type View, NL_VALIDATE, absentAll, newExtack, trim, validate, view } from '../attrs';
import { EBUSY, EINVAL, EMSGSIZE } from '../attrs/errno';
import { writeDone } from './ack';
import { NLMSG_HDRLEN, NLM_F } from './consts';
import { maxRecvLen, present, verified } from './clients';
import { countRejected } from './counters';
import type { DumpCtx, DumpHalf, Family, Op, Sender } from './family';
import { genlStart, msgAddFlags, msgEnd } from './message';
import { pushSpan } from './outbox';
import { type Outcome, ANSWER_NOBODY, DO_KINDS, DUMP_KINDS, LATER_DUMP, ackFor, checked, failed } from './outcome';
import { ownedCopy } from './owned';
import { type DumpResult, type Result, wireStatus } from './result';
import { kick } from './schedule';
import type { DumpState, Server, ServerCore } from './core';


export function startDump(srv: ServerCore, v: View, at: number, len: number, hdrlen: number, fam: Family, op: Op,
  half: DumpHalf, sender: Sender): Outcome {
  const port = sender.port;
  const client = sender.client = verified(srv.clients, sender.client, sender.pid);
  if (client.gone) return ANSWER_NOBODY; // a closed socket's request, read late: its successor must not get the dump
  if (srv.dumps.has(client.id)) return failed(EBUSY); // one dump per socket at a time, as netlink_dump_start
  if (srv.dumps.size >= srv.opts.maxDumps) {
    srv.ext.msg = 'too many dumps in progress';
    return failed(EBUSY);
  }
  const req = view(ownedCopy(v.buf, at, at + len)); // the dump outlives this receive buffer
  const ext = newExtack();
  const maxattr = half.policy ? (half.maxattr ?? half.policy.maxtype) : 0;
  const tb = absentAll(new Int32Array(maxattr + 1));
  const seq = v.dv.getUint32(at + 8, true);
  const done = (r: Result): Result => {
    // start() failed: an ordinary NLMSG_ERROR, offsets relative to the request.
    Object.assign(srv.ext, ext);
    if (ext.badAttr >= 0) srv.ext.badAttr = ext.badAttr + at;
    if (ext.missNest >= 0) srv.ext.missNest = ext.missNest + at;
    return r;
  };
  if (half.policy && maxattr) {
    const err = validate(req, hdrlen, len, maxattr, half.policy,
      half.liberal ? NL_VALIDATE.LIBERAL : NL_VALIDATE.STRICT, ext, tb);
    if (err) return done(failed(-err));
  }
  const d: DumpState = {
    client, ctx: undefined as unknown as DumpCtx, half, status: { kind: 'more' }, gen: fam.generation?.() ?? 0, intr: false,
    limit: 0, msgAt: -1, chunkAt: 0,
  };
  d.ctx = {
    family: fam, cmd: op.cmd, req, seq, sender, attrs: tb, ext, state: {}, owner: () => client,
    start(cmd = op.cmd, flags = 0) {
      d.msgAt = srv.outbox.out.len;
      genlStart(srv.outbox.out, fam.id!, flags, seq, port, cmd, fam.version);
      return srv.outbox.out;
    },
    end() {
      const w = srv.outbox.out;
      if (d.msgAt < 0) return false;
      if (w.len > d.limit && d.msgAt > d.chunkAt) {
        trim(w, d.msgAt);
        d.msgAt = -1;
        return false;
      }
      msgEnd(w, d.msgAt);
      if (fam.generation && fam.generation() !== d.gen) d.intr = true;
      if (d.intr) msgAddFlags(w, d.msgAt, NLM_F.DUMP_INTR);
      d.msgAt = -1;
      return true;
    },
  };
  if (half.start) {
    const r = checked<Result>(half.start(d.ctx), ext, DO_KINDS);
    if (r.kind === 'error') return done(r);
  }
  srv.counters.dumps++;
  if (!dumpChunk(srv, d)) {
    srv.dumps.set(client.id, d);
    kick(srv.sched);
  }
  return LATER_DUMP;
}

/** Produce one dump datagram (netlink_dump). Returns true when the dump is finished. */
function dumpChunk(srv: ServerCore, d: DumpState): boolean {
  const w = srv.outbox.out;
  const port = d.ctx.sender.port;
  d.chunkAt = w.len;
  // netlink_dump's allocation: the reader's max_recvmsg_len when it is larger than the minimum
  // (NLMSG_GOODSIZE), else the minimum. Ours is told by the client (genl/sockopt.ts).
  const min = srv.opts.dumpChunk;
  const told = maxRecvLen(d.client);
  d.limit = d.chunkAt + (told > min ? told : min);
  if (d.status.kind === 'more') {
    let r: DumpResult;
    try {
      r = checked<DumpResult>(d.half.handler(d.ctx), d.ctx.ext, DUMP_KINDS);
    } catch (e) {
      d.ctx.ext.msg = `internal error: ${(e as Error).message}`.slice(0, 79);
      r = failed(EINVAL);
    }
    if (d.msgAt >= 0) { trim(w, d.msgAt); d.msgAt = -1; }
    if (r.kind === 'error' && r.errno === EMSGSIZE && w.len > d.chunkAt) r = { kind: 'more' };
    if (r.kind === 'more' && w.len === d.chunkAt) r = failed(EMSGSIZE); // no progress: the kernel reports EMSGSIZE too
    d.status = r;
  }
  if (d.status.kind === 'more' || d.limit - w.len < NLMSG_HDRLEN + 4) {
    pushSpan(srv.outbox, d.chunkAt, d.client, true);
    return false;
  }
  const status = wireStatus(d.status);
  if (status < 0) { srv.counters.errors++; countRejected(srv.counters, status); }
  writeDone(w, d.ctx.seq, port, status, d.ctx.ext, d.ctx.req, 0, d.intr ? NLM_F.DUMP_INTR : 0, ackFor(srv.opts.ack, d.client));
  pushSpan(srv.outbox, d.chunkAt, d.client, true);
  return true;
}

/** Dump datagrams produced per running dump per event-loop turn. */
const DUMP_BURST = 8;

/**
 * Advance each running dump by a few chunks (fewer event-loop turns and sends, still fair to other
 * ports). A dump waits while its port has a queue. Returns whether any has more to do.
 */
export function pumpDumps(handle: Server): boolean {
  const srv = handle as ServerCore;
  let more = false;
  for (const [id, d] of srv.dumps) {
    if (srv.outbox.backlog.has(d.client.port)) continue;
    if (!present(srv.clients, d.client)) continue; // its socket went: dropping the client ended the dump
    let finished = false;
    for (let i = 0; i < DUMP_BURST && !finished; i++) finished = dumpChunk(srv, d);
    if (finished) srv.dumps.delete(id);
    else more = true;
  }
  return more;
}
