// Client library: requests with sequence tracking and timeouts, dumps as async iterators, family
// resolution through nlctrl, and group subscriptions that only accept the server's own port.
import {
  type View, type Writer, getString, getU16, getU32, newWriter, putString, resetWriter, view, walk, payload, payloadLen,
} from '../attrs';
import { EAGAIN, EMSGSIZE, ENOBUFS, EPERM, ETIMEDOUT, errnoName, strerror } from '../attrs/errno';
import { CTRL_ATTR, CTRL_ATTR_MCAST_GRP, CTRL_ATTR_OP, CTRL_CMD, GENL_HDRLEN, GENL_ID_CTRL, NLMSG, NLMSGERR_ATTR, NLMSG_HDRLEN, NLM_F } from './consts';
import { extackText } from './explain';
import { genlStart, msgEnd } from './message';
import { type Batch, type NlSocket, NETLINK_USERSOCK, openSocket } from './socket';
import { querySockets } from './sockdiag';
import { ACCELNL_OPT_CLOSING, helloMessages, sockoptMessage } from './sockopt';

/** One received message: a view on a private copy of its datagram. */
export interface Message {
  v: View;
  at: number;
  len: number;
  type: number;
  flags: number;
  seq: number;
  /** genl cmd and version (meaningless for control messages). */
  cmd: number;
  version: number;
  /** Attribute area of a genl message: [attrs, end). */
  attrs: number;
  end: number;
  /** Sender port and destination group bitmask. */
  port: number;
  groups: number;
}

/**
 * What a peer's extended ACK said, decoded: offsets relative to the request, the policy as its raw
 * TLVs. (attrs' Extack is the other side: the state a handler fills for the server to send.)
 */
export interface ReceivedExtack {
  msg?: string;
  offset?: number;
  missType?: number;
  missNest?: number;
  /** Raw NLMSGERR_ATTR_POLICY payload, when sent. */
  policy?: Uint8Array;
  /**
   * The attribute `offset` points at, as the types of its nests from the top level down, when the
   * answer echoes the request (no NETLINK_CAP_ACK): what lets a tool name the attribute.
   */
  attrPath?: number[];
  /** The same for the nest that `missNest` points at. */
  missNestPath?: number[];
  /** The attribute at `offset` (`gemm.m`) and the missing one, named from the family's spec by a typed client (genl/ynl/names.ts). */
  attrName?: string;
  missName?: string;
}

/** A negative answer from the peer, with what its extended ACK said. */
export class NetlinkError extends Error {
  /**
   * Raised by this client itself, not answered by the peer (no answer in time, nothing bound at the
   * server's port, replies the server dropped, a server of another uid): `extack.msg` is the client's.
   */
  local = false;
  constructor(public errno: number, public extack: ReceivedExtack = {}, public warning = false) {
    const text = extackText(extack);
    super(`${text ? text + ': ' : ''}${strerror(errno)} (${errnoName(errno)})`);
    this.name = 'NetlinkError';
  }
  get code(): string { return errnoName(this.errno); }
}

/** An error this client raises itself (no peer answered it): `extack.msg` is the client's words. */
export function localError(errno: number, msg: string): NetlinkError {
  const e = new NetlinkError(errno, { msg });
  e.local = true;
  return e;
}

/** The same error with the attributes its extack points at named (its message says them). */
export function withNames(e: NetlinkError, attrName: string | undefined, missName: string | undefined): NetlinkError {
  const named = new NetlinkError(e.errno, { ...e.extack, attrName, missName }, e.warning);
  named.local = e.local;
  named.stack = `${named.name}: ${named.message}${e.stack?.replace(/^[^\n]*/, '') ?? ''}`;
  return named;
}

/** Decode an NLMSG_ERROR or NLMSG_DONE's status and TLVs. */
export function decodeStatus(m: Message): { error: number; extack: ReceivedExtack } {
  const dv = m.v.dv;
  const error = m.len >= NLMSG_HDRLEN + 4 ? dv.getInt32(m.at + NLMSG_HDRLEN, true) : 0;
  const extack: ReceivedExtack = {};
  if (!(m.flags & NLM_F.ACK_TLVS)) return { error, extack };
  let tlv: number;
  if (m.type === NLMSG.DONE) tlv = m.at + NLMSG_HDRLEN + 4;
  else if (m.flags & NLM_F.CAPPED) tlv = m.at + NLMSG_HDRLEN + 4 + NLMSG_HDRLEN;
  else tlv = m.at + NLMSG_HDRLEN + ((4 + dv.getUint32(m.at + NLMSG_HDRLEN + 4, true) + 3) & ~3);
  walk(m.v, tlv, m.at + m.len, (at, t) => {
    if (t === NLMSGERR_ATTR.MSG) extack.msg = getString(m.v, at);
    else if (t === NLMSGERR_ATTR.OFFS) extack.offset = getU32(m.v, at);
    else if (t === NLMSGERR_ATTR.MISS_TYPE) extack.missType = getU32(m.v, at);
    else if (t === NLMSGERR_ATTR.MISS_NEST) extack.missNest = getU32(m.v, at);
    else if (t === NLMSGERR_ATTR.POLICY) extack.policy = m.v.buf.slice(payload(at), payload(at) + payloadLen(m.v, at));
  });
  if (extack.offset !== undefined && m.type === NLMSG.ERROR && !(m.flags & NLM_F.CAPPED)) {
    extack.attrPath = attrPathAt(m.v, m.at + NLMSG_HDRLEN + 4, tlv, extack.offset);
  }
  if (extack.missNest !== undefined && m.type === NLMSG.ERROR && !(m.flags & NLM_F.CAPPED)) {
    extack.missNestPath = attrPathAt(m.v, m.at + NLMSG_HDRLEN + 4, tlv, extack.missNest);
  }
  return { error, extack };
}

/** Types of the attributes that enclose `offset` in the echoed genl request at [req, end). */
function attrPathAt(v: View, req: number, end: number, offset: number): number[] | undefined {
  const target = req + offset;
  let at = req + NLMSG_HDRLEN + GENL_HDRLEN;
  let stop = Math.min(end, req + v.dv.getUint32(req, true));
  const path: number[] = [];
  while (at + 4 <= stop) {
    const len = v.dv.getUint16(at, true);
    if (len < 4 || at + len > stop) return undefined;
    if (target >= at && target < at + len) {
      path.push(v.dv.getUint16(at + 2, true) & 0x3fff);
      if (target === at) return path;
      stop = at + len;
      at += 4;
      continue;
    }
    at += (len + 3) & ~3;
  }
  return undefined;
}

export interface ClientOptions {
  /** The server's port id; 0 (the default) is the kernel. The accel daemon's: device/port.ts. */
  serverPort?: number;
  /** NETLINK_USERSOCK by default; NETLINK_GENERIC (16) to talk to the kernel. */
  protocol?: number;
  /** Per-request timeout. */
  timeoutMs?: number;
  /**
   * Open the socket yourself (in-process hub, a specific backend, a capturing wrapper). `hooks`
   * carries this client's overrun handler and receive buffer size, for the socket to honour.
   */
  open?: (onBatch: (b: Batch) => void, hooks: { onOverrun?: () => void; rcvbuf?: number }) => NlSocket;
  backend?: 'native' | 'npm';
  /** The kernel dropped datagrams for this socket (ENOBUFS): events were lost and should be recovered. */
  onOverrun?: () => void;
  /** Receive buffer size; larger buffers drop fewer events under bursts. */
  rcvbuf?: number;
  /** Bind the client's socket to this port (default: the kernel picks one, the process's pid first). Ignored with `open`. */
  port?: number;
  /**
   * Accept answers and events only when the kernel attests (SCM_CREDENTIALS) that the server's
   * socket belongs to this uid: whoever binds the server's port first is the server, and a stale
   * or hostile process may have taken it. Default: 0 when this process runs as root and the
   * socket reports credentials (native backend), so root never trusts an unprivileged server;
   * otherwise no check. null turns the check off. A request answered by another uid fails with
   * EPERM naming it.
   */
  serverUid?: number | null;
  /**
   * Tell a userspace server (serverPort != 0), once before the first request, the length this
   * socket reads datagrams with, as the kernel learns max_recvmsg_len from recvmsg: the server then
   * fills dump datagrams up to 32 KiB, as the kernel does, instead of 3776 bytes (genl/sockopt.ts).
   * Default true; false keeps every dump datagram at NLMSG_GOODSIZE.
   */
  tellRecvLen?: boolean;
  /**
   * Ask a userspace server, with the same control message, to let answers to requests it reads in
   * one batch share a datagram (ACCELNL_OPT_JOIN_ANSWERS): fewer wake-ups when requests are
   * pipelined. The kernel never joins them; this client reads every message of a datagram either
   * way. Default true.
   */
  joinAnswers?: boolean;
  /**
   * Native backend: after each batch of answers, keep reading for up to this many µs (at most
   * 1000) before the event loop sleeps (genl/socket.ts OpenOptions.busyPollUs). A request sent
   * from the answer's continuation (`await c.request(...)` in a loop) is then answered without a
   * wake-up of this process: with a daemon that polls too (`accel daemon --busy-poll`), a
   * sequential loop runs about twice as fast (docs/performance.md). It spends CPU while it waits;
   * 0 (the default) never does. Ignored with `open`.
   */
  busyPollUs?: number;
}

interface Pending {
  replies: Message[];
  dump: boolean;
  resolve: (m: Message[]) => void;
  reject: (e: Error) => void;
  onMessage?: (m: Message) => void;
  timer: NodeJS.Timeout;
  /** A dump's request, copied: its NLMSG_DONE does not echo it, and an extack offset points into it. */
  request?: Uint8Array;
}

export interface RequestOptions {
  flags?: number;
  version?: number;
  /** Write the request's attributes. */
  fill?: (w: Writer) => void;
  timeoutMs?: number;
}

export interface FamilyInfo {
  name: string;
  id: number;
  version: number;
  hdrsize: number;
  maxattr: number;
  ops: { id: number; flags: number }[];
  groups: Map<string, number>;
}

export interface Client {
  readonly port: number;
  readonly serverPort: number;
  socket: NlSocket;
  /** A do: resolves with the replies once the ACK arrives; rejects with NetlinkError. */
  request(type: number, cmd: number, o?: RequestOptions): Promise<Message[]>;
  /**
   * A dump: yields each message until NLMSG_DONE; a failing DONE or ERROR throws NetlinkError.
   * A socket runs one dump at a time (a second is EBUSY, in the kernel too), so a client's dumps
   * go one after another: a dump asked for while another runs is sent when that one is over.
   */
  dump(type: number, cmd: number, o?: RequestOptions): AsyncIterableIterator<Message>;
  /** Resolve a family through nlctrl. */
  resolve(name: string): Promise<FamilyInfo>;
  /** Receive messages to a group (multicast, or unicast events from the server with seq 0). */
  onEvent(cb: (m: Message) => void): () => void;
  join(group: number): void;
  leave(group: number): void;
  close(): void;
}

export function createClient(o: ClientOptions = {}): Client {
  const serverPort = o.serverPort ?? 0;
  const portName = `0x${serverPort.toString(16)}`;  // in messages: port ids read as hex, as the CLI prints them
  const timeoutMs = o.timeoutMs ?? 5000;
  const pending = new Map<number, Pending>();
  const events = new Set<(m: Message) => void>();
  const w = newWriter(1024);
  // A random start: a process that closes a client and opens the next gets the same port, and an
  // answer meant for the old socket can reach the new one (docs/transport.md, "Client identity");
  // with clients started in the same millisecond, a clock-based start would give it a pending seq.
  let seq = ((Math.random() * 0x7fffffff) >>> 0) | 1;
  const asRoot = process.getuid?.() === 0;
  const wantCreds = o.serverUid !== null && (o.serverUid !== undefined || asRoot);
  let requiredUid: number | undefined;

  const onBatch = (b: Batch): void => {
    for (let i = 0; i < b.count; i++) {
      const from = b.port(i);
      if (from !== serverPort) continue; // forged or stray: only the server may answer or notify
      if (requiredUid !== undefined && b.uid(i) !== requiredUid) { foreign(b.data(i), b.uid(i)); continue; }
      const groups = b.groups(i);
      const data = new Uint8Array(b.data(i)); // copy: batch memory is reused
      const v = view(data);
      let at = 0;
      while (data.length - at >= NLMSG_HDRLEN) {
        const len = v.dv.getUint32(at, true);
        if (len > data.length - at && b.truncated(i)) { cutShort(v, at, b.truncated(i), data.length); break; }
        if (len < NLMSG_HDRLEN || len > data.length - at) break;
        const m: Message = {
          v, at, len, type: v.dv.getUint16(at + 4, true), flags: v.dv.getUint16(at + 6, true),
          seq: v.dv.getUint32(at + 8, true), cmd: data[at + 16] ?? 0, version: data[at + 17] ?? 0,
          attrs: at + NLMSG_HDRLEN + GENL_HDRLEN, end: at + len, port: from, groups,
        };
        route(m);
        at += (len + 3) & ~3;
      }
    }
  };

  /**
   * The server sent a datagram longer than this socket reads (MSG_TRUNC), and the message at `at`
   * lost its tail. The request it answers fails now, not at its timeout: with the errno when it is
   * an error (whose head survives), else EMSGSIZE.
   */
  const cutShort = (v: View, at: number, full: number, kept: number): void => {
    const s = v.dv.getUint32(at + 8, true);
    const p = pending.get(s);
    if (!p) return;
    pending.delete(s);
    clearTimeout(p.timer);
    const isError = v.dv.getUint16(at + 4, true) === NLMSG.ERROR && kept - at >= NLMSG_HDRLEN + 4;
    const errno = isError ? -v.dv.getInt32(at + NLMSG_HDRLEN, true) : 0;
    const msg = `the answer (${full} bytes) was longer than this socket reads (${kept}); its extended ACK is lost`;
    p.reject(new NetlinkError(errno > 0 ? errno : EMSGSIZE, { msg }));
  };

  /** A datagram from the server's port but another uid: refused; the request it answers fails. */
  const foreign = (d: Uint8Array, uid: number): void => {
    const s = d.length >= NLMSG_HDRLEN ? new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(8, true) : 0;
    const p = pending.get(s);
    if (!p) return;
    pending.delete(s);
    clearTimeout(p.timer);
    p.reject(localError(EPERM, `the server at port ${portName} runs as uid ${uid}, not ${requiredUid} (ClientOptions.serverUid)`));
  };

  const route = (m: Message): void => {
    if (m.type === NLMSG.OVERRUN) {
      // The server dropped messages queued for us while we did not read. Events come back from
      // the log (onOverrun); lost replies do not, so what is in flight fails like a kernel ENOBUFS.
      if (m.len >= 24 && (m.v.dv.getUint32(m.at + 20, true) & 1)) {
        for (const [s, p] of pending) {
          pending.delete(s);
          clearTimeout(p.timer);
          p.reject(localError(ENOBUFS, `the server at port ${portName} dropped replies to this socket while it was not reading`));
        }
      }
      o.onOverrun?.();
      return;
    }
    const p = m.groups ? undefined : pending.get(m.seq);
    if (!p) {
      for (const cb of events) cb(m);
      return;
    }
    if (m.type === NLMSG.ERROR || (p.dump && m.type === NLMSG.DONE)) {
      const { error, extack } = decodeStatus(m);
      if (p.request && extack.offset !== undefined) extack.attrPath = attrPathAt(view(p.request), 0, p.request.length, extack.offset);
      answered++;
      pending.delete(m.seq);
      clearTimeout(p.timer);
      if (error) p.reject(new NetlinkError(-error, extack));
      else p.resolve(p.replies);
      return;
    }
    p.timer.refresh(); // the timeout is for silence: a long dump that keeps answering is alive
    if (p.onMessage) p.onMessage(m);
    else p.replies.push(m);
  };

  const socket = o.open ? o.open(onBatch, { onOverrun: o.onOverrun, rcvbuf: o.rcvbuf }) : openSocket({
    protocol: o.protocol ?? NETLINK_USERSOCK, port: o.port, backend: o.backend, onBatch, rcvbuf: o.rcvbuf, credentials: wantCreds, busyPollUs: o.busyPollUs,
    onOverrun: o.onOverrun ?? (() => { /* requests are retried by their callers; events: see onOverrun */ }),
    onError: (e) => { for (const p of pending.values()) p.reject(e); },
  });
  if (wantCreds && socket.credentials) requiredUid = o.serverUid ?? 0;

  // Control messages, not requests (no answer), sent before the first request to a userspace
  // server. If one is lost (the server's buffer is full), the socket gets the kernel's defaults.
  const userspace = serverPort !== 0;
  const hello = userspace ? helloMessages({ recvLen: (o.tellRecvLen ?? true) ? socket.recvLen : 0, joinAnswers: o.joinAnswers ?? true }) : [];
  let spoke = false; // sent the server anything: it has a client for this socket
  // Requests sent, and those whose answer was read to its end: equal when this socket read
  // everything the server sent it in answer (said when closing: ACCELNL_OPT_CLOSING).
  let asked = 0, answered = 0;
  let dumpsAhead: Promise<void> | undefined; // settles when the last dump asked for is over
  const send = (type: number, cmd: number, flags: number, ro: RequestOptions, dump: boolean,
    onMessage?: (m: Message) => void): Promise<Message[]> => {
    if (!spoke) {
      spoke = true;
      for (const m of hello) socket.send(m, serverPort);
    }
    seq = (seq + 1) >>> 0 || 1;
    const s = seq;
    resetWriter(w);
    const at = genlStart(w, type, flags, s, socket.port, cmd, ro.version ?? 1);
    ro.fill?.(w);
    msgEnd(w, at);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(s);
        reject(localError(ETIMEDOUT, `no answer from port ${portName} within ${ro.timeoutMs ?? timeoutMs} ms`));
      }, ro.timeoutMs ?? timeoutMs);
      pending.set(s, { replies: [], dump, resolve, reject, onMessage, timer, request: dump ? w.buf.slice(0, w.len) : undefined });
      asked++;
      const attempt = (bytes: Uint8Array, delay: number, own: boolean): void => {
        if (pending.get(s)?.timer !== timer) return; // answered, timed out or closed meanwhile
        const r = socket.send(bytes, serverPort);
        if (r === -EAGAIN || r === -ENOBUFS) {
          // The server's receive buffer is full (a burst, or a flood from others): retry until
          // the request's timeout rather than fail a request that would be served a moment later.
          const keep = own ? bytes : bytes.slice(); // the writer is reused by the next request
          setTimeout(() => attempt(keep, Math.min(delay * 2, 50), true), delay);
          return;
        }
        if (r < 0) {
          pending.delete(s);
          clearTimeout(timer);
          reject(localError(-r, `cannot reach the server at port ${portName}`));
        }
      };
      attempt(w.buf.subarray(0, w.len), 1, false);
    });
  };

  /** This socket's inode, by the kernel's table (0: unknown, or a socket `open` made). */
  const ownInode = (): number => (o.open ? 0 : querySockets(o.protocol ?? NETLINK_USERSOCK)?.table.get(socket.port)?.inode ?? 0);

  const client: Client = {
    get port() { return socket.port; },
    serverPort, socket,
    request(type, cmd, ro = {}) {
      return send(type, cmd, NLM_F.REQUEST | NLM_F.ACK | (ro.flags ?? 0), ro, false);
    },
    dump(type, cmd, ro = {}) {
      const queue: Message[] = [];
      let done = false;
      let failure: Error | undefined;
      let wake: (() => void) | undefined;
      const end = (e?: Error): void => { failure = e; done = true; wake?.(); };
      const go = (): Promise<void> => {
        try {
          return send(type, cmd, NLM_F.REQUEST | NLM_F.ACK | NLM_F.DUMP | (ro.flags ?? 0), ro, true, (m) => {
            queue.push(m);
            wake?.();
          }).then(() => end(), end);
        } catch (e) { // the socket is closed: the iterator throws it
          end(e as Error);
          return Promise.resolve();
        }
      };
      // One dump at a time per socket: the kernel (and our server) answer a second one EBUSY while
      // the first runs. So a dump waits for the ones before it; with none running it goes at once.
      const mine = dumpsAhead ? dumpsAhead.then(go) : go();
      dumpsAhead = mine;
      void mine.then(() => { if (dumpsAhead === mine) dumpsAhead = undefined; });
      const it: AsyncIterableIterator<Message> = {
        async next() {
          while (!queue.length && !done) await new Promise<void>((r) => { wake = r; });
          wake = undefined;
          if (queue.length) return { value: queue.shift()!, done: false };
          if (failure) throw failure;
          return { value: undefined, done: true };
        },
        [Symbol.asyncIterator]() { return it; },
      };
      return it;
    },
    async resolve(name) {
      const [m] = await client.request(GENL_ID_CTRL, CTRL_CMD.GETFAMILY, {
        fill: (x) => putString(x, CTRL_ATTR.FAMILY_NAME, name),
      });
      if (!m) throw localError(2, `no reply for family ${name}`);
      return parseFamily(m);
    },
    onEvent(cb) { events.add(cb); return () => events.delete(cb); },
    join(g) { socket.addMembership(g); },
    leave(g) { socket.dropMembership(g); },
    close() {
      for (const p of pending.values()) { clearTimeout(p.timer); p.reject(new Error('client closed')); }
      pending.clear();
      // A userspace server frees what this socket held now rather than at its next sweep, and
      // does not take a socket this process opens next on the same port for this one.
      if (userspace && spoke) socket.send(sockoptMessage(ACCELNL_OPT_CLOSING, asked === answered ? ownInode() : 0), serverPort);
      socket.close();
    },
  };
  return client;
}

/** Decode a CTRL_CMD_NEWFAMILY message. */
export function parseFamily(m: Message): FamilyInfo {
  const f: FamilyInfo = { name: '', id: 0, version: 0, hdrsize: 0, maxattr: 0, ops: [], groups: new Map() };
  const v = m.v;
  walk(v, m.attrs, m.end, (at, t) => {
    switch (t) {
      case CTRL_ATTR.FAMILY_NAME: f.name = getString(v, at); break;
      case CTRL_ATTR.FAMILY_ID: f.id = getU16(v, at); break;
      case CTRL_ATTR.VERSION: f.version = getU32(v, at); break;
      case CTRL_ATTR.HDRSIZE: f.hdrsize = getU32(v, at); break;
      case CTRL_ATTR.MAXATTR: f.maxattr = getU32(v, at); break;
      case CTRL_ATTR.OPS:
        walk(v, payload(at), at + v.dv.getUint16(at, true), (e) => {
          const op = { id: 0, flags: 0 };
          walk(v, payload(e), e + v.dv.getUint16(e, true), (x, tt) => {
            if (tt === CTRL_ATTR_OP.ID) op.id = getU32(v, x);
            else if (tt === CTRL_ATTR_OP.FLAGS) op.flags = getU32(v, x);
          });
          f.ops.push(op);
        });
        break;
      case CTRL_ATTR.MCAST_GROUPS:
        walk(v, payload(at), at + v.dv.getUint16(at, true), (e) => {
          let id = 0, name = '';
          walk(v, payload(e), e + v.dv.getUint16(e, true), (x, tt) => {
            if (tt === CTRL_ATTR_MCAST_GRP.ID) id = getU32(v, x);
            else if (tt === CTRL_ATTR_MCAST_GRP.NAME) name = getString(v, x);
          });
          f.groups.set(name, id);
        });
        break;
    }
  });
  return f;
}
