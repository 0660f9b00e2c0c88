// Notifications: a family's event to its multicast group (kernel multicast, pid 0, seq 0) and a
// unicast copy to each subscriber (genl/subscriptions.ts), once per format somebody asked for. The
// message is written once into the outbox's staging buffer and staged per destination; the outbox
// copies it out at the flush, after checking every subscriber's socket (genl/outbox.ts).
import type { Writer } from '../attrs';
import { putRaw, trim } from '../attrs';
import type { SocketClient } from './clients';
import type { Family } from './family';
import { genlStart, msgEnd } from './message';
import { overrunMessage, stage } from './outbox';
import { kick } from './schedule';
import type { Server, ServerCore } from './core';
import { NATIVE_FORMAT, subscribersOf } from './subscriptions';

/**
 * Send a notification to a family's multicast group: kernel multicast (pid 0, seq 0) plus a unicast
 * copy to each subscribed client. `fill` writes the attributes. `audience`, when given, picks the
 * unicast subscribers that may see this notification (a job's events go to its user and admins);
 * multicast members are privileged (USERSOCK groups need CAP_NET_ADMIN) and get every one.
 */
export function notify(handle: Server, fam: Family, group: string, cmd: number, fill: Fill,
  formatted?: (format: number) => Fill, audience?: (c: SocketClient) => boolean): void {
  const srv = handle as ServerCore;
  const g = fam.mcgrps?.find((m) => m.name === group);
  if (!g || g.id === undefined || !srv.outbox.socket) return; // nobody can hear a server without a socket
  const multicast = g.id <= 32;
  const subs = subscribersOf(srv.subs, g.id);
  if (!multicast && !subs.size) return;
  let native = -1;
  if (multicast) {
    native = writeNotification(srv, fam, cmd, fill);
    if (native >= 0) stage(srv.outbox, native, fam.id!, undefined, 1 << (g.id - 1));
  }
  if (subs.size) {
    // Once per format somebody asked for. An encoder that throws costs only its own subscribers
    // that event: they are told (NLMSG_OVERRUN: read it back from the log), and it is counted.
    const enc = new Map<number, number>(); // format -> offset in ev, or -1 when it failed
    for (const [c, f] of subs) {
      if (c.gone) continue; // (the flush checks the rest against the kernel's table before it sends)
      if (audience && !allowed(srv, audience, c)) continue;
      let at = enc.get(f);
      if (at === undefined) {
        at = f === NATIVE_FORMAT || !formatted
          ? (native >= 0 || multicast ? native : (native = writeNotification(srv, fam, cmd, fill)))
          : writeNotification(srv, fam, cmd, formatted(f), f);
        enc.set(f, at);
      }
      if (at >= 0) stage(srv.outbox, at, fam.id!, c, 0);
      else {
        // Counted as a drop and an overrun too, so `accel server show` (stats-get) shows it.
        srv.counters.encodeFailed++; srv.counters.dropped++; srv.counters.overruns++;
        stage(srv.outbox, writeLost(srv, c.port), fam.id!, c, 0);
      }
    }
  }
  kick(srv.sched);
}

/** A notification for these clients only, by unicast (the current socket on each port; others skipped). */
export function notifyClients(handle: Server, fam: Family, cmd: number, clients: Iterable<SocketClient>, fill: Fill): void {
  const srv = handle as ServerCore;
  if (!srv.outbox.socket) return;
  let at = -2;
  for (const c of clients) {
    if (c.gone) continue; // (the flush checks the rest against the kernel's table before it sends)
    if (at === -2) at = writeNotification(srv, fam, cmd, fill);
    if (at >= 0) stage(srv.outbox, at, fam.id!, c, 0);
  }
  kick(srv.sched);
}

/** Whether `audience` lets `c` see a notification; one that throws (a family's bug) says no, counted. */
function allowed(srv: ServerCore, audience: (c: SocketClient) => boolean, c: SocketClient): boolean {
  try {
    return audience(c);
  } catch {
    srv.counters.audienceFailed++;
    return false;
  }
}

/** What writes a notification's attributes. */
export type Fill = (w: Writer) => void;

/**
 * Write a notification message (pid 0, seq 0, flags 0) into the staging buffer; returns its offset,
 * or -1 when `fill` threw (the partial message is dropped, the failure counted per format).
 */
function writeNotification(srv: ServerCore, fam: Family, cmd: number, fill: Fill, format = NATIVE_FORMAT): number {
  const w = srv.outbox.ev;
  const start = w.len;
  try {
    const at = genlStart(w, fam.id!, 0, 0, 0, cmd, fam.version);
    fill(w);
    msgEnd(w, at);
    return start;
  } catch (e) {
    trim(w, start);
    const key = `${fam.name}/${format}`;
    srv.encodeErrors[key] = (srv.encodeErrors[key] ?? 0) + 1;
    if (!srv.encodeWarned.has(key)) {
      srv.encodeWarned.add(key);
      process.emitWarning(`${fam.name}: notification encoder for format ${format} failed: ${(e as Error)?.message}`);
    }
    return -1;
  }
}

/** An NLMSG_OVERRUN telling one subscriber it missed one notification, staged like an event. */
function writeLost(srv: ServerCore, port: number): number {
  const start = srv.outbox.ev.len;
  putRaw(srv.outbox.ev, overrunMessage(port, 1, false));
  return start;
}
