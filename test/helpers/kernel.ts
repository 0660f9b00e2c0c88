// Raw request/answer exchanges with the kernel's nlctrl (NETLINK_GENERIC, port 0) and with our
// server on a real NETLINK_USERSOCK port, datagram by datagram, for byte comparisons.
import * as A from '../../attrs';
import * as G from '../../genl';
import { messagesOf } from './mirror';
import { type NlSocket, SockOpt, openSocket } from '../../genl/socket';

export interface ReqSpec {
  type?: number;
  flags?: number;
  seq: number;
  cmd: number;
  version?: number;
  reserved?: number;
  fill?: (w: A.Writer) => void;
  /** Raw bytes appended after the attributes (trailing garbage, broken TLVs). */
  tail?: number[];
  /** Override nlmsg_len (the datagram keeps its real size). */
  len?: number;
  /** The datagram's size, when it should differ from what was written (cut short, or zero-padded). */
  datagram?: number;
}

/** A generic netlink request, byte for byte as described. */
export function req(s: ReqSpec): Uint8Array {
  const w = A.newWriter(256);
  const at = G.genlStart(w, s.type ?? G.GENL_ID_CTRL, s.flags ?? (G.NLM_F.REQUEST | G.NLM_F.ACK), s.seq, 0, s.cmd, s.version ?? 1);
  w.dv.setUint16(at + 18, s.reserved ?? 0, true);
  s.fill?.(w);
  let n = w.len;
  if (s.tail) { const p = A.ensure(w, s.tail.length); w.buf.set(s.tail, p); n = p + s.tail.length; }
  w.dv.setUint32(at, s.len ?? n, true);
  const out = new Uint8Array(s.datagram ?? n);
  out.set(w.buf.subarray(0, Math.min(n, out.length)));
  return out;
}

export interface Peer {
  readonly port: number;
  readonly sock: NlSocket;
  /**
   * Send one datagram and collect every datagram answering seq `seq`, until its ERROR/DONE. When
   * the request may go unanswered (no NLM_F_ACK), a NOOP+ACK barrier marks the end instead.
   */
  exchange(data: Uint8Array, seq: number, barrier?: boolean): Promise<Uint8Array[]>;
  close(): void;
}

const BARRIER_SEQ = 0xb0000000;

/**
 * A socket that talks to `to` (0: the kernel). Its receive slots are `slot` bytes: with 3776, the
 * kernel sizes every dump chunk to NLMSG_GOODSIZE, as our server does, so boundaries compare too.
 */
export function openPeer(o: { protocol: number; to: number; extAck?: boolean; capAck?: boolean; slot?: number }): Peer {
  const got: Uint8Array[] = [];
  let failure: string | undefined;
  let wake: (() => void) | undefined;
  const sock = openSocket({
    protocol: o.protocol, backend: 'native', maxMessage: o.slot ?? G.NLMSG_GOODSIZE, rcvbuf: 1 << 20,
    onBatch: (b) => {
      for (let i = 0; i < b.count; i++) {
        if (b.port(i) !== o.to) continue;
        if (b.truncated(i)) failure = `datagram of ${b.truncated(i)} bytes truncated to ${b.data(i).length}`;
        got.push(new Uint8Array(b.data(i)));
      }
      wake?.();
    },
  });
  if (o.protocol === G.NETLINK_GENERIC) {
    if (sock.setOption(SockOpt.SOL_NETLINK, SockOpt.NETLINK_EXT_ACK, o.extAck === false ? 0 : 1) !== 0) throw new Error('NETLINK_EXT_ACK');
    if (sock.setOption(SockOpt.SOL_NETLINK, SockOpt.NETLINK_CAP_ACK, o.capAck ? 1 : 0) !== 0) throw new Error('NETLINK_CAP_ACK');
  }
  let barriers = 0;
  const seqOf = (d: Uint8Array): number => new DataView(d.buffer, d.byteOffset).getUint32(8, true);
  return {
    port: sock.port, sock,
    async exchange(data, seq, barrier = false) {
      got.length = 0;
      const bseq = (BARRIER_SEQ + barriers++) >>> 0;
      const r = sock.send(data, o.to);
      if (r < 0) throw new Error(`send: ${A.errnoName(r)}`);
      if (barrier) {
        const b = new Uint8Array(16);
        const dv = new DataView(b.buffer);
        dv.setUint32(0, 16, true); dv.setUint16(4, G.NLMSG.NOOP, true); dv.setUint16(6, G.NLM_F.ACK, true); dv.setUint32(8, bseq, true);
        sock.send(b, o.to);
      }
      const deadline = Date.now() + 3000;
      for (;;) {
        const mine = got.filter((d) => seqOf(d) === seq);
        const msgs = mine.flatMap((d) => messagesOf(d));
        const done = msgs.some((m) => m.type === G.NLMSG.DONE);
        const terminal = done || msgs.some((m) => m.type === G.NLMSG.ERROR);
        // Answers to everything sent before the barrier precede its ACK, except later dump chunks.
        const dumpOpen = !done && msgs.some((m) => (m.flags & G.NLM_F.MULTI) !== 0);
        if (barrier ? got.some((d) => seqOf(d) === bseq) && !dumpOpen : terminal) return mine;
        if (failure) throw new Error(failure);
        if (Date.now() > deadline) throw new Error(`no complete answer to seq ${seq}: ${mine.length} datagrams`);
        await new Promise<void>((res) => { wake = res; setTimeout(res, 50); });
      }
    },
    close: () => sock.close(),
  };
}

/** Datagrams as hex, each message's nlmsg_pid zeroed (the only field allowed to differ, besides seq). */
export function norm(ds: Uint8Array[]): string[] {
  return ds.map((d) => {
    const c = d.slice();
    const dv = new DataView(c.buffer);
    let at = 0;
    while (c.length - at >= 16) {
      const len = dv.getUint32(at, true);
      if (len < 16 || len > c.length - at) break;
      dv.setUint32(at + 12, 0, true);
      at += (len + 3) & ~3;
    }
    return Buffer.from(c).toString('hex');
  });
}

/** The messages of a stream of datagrams, concatenated (boundaries dropped), pids zeroed. */
export const stream = (ds: Uint8Array[]): string => norm(ds).join('');

/** Serve `srv` on a free real USERSOCK port (test files run in parallel), and open a client peer for it. */
export function serveOurs(srv: G.Server): { port: number; peer: Peer; close(): void } {
  let served: G.ServerBinding | undefined;
  let port = 0;
  for (let i = 0; !served; i++) {
    port = 0x4b470000 + Math.floor(Math.random() * 0xffff);
    try {
      served = G.serve(srv, { port });
    } catch (e) {
      if ((e as { code?: string }).code !== 'EADDRINUSE' || i > 20) throw e;
    }
  }
  const peer = openPeer({ protocol: G.NETLINK_USERSOCK, to: port, slot: 65536 });
  return { port, peer, close() { peer.close(); served!.close(); } };
}

/** A kernel GENERIC peer with EXT_ACK on and CAP_ACK off, our server's default ack shape. */
export const kernelPeer = (o: { capAck?: boolean; extAck?: boolean; slot?: number } = {}): Peer =>
  openPeer({ protocol: G.NETLINK_GENERIC, to: 0, ...o });

/** A short, readable account of where two hex streams first differ. */
export function firstDiff(a: string, b: string): string {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  if (i === a.length && i === b.length) return 'equal';
  const from = Math.max(0, (i >> 1) - 16) * 2;
  return `byte ${i >> 1}: kernel …${a.slice(from, from + 96)}… ours …${b.slice(from, from + 96)}…`;
}
