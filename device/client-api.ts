// What the accel client hands out (its interfaces) and how its replies decode: shared by
// client.ts and subscribe.ts, so that neither has to import the other back.
import type { Client, FamilyInfo, Message } from '../genl';
import { type Doc, type EventRec, decodePayload } from './formats';
import { type Accel, type RasFormat, readAccel } from './gen/accel';

export interface AccelEvent {
  /** The notification's command name, e.g. 'ras-event-ntf', 'dev-state-ntf'. */
  cmd: string;
  attrs: Accel;
  /** True for RAS events read back from the log after a gap or an overrun. */
  recovered?: boolean;
  /** With a subscription format: the RAS record, decoded from the payload. */
  record?: EventRec;
}

export interface SubscribeOptions {
  prefer?: 'multicast' | 'unicast';
  /** RAS events as payloads in this format (unicast only: kernel multicast carries netlink). */
  format?: RasFormat;
  /**
   * Follow the daemon across restarts (default on): notice that it went away (its socket is gone,
   * or nlctrl said DELFAMILY) and came back, then re-resolve, resubscribe and replay the gap from
   * the RAS log. Off, a dead daemon simply sends nothing more.
   */
  reconnect?: boolean;
  /** How often the daemon's socket is looked up, in ms (default 500). */
  probeMs?: number;
  /** The daemon went away, or the subscription is back (with how many events were read back). */
  onConnection?: (e: ConnectionEvent) => void;
}

export type ConnectionEvent =
  | { state: 'down'; reason: string }
  | { state: 'up'; restarted: boolean; recovered: number };

export interface Subscription {
  /** How events arrive: kernel multicast (root) or unicast through the subscribe op. */
  mode: 'multicast' | 'unicast';
  /** Highest RAS sequence number delivered, per device. */
  lastSeq: Map<number, bigint>;
  /** RAS events recovered from the log so far. */
  recovered: number;
  /** False from the moment the daemon is seen gone until the subscription is re-established. */
  connected: boolean;
  close(): Promise<void>;
}

export interface AccelClient {
  genl: Client;
  /** The accel family as last resolved (re-resolved when a subscription follows a restart). */
  family: FamilyInfo;
  /**
   * One request, its replies decoded. CMD.JOB_WAIT waits as long as the job runs (or a.timeoutMs,
   * then ETIMEDOUT), whatever the client's own timeout: it is sent in slices of at most 2 s.
   */
  do(cmd: number, a?: Accel): Promise<Accel[]>;
  dump(cmd: number, a?: Accel): Promise<Accel[]>;
  subscribe(groups: string[], onEvent: (e: AccelEvent) => void, o?: SubscribeOptions): Promise<Subscription>;
  close(): void;
}

/** A reply or notification's attributes, decoded as the accel set. */
export const decode = (m: Message): Accel => readAccel(m.v, m.attrs, m.end);

/**
 * The payload documents of a formatted reply or dump: fragments are concatenated until a message
 * without payload-more (docs/formats.md).
 */
export function reassemble(msgs: Accel[]): Uint8Array[] {
  const docs: Uint8Array[] = [];
  let parts: Uint8Array[] = [];
  for (const m of msgs) {
    if (!m.payload) continue;
    parts.push(m.payload);
    if (m.payloadMore) continue;
    docs.push(parts.length === 1 ? parts[0] : Buffer.concat(parts));
    parts = [];
  }
  if (parts.length) throw new Error('payload ends with payload-more set: the dump was cut short');
  return docs;
}

/** Decode every payload document of a formatted ras-get or ras-log-get answer. */
export const decodeDocs = (msgs: Accel[], f: RasFormat, type: Doc['type']): Doc[] =>
  reassemble(msgs).map((b) => decodePayload(f, b, type));
