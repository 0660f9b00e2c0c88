// What every command runs with: the options, where output goes, and one lazily opened connection
// to the daemon (shared by the lines of a batch). Netlink failures become iproute2-style messages.
import { type AccelClient, connectAccel, decode } from '../device/client';
import { type Accel, CMD, OP_NAMES } from '../device/gen/accel';
import { type ClientOptions, NetlinkError, extackText } from '../genl';
import { resolvePort } from '../device/port';
import { ECONNREFUSED, ENOENT, EPERM, ETIMEDOUT, strerror } from '../attrs/errno';
import { OpError, UsageError } from './args';
import type { Options, Out } from './output';

export interface Ctx {
  o: Options;
  out: Out;
  /** The daemon's port, from --port, ACCEL_NL_PORT or the default. */
  port: number;
  /** Connect (once) and resolve the accel family. */
  accel(extra?: ClientOptions): Promise<AccelClient>;
  close(): void;
}

export const hexPort = (p: number): string => `0x${p.toString(16)}`;

export function createCtx(o: Options, out: Out): Ctx {
  let client: Promise<AccelClient> | undefined;
  const ctx: Ctx = {
    o, out,
    get port() { return resolvePort(); },
    accel(extra = {}) {
      if (extra.open) return connect(ctx.port, extra); // a private, wrapped socket (capture)
      client ??= connect(ctx.port, extra);
      return client;
    },
    close() { client?.then((c) => c.close(), () => undefined); client = undefined; },
  };
  return ctx;
}

async function connect(port: number, extra: ClientOptions): Promise<AccelClient> {
  try {
    return await connectAccel({ serverPort: port, timeoutMs: 3000, ...extra });
  } catch (e) {
    throw connectError(e, port);
  }
}

/** The one line the tool prints when it cannot talk to the daemon. */
export function connectError(e: unknown, port: number): Error {
  if (e instanceof NetlinkError) {
    if (e.errno === ECONNREFUSED || e.errno === ETIMEDOUT) {
      return new OpError(`accel: cannot reach the accel daemon at netlink port ${hexPort(port)} (NETLINK_USERSOCK): ` +
        `${e.errno === ETIMEDOUT ? 'no answer' : 'nothing is bound there'}. Is "accel daemon" running?`);
    }
    if (e.errno === ENOENT) return new OpError(`accel: the daemon at netlink port ${hexPort(port)} does not serve the accel family.`);
  }
  return e as Error;
}


/** iproute2's way: "Error: <extack message>." then the errno text. */
export function describeNetlinkError(e: NetlinkError): string {
  // The kernel's answer to a non-admin sender of an admin op has no message; the tool says what it takes.
  const msg = extackText(e.extack) ?? (e.errno === EPERM && !e.local
    ? 'only root may do this (the daemon judges the sender\'s credentials, as the kernel judges CAP_NET_ADMIN)' : undefined);
  return `${msg ? `Error: ${msg}.\n` : ''}daemon answers: ${strerror(e.errno)}`;
}

/** Run one request; a netlink error becomes an OpError with the message above. */
export async function call<T>(ctx: Ctx, f: (c: AccelClient) => Promise<T>): Promise<T> {
  const c = await ctx.accel();
  try {
    return await f(c);
  } catch (e) {
    if (e instanceof NetlinkError) {
      // No answer at all means no daemon; an ETIMEDOUT the daemon answered (job wait) is an operation error.
      if (e.errno === ECONNREFUSED || (e.errno === ETIMEDOUT && e.local)) throw connectError(e, ctx.port);
      throw new OpError(describeNetlinkError(e));
    }
    // A value the request cannot carry (the codec's range check on a field, e.g. sizes past u64).
    if (e instanceof RangeError) throw new UsageError(`Invalid value: ${e.message.replace(/^accel\./, '')}.`);
    throw e;
  }
}

/** Whether this daemon serves an op (the family is served partially while features land). */
export const serves = (c: AccelClient, cmd: number): boolean => c.family.ops.some((op) => op.id === cmd);

/** Fail clearly when the daemon does not serve `cmd`. */
export async function requireOp(ctx: Ctx, cmd: number, what: string): Promise<void> {
  const c = await ctx.accel();
  if (!serves(c, cmd)) {
    throw new OpError(`Error: "${what}" is not supported by this daemon (it does not serve ${OP_NAMES[cmd] ?? cmd}).`);
  }
}

/**
 * A request without attributes (`dev show`, `ras show`, ...) goes out without the attribute writer:
 * the bytes are the same (a bare genl header), and a short command does not pay for compiling the
 * writer of the whole accel attribute set, which the client builds on its first write.
 */
const empty = (a: Accel): boolean => {
  for (const k in a) if ((a as Record<string, unknown>)[k] !== undefined) return false;
  return true;
};

export const doOne = (ctx: Ctx, cmd: number, a: Accel = {}): Promise<Accel[]> => call(ctx, async (c) =>
  (empty(a) ? (await c.genl.request(c.family.id, cmd)).map(decode) : c.do(cmd, a)));

export const dumpAll = (ctx: Ctx, cmd: number, a: Accel = {}): Promise<Accel[]> => call(ctx, async (c) => {
  if (!empty(a)) return c.dump(cmd, a);
  const out: Accel[] = [];
  for await (const m of c.genl.dump(c.family.id, cmd)) out.push(decode(m));
  return out;
});
export { CMD };

/** A command: reads its words from `a`, prints through ctx. */
export type Command = (ctx: Ctx, a: import('./args').Args) => Promise<void>;

/** An object of the grammar: its commands in usage order (the order settles abbreviations). */
export interface Obj {
  name: string;
  usage: string;
  commands: [string, Command][];
  /** Objects without COMMANDs (monitor, exporter, daemon) take the rest of the line themselves. */
  run?: Command;
  /** The command run when none is given (ip's default is show). */
  default?: string;
}
