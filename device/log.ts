// The per-device RAS event log: a bounded ring with a 64-bit sequence number per record, read back
// from a cursor so that a subscriber that missed events can catch up in order, without duplicates.
import { ACTIONS, type Action, BLOCKS, type Block, EVENT_KINDS, type EventKind, SEVERITIES, type Severity } from './enums';

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
  /** The records, column by column (see Ring); allocated with the first record (idle devices hold none). */
  ring: Ring | undefined;
  capacity: number;
  /** Sequence number the next record gets; the first record is 1. */
  next: bigint;
}

/**
 * The ring in columns, slot = seq % capacity. A log of event objects kept up to a million
 * objects with five BigInts each alive: every record was promoted to the old generation, and
 * garbage collection took a fifth of the daemon in an event storm. Typed arrays hold no objects;
 * records are built when read back (which is rare: a subscriber that missed some, a log dump).
 * The columns grow by doubling up to the capacity, so a log that holds few records stays small.
 */
interface Ring {
  /** 0: empty slot. Sequence numbers stay below 2^53. */
  seq: Float64Array;
  dev: Uint32Array;
  tsNs: BigUint64Array;
  address: BigUint64Array;
  firstTsNs: BigUint64Array;
  lastTsNs: BigUint64Array;
  /** Indices into EVENT_KINDS, BLOCKS, SEVERITIES, ACTIONS. */
  kind: Uint8Array;
  block: Uint8Array;
  severity: Uint8Array;
  action: Uint8Array;
  errorId: Uint32Array;
  count: Uint32Array;
  folded: Uint32Array;
  /** Index into `names` (error names are the block's in practice; any string is kept). */
  name: Uint16Array;
  names: string[];
  /** Non-empty syndromes only, by slot (most records have none). */
  syndromes: Map<number, Uint8Array>;
}

const EMPTY = new Uint8Array(0);
const FIRST_SIZE = 256;

export const newLog = (capacity: number, next = 1n): EventLog => ({ ring: undefined, capacity, next });

function newRing(size: number): Ring {
  return {
    seq: new Float64Array(size), dev: new Uint32Array(size), tsNs: new BigUint64Array(size), address: new BigUint64Array(size),
    firstTsNs: new BigUint64Array(size), lastTsNs: new BigUint64Array(size), kind: new Uint8Array(size),
    block: new Uint8Array(size), severity: new Uint8Array(size), action: new Uint8Array(size), errorId: new Uint32Array(size),
    count: new Uint32Array(size), folded: new Uint32Array(size), name: new Uint16Array(size), names: [], syndromes: new Map(),
  };
}

/** The ring with room for slot `i`: grown by doubling (capped at the capacity), contents kept. */
function ringFor(log: EventLog, i: number): Ring {
  const r = log.ring;
  if (r && i < r.seq.length) return r;
  let size = r ? r.seq.length : Math.min(FIRST_SIZE, log.capacity);
  while (size <= i) size = Math.min(size * 2, log.capacity);
  const g = newRing(size);
  if (r) {
    for (const k of ['seq', 'dev', 'tsNs', 'address', 'firstTsNs', 'lastTsNs', 'kind', 'block', 'severity', 'action', 'errorId', 'count', 'folded', 'name'] as const) {
      (g[k] as { set(a: ArrayLike<unknown>): void }).set(r[k] as ArrayLike<unknown>);
    }
    g.names = r.names;
    g.syndromes = r.syndromes;
  }
  log.ring = g;
  return g;
}

const indexIn = (list: readonly string[], v: string): number => { const i = list.indexOf(v); return i < 0 ? 0 : i; };

/** Store a record at its sequence number's slot (append, and restoring from disk). */
export function put(log: EventLog, rec: RasEvent): void {
  const i = Number(rec.seq) % log.capacity; // exact: sequence numbers stay below 2^53 in practice
  const r = ringFor(log, i);
  r.seq[i] = Number(rec.seq);
  r.dev[i] = rec.dev;
  r.tsNs[i] = rec.tsNs;
  r.address[i] = rec.address;
  r.firstTsNs[i] = rec.firstTsNs;
  r.lastTsNs[i] = rec.lastTsNs;
  r.kind[i] = indexIn(EVENT_KINDS, rec.kind);
  r.block[i] = indexIn(BLOCKS, rec.block);
  r.severity[i] = indexIn(SEVERITIES, rec.severity);
  r.action[i] = indexIn(ACTIONS, rec.action);
  r.errorId[i] = rec.errorId;
  r.count[i] = rec.count;
  r.folded[i] = rec.folded;
  let n = r.names.indexOf(rec.errorName);
  if (n < 0) { n = r.names.length; r.names.push(rec.errorName); }
  r.name[i] = n;
  if (rec.syndrome.length) r.syndromes.set(i, rec.syndrome);
  else r.syndromes.delete(i);
}

/** The record in slot `i` of the ring, as an object (built now: the ring keeps none). */
function recordAt(r: Ring, i: number): RasEvent {
  return {
    dev: r.dev[i], seq: BigInt(r.seq[i]), tsNs: r.tsNs[i], kind: EVENT_KINDS[r.kind[i]], block: BLOCKS[r.block[i]],
    severity: SEVERITIES[r.severity[i]], errorId: r.errorId[i], errorName: r.names[r.name[i]], count: r.count[i],
    address: r.address[i], syndrome: r.syndromes.get(i) ?? EMPTY, action: ACTIONS[r.action[i]], folded: r.folded[i],
    firstTsNs: r.firstTsNs[i], lastTsNs: r.lastTsNs[i],
  };
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
  const r = log.ring;
  if (!r) return { events, lost };
  // Plain numbers in the loop (sequence numbers stay below 2^53): BigInt steps per slot cost more
  // than the rest of a log dump's reading.
  const end = Number(log.next);
  for (let s = Number(cursor < first ? first : cursor); s < end && events.length < limit; s++) {
    const i = s % log.capacity;
    if (i < r.seq.length && r.seq[i] === s) events.push(recordAt(r, i));
  }
  return { events, lost };
}

/** Every record the ring holds, oldest first (for the snapshot). */
export function allRecords(log: EventLog): RasEvent[] {
  return readFrom(log, oldest(log)).events;
}
