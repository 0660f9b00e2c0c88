// Unicast subscriptions: which clients get a group's notifications by unicast (USERSOCK groups
// need CAP_NET_ADMIN to join, so unprivileged clients subscribe through a family op instead), and
// in which format each asked for them. A format is a family's number (>= 0; NATIVE_FORMAT, -1, is the group's own
// netlink encoding); the server fans a notification out once per format that has subscribers.
// One subscription per client and group: subscribing again replaces the format.
import type { SocketClient } from './clients';

/** The group's own encoding (what multicast members get). */
export const NATIVE_FORMAT = -1;

declare const SUBSCRIPTIONS: unique symbol;
/** A server's unicast subscriptions. Opaque: read and changed only through this module's functions. */
export interface Subscriptions { readonly [SUBSCRIPTIONS]: true }

interface State {
  /** group id -> client -> format. */
  readonly byGroup: Map<number, Map<SocketClient, number>>;
}

const state = (s: Subscriptions): State => s as unknown as State;

export const newSubscriptions = (): Subscriptions => ({ byGroup: new Map() }) as State as unknown as Subscriptions;

export function subscribe(h: Subscriptions, c: SocketClient, group: number, format = NATIVE_FORMAT): void {
  const s = state(h);
  let m = s.byGroup.get(group);
  if (!m) s.byGroup.set(group, (m = new Map()));
  m.set(c, format);
}

/** True when `c` was subscribed. */
export function unsubscribe(h: Subscriptions, c: SocketClient, group: number): boolean {
  const s = state(h);
  const m = s.byGroup.get(group);
  if (!m?.delete(c)) return false;
  if (!m.size) s.byGroup.delete(group);
  return true;
}

/** Every subscription of a client that went away. */
export function forgetClient(s: Subscriptions, c: SocketClient): void {
  for (const [g, m] of state(s).byGroup) if (m.delete(c) && !m.size) state(s).byGroup.delete(g);
}

/** The subscribers of a group with their formats (empty when none). */
export function subscribersOf(s: Subscriptions, group: number): ReadonlyMap<SocketClient, number> {
  return state(s).byGroup.get(group) ?? EMPTY;
}

const EMPTY: ReadonlyMap<SocketClient, number> = new Map();

/** The format `c` asked for on `group`, or undefined when it is not subscribed. */
export const formatOf = (s: Subscriptions, c: SocketClient, group: number): number | undefined => state(s).byGroup.get(group)?.get(c);

/** Subscribers per group id (for stats). */
export function subscriberCounts(s: Subscriptions): Record<number, number> {
  return Object.fromEntries([...state(s).byGroup].map(([g, m]) => [g, m.size]));
}

/** The subscribers of `group` grouped by format, in subscription order within each. */
export function byFormat(s: Subscriptions, group: number): Map<number, SocketClient[]> {
  const out = new Map<number, SocketClient[]>();
  for (const [c, f] of subscribersOf(s, group)) {
    let l = out.get(f);
    if (!l) out.set(f, (l = []));
    l.push(c);
  }
  return out;
}
