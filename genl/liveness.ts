// Whether the server a client talks to is still there, and whether it is still the same one. A
// port number is not an identity: a daemon that was SIGKILLed and started again binds the same
// port, and every unicast subscription the old one held is gone. So the watch compares the
// socket bound at the server's port (sock_diag: inode and cookie, which the kernel never reuses
// while the sockets live) with the one first seen, every `intervalMs`; this works for any user and
// needs nothing from the server. A root client also hears nlctrl's DELFAMILY/NEWFAMILY on the
// "notify" group at once (the daemon sends them at a clean stop and at start), as a kernel
// module's unload and load are heard.
import { CTRL_ATTR, CTRL_CMD, GENL_ID_CTRL } from './consts';
import { getString, walk } from '../attrs';
import { type Client, NetlinkError } from './client';
import { type NetlinkSocket, querySockets } from './sockdiag';
import { NETLINK_USERSOCK } from './socket';

export interface WatchOptions {
  /** How often the server's socket is looked up (default 500 ms). */
  intervalMs?: number;
  /** The family whose nlctrl notifications mean "gone" and "back" (all families when absent). */
  family?: string;
  /** The server went away (its socket is gone, or nlctrl said DELFAMILY). */
  onDown: (reason: string) => void;
  /** A server is bound at the port again; `restarted` when it is another socket than before. */
  onUp: (restarted: boolean) => void;
}

export interface Watch {
  readonly up: boolean;
  /** Look now instead of at the next tick (after a failed request, say). */
  check(): void;
  /** The server seen is not usable yet (bound, not serving): report it as back again later. */
  lost(): void;
  stop(): void;
}

type Ident = Pick<NetlinkSocket, 'inode' | 'cookie'>;
const same = (a: Ident, b: Ident): boolean => a.inode === b.inode && (a.cookie === undefined || b.cookie === undefined || a.cookie === b.cookie);

/** The socket bound at `port` now: found, absent, or unknown (no sock_diag and no /proc). */
function lookup(port: number): Ident | null | undefined {
  const q = querySockets(NETLINK_USERSOCK);
  if (!q) return undefined;
  const s = q.table.get(port);
  return s ? { inode: s.inode, cookie: s.cookie } : null;
}

export function watchServer(c: Client, o: WatchOptions): Watch {
  let up = true;
  const first = lookup(c.serverPort);
  let seen = first ?? undefined;
  // A server that is not a kernel socket (the in-process hub) is not in sock_diag: only nlctrl's
  // notifications tell about it. Without sock_diag and /proc at all, nlctrl is asked each tick.
  const visible = first !== null;
  let probing = false;
  const down = (reason: string): void => {
    if (!up) return;
    up = false;
    o.onDown(reason);
  };
  const back = (restarted: boolean): void => {
    if (up) return;
    up = true;
    o.onUp(restarted);
  };
  const check = (): void => {
    if (!visible) return;
    const now = lookup(c.serverPort);
    if (now === undefined) { probe(); return; }
    if (now === null) { down(`nothing is bound at netlink port 0x${c.serverPort.toString(16)}`); return; }
    const restarted = seen !== undefined && !same(seen, now);
    seen = now;
    if (restarted && up) { down('the daemon was restarted'); back(true); return; }
    back(restarted);
  };
  // Without sock_diag or /proc: ask nlctrl. A restart between two probes goes unnoticed here.
  const probe = (): void => {
    if (probing) return;
    probing = true;
    c.resolve(o.family ?? 'nlctrl')
      .then(() => back(false), (e: unknown) => { if (e instanceof NetlinkError) down(e.message); })
      .finally(() => { probing = false; });
  };
  // nlctrl's notify group, where this process may join it (root): heard at once.
  let joined = false;
  try { c.join(GENL_ID_CTRL); joined = true; } catch { /* not allowed: the timer alone */ }
  const off = c.onEvent((m) => {
    if (m.type !== GENL_ID_CTRL || (m.cmd !== CTRL_CMD.DELFAMILY && m.cmd !== CTRL_CMD.NEWFAMILY)) return;
    let name = '';
    walk(m.v, m.attrs, m.end, (at, t) => { if (t === CTRL_ATTR.FAMILY_NAME) name = getString(m.v, at); });
    if (o.family && name !== o.family) return;
    if (m.cmd === CTRL_CMD.DELFAMILY) down(`the daemon unregistered ${name} (nlctrl DELFAMILY)`);
    else if (!up) check(); // NEWFAMILY: the socket is there; check() records which one
    else { const now = lookup(c.serverPort); if (now && seen && !same(seen, now)) { seen = now; down('the daemon was restarted'); back(true); } }
  });
  const timer = setInterval(check, o.intervalMs ?? 500);
  timer.unref?.();
  return {
    get up() { return up; },
    check,
    lost() { up = false; },
    stop() {
      clearInterval(timer);
      off();
      if (joined) { try { c.leave(GENL_ID_CTRL); } catch { /* closed */ } }
    },
  };
}
