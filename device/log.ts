// The per-device RAS event log: a bounded ring with a 64-bit sequence number per record, read back
// from a cursor so that a subscriber that missed events can catch up in order, without duplicates.
import type { Action, Block, EventKind, Severity } from './enums';

export interface RasEvent {
  dev: number;
  seq: bigint;
  tsNs: bigint;
  kind: EventKind;
  block: Block;
  severity: Severity;
  errorId: number;
  errorName: string;
  count: number;
  address: bigint;
  syndrome: Uint8Array;
  action: Action;
  /** storm-overflow records: how many events were folded, and when the first and last happened. */
  folded: number;
  firstTsNs: bigint;
  lastTsNs: bigint;
}

export interface EventLog {
  /** Record seq lives at seq % capacity; allocated with the first record (idle devices hold none). */
  ring: (RasEvent | undefined)[];
  capacity: number;
  /** Sequence number the next record gets; the first record is 1. */
  next: bigint;
}

export const newLog = (capacity: number, next = 1n): EventLog => ({ ring: [], capacity, next });

/** Store a record at its sequence number's slot (append, and restoring from disk). */
export function put(log: EventLog, rec: RasEvent): void {
  if (log.ring.length === 0) log.ring = new Array(log.capacity);
  log.ring[Number(rec.seq) % log.capacity] = rec; // exact: sequence numbers stay below 2^53 in practice
}

/** Append a record, giving it the next sequence number. */
export function append(log: EventLog, e: Omit<RasEvent, 'seq'>): RasEvent {
  const rec = e as RasEvent;
  rec.seq = log.next++;
  put(log, rec);
  return rec;
}

/** The oldest sequence number still held (== next when empty). */
export function oldest(log: EventLog): bigint {
  const held = BigInt(log.capacity);
  const first = log.next - held;
  return first > 1n ? first : 1n;
}

/**
 * Records with seq >= cursor, oldest first, at most `limit`. `lost` counts the records between the
 * cursor and the oldest one still held, which the ring has overwritten.
 */
export function readFrom(log: EventLog, cursor: bigint, limit = Infinity): { events: RasEvent[]; lost: bigint } {
  const first = oldest(log);
  const lost = cursor < first ? first - (cursor < 1n ? 1n : cursor) : 0n;
  const events: RasEvent[] = [];
  if (!log.ring.length) return { events, lost };
  // Plain numbers in the loop (sequence numbers stay below 2^53): BigInt steps per slot cost more
  // than the rest of a log dump's reading.
  const end = Number(log.next);
  for (let s = Number(cursor < first ? first : cursor); s < end && events.length < limit; s++) {
    const e = log.ring[s % log.capacity];
    if (e && Number(e.seq) === s) events.push(e);
  }
  return { events, lost };
}
