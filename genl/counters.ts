// What the server has done, counted (part of the stats snapshot, genl/server.ts serverStats).
import { errnoName } from '../attrs/errno';

export interface Counters {
  datagrams: number;
  messages: number;
  errors: number;
  /** Datagrams longer than the socket's maxMessage (answered EMSGSIZE when they asked for an answer). */
  truncated: number;
  /** Datagrams with bytes after the last whole message (nlmsg_len < 16 or past the end): ignored, as the kernel does. */
  malformed: number;
  dumps: number;
  sendFailures: number;
  /** Datagrams dropped from a full port's queue; the port is then sent NLMSG_OVERRUN. */
  dropped: number;
  /** NLMSG_OVERRUN markers delivered (each tells a client it missed messages). */
  overruns: number;
  /** Ports whose queue and dump were released after stallMs without progress. */
  stalled: number;
  /** Errors answered (NLMSG_ERROR or a failing NLMSG_DONE), by errno name. */
  rejected: Record<string, number>;
  /** Notifications a subscriber missed because its format's encoder threw (it got NLMSG_OVERRUN). */
  encodeFailed: number;
  /**
   * Datagrams delivered to a port whose socket changed hands during the send (checked just before,
   * not held by the same socket just after): each may have reached the next socket on the port, and
   * each is logged (genl/outbox.ts raceLine; docs/transport.md "Client identity").
   */
  racedSends: number;
}

export const newCounters = (): Counters => ({
  datagrams: 0, messages: 0, errors: 0, truncated: 0, malformed: 0, dumps: 0, sendFailures: 0, dropped: 0,
  overruns: 0, stalled: 0, rejected: {}, encodeFailed: 0, racedSends: 0,
});

/** An error was answered (NLMSG_ERROR or a failing NLMSG_DONE): counted by errno name. */
export function countRejected(c: Counters, err: number): void {
  const name = errnoName(err);
  c.rejected[name] = (c.rejected[name] ?? 0) + 1;
}
