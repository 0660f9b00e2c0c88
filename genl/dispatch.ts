// Dispatch: netlink_rcv_skb() + genl_rcv_msg() over one received batch. Each datagram is split
// into messages; each message is parsed, checked against its op's policy and permissions, handed
// to its handler, and answered (reply, ACK, or a dump started in genl/dumps.ts) into the outbox's
// buffer. The receive buffer belongs to the transport and is reused after the callback: whatever
// outlives it (an async handler's request, a dump's request) works on an owned copy.
import {
  type View, NL_VALIDATE, absentAll, clearExtack, newExtack, trim, validate, view,
} from '../attrs';
import { EINVAL, EMSGSIZE, ENOENT, EOPNOTSUPP, EPERM } from '../attrs/errno';
import { writeAck } from './ack';
import { GENL_HDRLEN, GENL_OP, NLMSG, NLMSG_HDRLEN, NLM_F } from './consts';
import { clientOf, detached, drop, verified } from './clients';
import { countRejected } from './counters';
import type { DoCtx, DoHalf, DumpHalf, Family, Op, Peer, Sender } from './family';
import { genlStart, msgEnd } from './message';
import { flushOutbox, provenRead, pushSpan } from './outbox';
import { type Outcome, DO_KINDS, LATER_ASYNC, ackFor, checked, failed } from './outcome';
import { ownedCopy } from './owned';
import { familiesIn, familyById } from './registry';
import { type Result, wireStatus } from './result';
import { startDump } from './dumps';
import type { Server, ServerCore } from './core';
import { ACCELNL_MSG_SOCKOPT, ACCELNL_OPT_CLOSING, applySockopt, parseSockopt } from './sockopt';
import { subscribe, unsubscribe } from './subscriptions';

/** Process a batch of datagrams (from genl/socket.ts onBatch) and send the replies. */
export function receiveBatch(handle: Server, batch: {
  count: number; data(i: number): Uint8Array; port(i: number): number; uid(i: number): number;
  gid(i: number): number; pid(i: number): number; truncated(i: number): number;
  area?: Uint8Array; offset?(i: number): number; length?(i: number): number;
}): void {
  const srv = handle as ServerCore;
  // One view over the socket's whole receive area, kept while the area is the same, rather than a
  // Buffer and a DataView per datagram (a tenth of the daemon's time under pipelined requests).
  const area = batch.area && batch.offset && batch.length ? areaView(srv, batch.area) : undefined;
  for (let i = 0; i < batch.count; i++) {
    const sender: Peer = { port: batch.port(i), uid: batch.uid(i), gid: batch.gid(i), pid: batch.pid(i) };
    if (batch.truncated(i)) tooLong(srv, batch.data(i), batch.truncated(i), sender);
    else if (area) { const at = batch.offset!(i); receiveIn(srv, area, at, at + batch.length!(i), sender); }
    else receive(srv, batch.data(i), sender);
  }
  flushOutbox(srv.outbox);
}

function areaView(srv: ServerCore, area: Uint8Array): View {
  if (srv.rx.area?.buf !== area) srv.rx.area = view(area);
  return srv.rx.area;
}

/** Handle one received datagram from `peer`. Replies are queued; call flush(srv) after a batch. */
export function receive(handle: Server, data: Uint8Array, peer: Peer): void {
  receiveIn(handle as ServerCore, view(data), 0, data.length, peer);
}

/** The datagram in v's bytes [start, end). Every offset below is into v, as the ACK's echo is. */
function receiveIn(srv: ServerCore, v: View, start: number, end: number, peer: Peer): void {
  srv.counters.datagrams++;
  const sender: Sender = { port: peer.port, uid: peer.uid, gid: peer.gid, pid: peer.pid,
    client: clientOf(srv.clients, peer.port, peer.uid, peer.gid, peer.pid) };
  // First seen with its port already unbound: the socket closed before its datagram was read.
  if (sender.client.closedAtFirstSight) sender.client = detached(srv.clients, sender.client);
  let at = start;
  while (end - at >= NLMSG_HDRLEN) {
    const len = v.dv.getUint32(at, true);
    if (len < NLMSG_HDRLEN || len > end - at) break;
    srv.counters.messages++;
    handleMessage(srv, v, at, len, sender);
    at += Math.min((len + 3) & ~3, end - at);
  }
  if (at < end) srv.counters.malformed++;
}

/**
 * A datagram longer than the socket keeps (maxMessage) lost its tail: nothing in it is processed.
 * Its first message, if it asked for an answer, gets EMSGSIZE (header echoed only), so the client
 * does not wait for a timeout.
 */
function tooLong(srv: ServerCore, data: Uint8Array, full: number, sender: Peer): void {
  srv.counters.datagrams++;
  srv.counters.truncated++;
  if (data.length < NLMSG_HDRLEN) return;
  const v = view(data);
  if (!(v.dv.getUint16(6, true) & (NLM_F.REQUEST | NLM_F.ACK))) return;
  clearExtack(srv.ext);
  srv.ext.msg = `message of ${full} bytes exceeds the server's ${data.length}-byte limit`;
  srv.counters.errors++;
  countRejected(srv.counters, -EMSGSIZE);
  const start = srv.outbox.out.len;
  const c = clientOf(srv.clients, sender.port, sender.uid, sender.gid, sender.pid);
  writeAck(srv.outbox.out, v, 0, -EMSGSIZE, srv.ext, sender.port, { ...ackFor(srv.opts.ack, c), capAck: true });
  pushSpan(srv.outbox, start, c, false);
}

function handleMessage(srv: ServerCore, v: View, at: number, len: number, sender: Sender): void {
  const flags = v.dv.getUint16(at + 6, true);
  const type = v.dv.getUint16(at + 4, true);
  const ext = srv.ext;
  clearExtack(ext);
  let err = 0;
  if (type === ACCELNL_MSG_SOCKOPT) sockopt(srv, v, at, len, sender);
  if ((flags & NLM_F.REQUEST) && type >= NLMSG.MIN_TYPE) {
    let r: Outcome;
    try {
      r = genlRcv(srv, v, at, len, flags, type, sender);
    } catch (e) {
      // A handler bug must never take the server down or leave the client waiting.
      r = failed(EINVAL);
      ext.msg = `internal error: ${(e as Error).message}`.slice(0, 79);
    }
    if (r.kind === 'dump' || r.kind === 'async' || r.kind === 'nobody') return;
    err = wireStatus(r);
  }
  if (err) { srv.counters.errors++; countRejected(srv.counters, err); }
  if (err || (flags & NLM_F.ACK)) {
    const w = srv.outbox.out;
    const start = w.len;
    // An error's shape depends on the socket's options: make sure they are this socket's (a
    // successor on a recycled port has its own). A success ACK is the same for every socket.
    if (err) sender.client = verified(srv.clients, sender.client, sender.pid);
    if (sender.client.gone) return; // a closed socket's datagram, read late: nobody to answer
    writeAck(w, v, at, err, ext, sender.port, ackFor(srv.opts.ack, sender.client, len));
    pushSpan(srv.outbox, start, sender.client, false);
  }
}

function findOp(fam: Family, cmd: number): Op | undefined {
  for (const op of fam.ops) if (op.cmd === cmd) return op;
  return undefined;
}

function genlRcv(srv: ServerCore, v: View, at: number, len: number, flags: number, type: number, sender: Sender): Outcome {
  const ext = srv.ext;
  const fam = familyById(srv.registry, type);
  if (!fam) return failed(ENOENT);
  const hdrlen = NLMSG_HDRLEN + GENL_HDRLEN + (((fam.hdrsize ?? 0) + 3) & ~3);
  if (len < hdrlen) return failed(EINVAL);
  const cmd = v.buf[at + NLMSG_HDRLEN];
  if (cmd >= (fam.resvStartOp ?? 0)) {
    if (v.dv.getUint16(at + NLMSG_HDRLEN + 2, true)) {
      ext.msg = 'genlmsghdr.reserved field is not 0';
      return failed(EINVAL);
    }
    let f = flags;
    if ((f & NLM_F.DUMP) === NLM_F.DUMP) f &= ~NLM_F.DUMP;
    if (f & ~(NLM_F.REQUEST | NLM_F.ACK | NLM_F.ECHO)) {
      ext.msg = 'ambiguous or reserved bits set in nlmsg_flags';
      return failed(EINVAL);
    }
  }
  const isDump = (flags & NLM_F.DUMP) === NLM_F.DUMP;
  const op = findOp(fam, cmd);
  const half = isDump ? op?.dump : op?.do;
  if (!op || !half) return failed(EOPNOTSUPP);
  if ((op.perm ?? 0) & (GENL_OP.ADMIN_PERM | GENL_OP.UNS_ADMIN_PERM) && !srv.opts.isAdmin(sender)) return failed(EPERM);
  if (isDump) return startDump(srv, v, at, len, hdrlen, fam, op, half as DumpHalf, sender);

  const maxattr = half.policy ? (half.maxattr ?? half.policy.maxtype) : 0;
  const tb = absentAll(new Int32Array(maxattr + 1));
  if (half.policy && maxattr) {
    const err = validate(v, at + hdrlen, at + len, maxattr, half.policy,
      half.liberal ? NL_VALIDATE.LIBERAL : NL_VALIDATE.STRICT, ext, tb);
    if (err) return failed(-err);
  }
  let replyAt = -1;
  let inLater = false; // set once the handler has returned a promise: its replies come later
  const replyPort = sender.port;
  const ctx: DoCtx = {
    family: fam, cmd, req: v, at, seq: v.dv.getUint32(at + 8, true), flags, sender, attrs: tb, ext,
    owner: () => (sender.client = verified(srv.clients, sender.client, sender.pid)),
    reply(rcmd = cmd, rflags = 0) {
      replyAt = srv.outbox.out.len;
      genlStart(srv.outbox.out, fam.id!, rflags, ctx.seq, replyPort, rcmd, fam.version);
      return srv.outbox.out;
    },
    end() {
      if (replyAt < 0) return;
      if (sender.client.gone) { trim(srv.outbox.out, replyAt); replyAt = -1; return; } // nobody to answer
      msgEnd(srv.outbox.out, replyAt);
      // Written while the request's callback runs, or later by an async handler.
      pushSpan(srv.outbox, replyAt, sender.client, inLater);
      replyAt = -1;
    },
  };
  const r = (half as DoHalf).handler(ctx);
  if (!(r instanceof Promise)) {
    if (replyAt >= 0) trim(srv.outbox.out, replyAt); // a reply started but not ended is dropped
    return checked<Result>(r, ext, DO_KINDS);
  }
  // Async handler: it outlives this receive callback, so from here on it works on its own copy of
  // the request (the receive buffer is reused by the next wake-up), with offsets moved to match.
  // The ACK echoes that copy: it answers this request, whatever arrived since.
  inLater = true;
  // Its answer is checked against the socket it is filed with when it goes out: pin that to the
  // socket that asked now (the fast path took the sender by uid and pid, unchecked), as a handler
  // that touches client resources did already through ctx.owner().
  ctx.owner();
  const copy = view(ownedCopy(v.buf, at, at + len));
  const ext2 = newExtack();
  Object.assign(ext2, ext);
  if (ext2.badAttr >= 0) ext2.badAttr -= at;
  if (ext2.missNest >= 0) ext2.missNest -= at;
  for (let i = 0; i < tb.length; i++) if (tb[i] >= 0) tb[i] -= at; // in place: ctx.attrs matches ctx.req
  ctx.req = copy; ctx.at = 0; ctx.ext = ext2;
  r.then((x) => wireStatus(checked<Result>(x, ext2, DO_KINDS)),
    (e: Error) => { ext2.msg = `internal error: ${e?.message}`.slice(0, 79); return -EINVAL; })
    .then((e) => {
      if (replyAt >= 0) trim(srv.outbox.out, replyAt);
      // Answered later: only to the socket that asked, never to a successor on its port (the
      // flush checks the client against a table taken right before it sends).
      if (sender.client.gone) { flushOutbox(srv.outbox); return; }
      if (e) { srv.counters.errors++; countRejected(srv.counters, e); }
      if (e || (flags & NLM_F.ACK)) {
        const start = srv.outbox.out.len;
        writeAck(srv.outbox.out, copy, 0, e, ext2, replyPort, ackFor(srv.opts.ack, sender.client, copy.buf.length));
        pushSpan(srv.outbox, start, sender.client, true);
      }
      flushOutbox(srv.outbox);
    });
  return LATER_ASYNC;
}

function sockopt(srv: ServerCore, v: View, at: number, len: number, sender: Sender): void {
  const o = parseSockopt(v, at, len);
  if (!o) return;
  // A socket that closes names itself (its inode) when it read every answer it asked for.
  if (o.optname === ACCELNL_OPT_CLOSING && o.value) { closingSocket(srv, sender, o.value); return; }
  const c = sender.client = verified(srv.clients, sender.client, sender.pid);
  applySockopt(o, {
    setExtAck: (on) => { c.extAck = on; },
    join: (g) => {
      if (!groupRegistered(srv, g)) return false;
      subscribe(srv.subs, c, g);
      return true;
    },
    leave: (g) => { unsubscribe(srv.subs, c, g); },
    // As the kernel's max_recvmsg_len: the largest ever said (capped where used: maxRecvLen).
    setMaxRecvLen: (n) => { c.recvLen = Math.max(c.recvLen, n); },
    setJoinAnswers: (on) => { c.joinAnswers = on; },
    // The check that chose `c` (verified, above) found the socket closed, or still open: either
    // way the client goes now, with what it held, and the next datagram from the port is checked.
    closing: () => { drop(srv.clients, c); },
  });
}

/**
 * ACCELNL_OPT_CLOSING from the socket with `inode` on the sender's port, which read the answer to
 * every request it sent: what was sent to it for this process is proven (a socket the same process
 * opens next gets the same port, and is not a race), and when the port's client is filed with that
 * socket it goes without a table read. Otherwise (no socket known for the client, or another one:
 * a record older than this socket) the check decides as for any CLOSING.
 */
function closingSocket(srv: ServerCore, sender: Sender, inode: number): void {
  provenRead(srv.outbox, sender.port, inode, sender.uid, sender.pid);
  const c = srv.clients.byPort.get(sender.port);
  if (c?.sock?.inode === inode) { drop(srv.clients, c); return; }
  drop(srv.clients, (sender.client = verified(srv.clients, sender.client, sender.pid)));
}

/** Whether a family on this server has multicast group `g` (the ids nlctrl hands out). */
function groupRegistered(srv: ServerCore, g: number): boolean {
  for (const fam of familiesIn(srv.registry)) if (fam.mcgrps?.some((x) => x.id === g)) return true;
  return false;
}
