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
  /** Unicast copies of a notification left out because the family's audience function threw. */
  audienceFailed: number;
  /**
   * Datagrams delivered to a port that another socket held after the send (checked just before):
   * each may have reached that socket, and each is logged (genl/outbox.ts raceLine;
   * docs/transport.md "Raced sends").
   */
  racedSends: number;
  /**
   * Checked datagrams whose port nobody held after the send (in two tables running), or with no
   * table to tell: almost always the socket read them and closed (a CLI that exits after its
   * answer). Counted, not logged: no live socket can hold them.
   */
  unprovenSends: number;
}

export const newCounters = (): Counters => ({
  datagrams: 0, messages: 0, errors: 0, truncated: 0, malformed: 0, dumps: 0, sendFailures: 0, dropped: 0,
  overruns: 0, stalled: 0, rejected: {}, encodeFailed: 0, audienceFailed: 0, racedSends: 0, unprovenSends: 0,
});

/** An error was answered (NLMSG_ERROR or a failing NLMSG_DONE): counted by errno name. */
export function countRejected(c: Counters, err: number): void {
  const name = errnoName(err);
  c.rejected[name] = (c.rejected[name] ?? 0) + 1;
}
