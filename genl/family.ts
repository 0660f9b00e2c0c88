// The model of a generic netlink family, as the kernel's genl_family and split ops describe it.
import { NLA, type Extack, type Policy, type View, type Writer, policy } from '../attrs';
import type { SocketClient } from './clients';
import { GENL_OP } from './consts';
import { type DoResult, type DumpResult, type Result, done, more } from './result';

/** A datagram's source: its port and, when the transport can tell, its credentials (-1 unknown). */
export interface Peer extends Credentials {
  port: number;
  pid: number;
}

/** SCM_CREDENTIALS' uid and gid, as the kernel attested them (-1: the transport cannot tell). */
export interface Credentials {
  uid: number;
  gid: number;
}

/**
 * Who is asking: the peer, and the client (socket) the server files its resources under
 * (genl/clients.ts). Handlers that touch per-client resources get it through ctx.owner().
 */
export interface Sender extends Peer {
  client: SocketClient;
}

/** Context of one do request (genl_info). */
export interface DoCtx {
  family: Family;
  cmd: number;
  /** The request datagram and the message's offset in it. */
  req: View;
  at: number;
  seq: number;
  flags: number;
  sender: Sender;
  /** tb[type] = attribute header offset in `req`, -1 when absent (length maxattr+1). */
  attrs: Int32Array;
  ext: Extack;
  /**
   * The client this request's resources belong to, checked against the kernel's socket table
   * first: when the port changed hands since the client was seen, the old client is dropped (its
   * resources freed) and the request belongs to the new, empty one. Call it before touching BOs,
   * jobs, subscriptions or limits.
   */
  owner(): SocketClient;
  /** Start a reply message (unicast to the requester); write attributes into `w`, then reply.end(). */
  reply(cmd?: number, flags?: number): Writer;
  /** Finish the reply started last. */
  end(): void;
}

/** Context of a dump (netlink_callback). `state` persists between chunks. */
export interface DumpCtx {
  family: Family;
  cmd: number;
  /** A private copy of the request message, at offset 0. */
  req: View;
  seq: number;
  sender: Sender;
  attrs: Int32Array;
  ext: Extack;
  /** As DoCtx.owner(); the server also checks it before every chunk (a dump ends with its socket). */
  owner(): SocketClient;
  state: Record<string, unknown>;
  /**
   * Start one dump message. Write attributes into the returned writer, then call end(); when end()
   * returns false the message did not fit this datagram and was dropped: return more() and
   * write it again next time.
   */
  start(cmd?: number, flags?: number): Writer;
  end(): boolean;
}

/** A do handler returns done() or fail(errno) (or a promise of one); replies go through ctx.reply(). */
export type DoHandler = (ctx: DoCtx) => DoResult;
/** A dump handler returns more() while more remains, done() when finished, or fail(errno). */
export type DumpHandler = (ctx: DumpCtx) => DumpResult;
/** Runs before the first dump chunk (genl's start); fail(errno) aborts with an NLMSG_ERROR. */
export type DumpStart = (ctx: DumpCtx) => Result;

export interface OpHalf {
  /** Policy checked on dispatch; none means attributes are not parsed (and ignored). */
  policy?: Policy;
  maxattr?: number;
  /** Liberal validation (GENL_DONT_VALIDATE_STRICT / _DUMP_STRICT); default strict. */
  liberal?: boolean;
  /**
   * The policy nlctrl reports for this half when it differs from dispatch (the 6.18 reject-all
   * fill-in). null: report none, as the kernel does for legacy ops below resv_start_op and legacy
   * dumps with GENL_DONT_VALIDATE_DUMP (no fill-in there, so no HASPOL and no op-map entry).
   */
  reportPolicy?: Policy | null;
  reportMaxattr?: number;
}

export interface DoHalf extends OpHalf { handler: DoHandler }
export interface DumpHalf extends OpHalf { handler: DumpHandler; start?: DumpStart }

export interface Op {
  cmd: number;
  /** GENL_ADMIN_PERM / GENL_UNS_ADMIN_PERM. */
  perm?: number;
  do?: DoHalf;
  dump?: DumpHalf;
  /** Exact CTRL_ATTR_OP_FLAGS to report, overriding the computed ones (for mirrored kernel families). */
  reportFlags?: number;
  name?: string;
}

export interface McGroup {
  name: string;
  /** Assigned by the registry (or fixed, for mirrored kernel families). */
  id?: number;
}

export interface Family {
  name: string;
  /** Assigned by the registry unless fixed. */
  id?: number;
  version: number;
  hdrsize?: number;
  /** Family-level maxattr (0 for families with per-op policies). */
  maxattr?: number;
  /** Commands below this skip the genlmsghdr checks (resv_start_op); 0 checks all. */
  resvStartOp?: number;
  ops: Op[];
  mcgrps?: McGroup[];
  /** Generation counter for NLM_F_DUMP_INTR: a dump sees it change → messages are flagged. */
  generation?: () => number;
}

/** genl_policy_reject_all: what 6.18 reports for split ops that have no policy. */
export const REJECT_ALL: Policy = policy({ 1: { type: NLA.REJECT } }, 1, 'reject-all');

/** The policy and maxattr nlctrl reports for one half. */
export function reportedPolicy(h: OpHalf | undefined): { policy?: Policy; maxattr: number } {
  if (!h || h.reportPolicy === null) return { maxattr: 0 };
  if (h.reportPolicy) return { policy: h.reportPolicy, maxattr: h.reportMaxattr ?? h.reportPolicy.maxtype };
  if (h.policy) return { policy: h.policy, maxattr: h.maxattr ?? h.policy.maxtype };
  return { policy: REJECT_ALL, maxattr: 1 };
}

/** CTRL_ATTR_OP_FLAGS: permission bits, CAP_DO/CAP_DUMP, and HASPOL when either half reports a policy. */
export function opFlags(op: Op): number {
  if (op.reportFlags !== undefined) return op.reportFlags;
  let f = op.perm ?? 0;
  if (op.do) f |= GENL_OP.CAP_DO;
  if (op.dump) f |= GENL_OP.CAP_DUMP;
  if (reportedPolicy(op.do).policy || reportedPolicy(op.dump).policy) f |= GENL_OP.CAP_HASPOL;
  return f;
}

/**
 * The common dump shape: one message per item, resuming from a cursor kept in ctx.state[key]
 * (filter the items first; the list must be the same on every call). `fill` writes an item's
 * attributes. Returns what a dump handler returns: more() while items remain, done() when all were written.
 */
export function dumpEach<T>(c: DumpCtx, items: readonly T[], fill: (w: Writer, item: T) => void, key = 'i'): DumpResult {
  let i = (c.state[key] as number) ?? 0;
  for (; i < items.length; i++) {
    fill(c.start(), items[i]);
    if (!c.end()) break;
  }
  c.state[key] = i;
  return i < items.length ? more() : done();
}
