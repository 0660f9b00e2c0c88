// Event subscriptions that never lose a RAS event: kernel multicast when allowed (root), the
// subscribe op otherwise; sequence gaps and overruns read back from the RAS log, in order, without
// duplicates; and the daemon followed across restarts: when it goes away and comes back (a new
// socket on the same port), the family is resolved again, the subscription made again, and what
// happened meanwhile read back from the log (persisted with --state-dir) by cursor.
import { GENL_ID_CTRL, type Message } from '../genl';
import { watchServer, type Watch } from '../genl/liveness';
import { type AccelClient, type AccelEvent, type SubscribeOptions, type Subscription, decode, decodeDocs } from './client-api';
import { decodePayload, type EventRec } from './formats';
import { type Accel, CMD, type Event, OP_NAMES } from './gen/accel';

/** Delivered sequence numbers remembered per device, with their timestamps, to recognise the log after a restart. */
const RECENT = 256;
/** A failed read-back is tried again after this long, doubling up to RETRY_MAX_MS. */
const RETRY_FIRST_MS = 200;
const RETRY_MAX_MS = 5000;
/** Logs whose board left its slot, whose place is remembered (the oldest forgotten first). */
const PARKED = 256;

/** A device's log: its board in its slot, as the daemon keeps it (undefined from a daemon that does not say). */
const logKey = (d: Accel): string | undefined => (d.serial === undefined || d.busAddr === undefined ? undefined : `${d.busAddr}@${d.serial}`);

export async function subscribe(ac: AccelClient, groups: string[], onEvent: (e: AccelEvent) => void, so: SubscribeOptions,
  setOverrun: (f: (() => void) | undefined) => void): Promise<Subscription> {
  const genl = ac.genl;
  const lastSeq = new Map<number, bigint>();
  /** seq -> timestamp of the last RECENT events delivered, per device (insertion order = seq order). */
  const recent = new Map<number, Map<bigint, bigint>>();
  // Per-device chains keep delivery in order while a gap is being read back.
  const chains = new Map<number, Promise<void>>();
  /**
   * Events received live and waiting in a chain, by device and sequence number. A read-back finds
   * them in the log too (the daemon notified them before its dump reply, which the socket then
   * queued behind them): they are delivered there, in order, as the live events they are, and only
   * what the socket never received is marked recovered.
   */
  const arrived = new Map<number, Map<bigint, AccelEvent>>();
  const arrive = (dev: number, seq: bigint, e: AccelEvent): void => {
    let a = arrived.get(dev);
    if (!a) arrived.set(dev, (a = new Map()));
    a.set(seq, e);
  };
  /** The live event with this sequence number, if one came (and is taken out: delivered once). */
  const takeArrived = (dev: number, seq: bigint): AccelEvent | undefined => {
    const a = arrived.get(dev);
    const e = a?.get(seq);
    if (e) a!.delete(seq);
    return e;
  };
  /**
   * Whose log each device index's memory is about, and what we remember of logs whose board left
   * its slot across a restart (a state dir shared between configurations). The daemon keeps a log
   * per board per slot (docs/reliability.md), so a log is `ADDR@SERIAL` (logKey): when its board
   * comes back to that slot, the log is resumed where we left it, not read again from its first
   * record.
   */
  const board = new Map<number, string>();
  const parked = new Map<string, { last: bigint; recent: Map<bigint, bigint> | undefined }>();
  const park = (dev: number): void => {
    const log = board.get(dev), last = lastSeq.get(dev);
    if (log === undefined || last === undefined) return;
    parked.delete(log);
    parked.set(log, { last, recent: recent.has(dev) ? new Map(recent.get(dev)) : undefined });
    if (parked.size > PARKED) parked.delete(parked.keys().next().value!);
  };
  /** Device `dev` takes up what we remember of log `log` (ADDR@SERIAL); false if nothing. */
  const takeUp = (dev: number, log: string): boolean => {
    const back = parked.get(log);
    if (!back) return false;
    parked.delete(log);
    lastSeq.set(dev, back.last);
    if (back.recent) recent.set(dev, back.recent); else recent.delete(dev);
    return true;
  };
  /**
   * Device `dev` holds log `log` (ADDR@SERIAL) now; the one that was there is parked. A log we knew
   * is resumed where we left it. One we never saw, in a slot we followed, is read from its first
   * record (at least once: we cannot tell what of it we missed). Logs are per slot, so a slot only
   * ever takes up its own: no order among slots matters.
   */
  const seat = (dev: number, log: string | undefined): void => {
    const was = board.get(dev);
    if (log === undefined || log === was) return;
    if (was !== undefined) park(dev);
    board.set(dev, log);
    if (takeUp(dev, log) || was === undefined) return;
    lastSeq.set(dev, 0n);
    recent.delete(dev);
  };
  const sub: Subscription = { mode: 'multicast', lastSeq, recovered: 0, connected: true, close: async () => {} };
  const fmt = so.format;
  const follow = so.reconnect ?? true;

  const delivered = (dev: number, seq: bigint, ts: number | bigint | undefined): void => {
    lastSeq.set(dev, seq);
    if (!follow || ts === undefined) return;
    let r = recent.get(dev);
    if (!r) recent.set(dev, (r = new Map()));
    r.set(seq, BigInt(ts));
    if (r.size > RECENT) r.delete(r.keys().next().value!);
  };
  const deliverRas = async (dev: number, e: Event, attrs: Accel, record?: EventRec): Promise<void> => {
    const seq = BigInt(e.seq ?? 0);
    const last = lastSeq.get(dev);
    if (last !== undefined && seq <= last) { takeArrived(dev, seq); return; } // already delivered (by a read-back)
    if (last !== undefined && seq > last + 1n) await readBack(dev, last + 1n, seq);
    takeArrived(dev, seq);
    delivered(dev, seq, record?.tsNs ?? e.tsNs);
    onEvent({ cmd: 'ras-event-ntf', attrs, ...(record ? { record } : {}) });
  };
  /** A log record at a read-back: the live event when the socket received it, else recovered. */
  const replay = (dev: number, seq: bigint, ts: number | bigint | undefined, recoveredEvent: () => AccelEvent): void => {
    const live = takeArrived(dev, seq);
    delivered(dev, seq, ts);
    if (live) { onEvent(live); return; }
    sub.recovered++;
    onEvent(recoveredEvent());
  };
  /** Deliver log records [from, to) as recovered events. */
  const readBack = async (dev: number, from: bigint, to?: bigint): Promise<void> => {
    if (fmt) {
      const msgs = await ac.dump(CMD.RAS_LOG_GET, { devIndex: dev, cursor: from, format: fmt });
      for (const doc of decodeDocs(msgs, fmt, 'events')) {
        for (const record of doc.type === 'events' ? doc.events : []) {
          if (to !== undefined && record.seq >= to) return;
          if (record.seq <= (lastSeq.get(dev) ?? 0n)) continue;
          replay(dev, record.seq, record.tsNs, () => ({ cmd: 'ras-event-ntf', attrs: { devIndex: dev, format: fmt }, record, recovered: true }));
        }
      }
      return;
    }
    for (const m of await ac.dump(CMD.RAS_LOG_GET, { devIndex: dev, cursor: from })) {
      for (const e of m.event ?? []) {
        const seq = BigInt(e.seq ?? 0);
        if (to !== undefined && seq >= to) return;
        if (seq <= (lastSeq.get(dev) ?? 0n)) continue;
        replay(dev, seq, e.tsNs, () => ({ cmd: 'ras-event-ntf', attrs: { devIndex: dev, event: [e] }, recovered: true }));
      }
    }
  };
  /**
   * After a restart: where this device's log and what we delivered agree. The newest record both
   * have with the same timestamp is the base; records after it are new to us (a log that kept
   * going continues after our last; one that lost its unsynced tail continues after its end; one
   * that is another log altogether, without --state-dir, starts from its first record).
   */
  const resume = async (dev: number, cursor: bigint): Promise<void> => {
    const last = lastSeq.get(dev);
    if (last === undefined) { lastSeq.set(dev, cursor - 1n); return; } // new to us: from now on
    const top = last < cursor - 1n ? last : cursor - 1n;
    const mine = recent.get(dev);
    let base = top;
    if (mine?.size && top > 0n) {
      const start = top - BigInt(RECENT) + 1n > 1n ? top - BigInt(RECENT) + 1n : 1n;
      base = 0n;
      for (const m of await ac.dump(CMD.RAS_LOG_GET, { devIndex: dev, cursor: start, limit: RECENT })) {
        for (const e of m.event ?? []) {
          const seq = BigInt(e.seq ?? 0);
          if (seq <= top && mine.get(seq) === BigInt(e.tsNs ?? -1)) base = seq;
        }
      }
      // Nothing we delivered is in a window that holds only older records than ours: trust the numbers.
      if (base === 0n && [...mine.keys()].every((s) => s > top)) base = top;
    }
    lastSeq.set(dev, base);
    if (mine) for (const s of [...mine.keys()]) if (s > base) mine.delete(s);
    await readBack(dev, base + 1n);
  };
  let closed = false;
  /**
   * A read-back that failed (the daemon busy, gone, or short of memory) is tried again, after
   * RETRY_FIRST_MS doubling up to RETRY_MAX_MS, from the last delivered event: a later event would
   * find the gap too, but after the last event of a storm none comes. While the connection is down
   * the retry waits for it to come back.
   */
  const retryMs = new Map<number, number>();
  const retryTimers = new Map<number, ReturnType<typeof setTimeout>>();
  const retry = (dev: number, again: () => Promise<void>): void => {
    if (closed || retryTimers.has(dev)) return;
    const ms = Math.min(RETRY_MAX_MS, retryMs.get(dev) ?? RETRY_FIRST_MS);
    retryMs.set(dev, ms * 2);
    const t = setTimeout(() => {
      retryTimers.delete(dev);
      if (closed || !lastSeq.has(dev)) return;
      if (!sub.connected) { retry(dev, again); return; }
      enqueue(dev, again, again);
    }, ms);
    t.unref?.();
    retryTimers.set(dev, t);
  };
  /** Run f after the device's earlier work; if it fails, `again` later (by default: read back what is missing). */
  const enqueue = (dev: number, f: () => Promise<void>,
    again: () => Promise<void> = () => readBack(dev, (lastSeq.get(dev) ?? 0n) + 1n)): void => {
    const next = (chains.get(dev) ?? Promise.resolve()).then(f).then(() => { retryMs.delete(dev); }, () => retry(dev, again));
    chains.set(dev, next);
  };
  const handle = (m: Message): void => {
    if (m.type !== ac.family.id) return;
    const name = OP_NAMES[m.cmd] ?? String(m.cmd);
    const a = decode(m);
    if (name === 'ras-event-ntf' && a.devIndex !== undefined && a.event?.length) {
      const dev = a.devIndex;
      arrive(dev, BigInt(a.event[0].seq ?? 0), { cmd: 'ras-event-ntf', attrs: a });
      enqueue(dev, () => deliverRas(dev, a.event![0], a));
    } else if (name === 'ras-event-ntf' && a.devIndex !== undefined && a.payload && typeof a.format === 'string') {
      const dev = a.devIndex;
      const doc = decodePayload(a.format, a.payload, 'events');
      for (const r of doc.type === 'events' ? doc.events : []) {
        arrive(dev, r.seq, { cmd: 'ras-event-ntf', attrs: a, record: r });
        enqueue(dev, () => deliverRas(dev, { seq: r.seq }, a, r));
      }
    } else if (a.devIndex !== undefined && lastSeq.has(a.devIndex)) {
      // After the device's RAS events before it, as the daemon sent them (a health or state
      // change follows the event that caused it), even while a gap of those is being read back.
      const e = { cmd: name, attrs: a };
      enqueue(a.devIndex, async () => { onEvent(e); }, async () => {});
    } else onEvent({ cmd: name, attrs: a });
  };
  /** While reconnecting, events wait here: they are handled after the gap has been read back. */
  let held: Message[] | undefined;
  const off = genl.onEvent((m) => {
    if (!held) handle(m);
    else if (m.type !== GENL_ID_CTRL) held.push(m);
  });
  // After an overrun anything may be missing: read every device's log past what we have.
  setOverrun(() => {
    for (const dev of lastSeq.keys()) enqueue(dev, () => readBack(dev, lastSeq.get(dev)! + 1n));
  });

  let ids: number[] = [];
  const groupIds = (): number[] => groups.map((g) => {
    const id = ac.family.groups.get(g);
    if (id === undefined) throw new Error(`accel has no group "${g}" (${[...ac.family.groups.keys()].join(', ')})`);
    return id;
  });
  /** Join or subscribe; the first time with a baseline, after a restart with a resume per device. */
  const establish = async (first: boolean): Promise<void> => {
    if (!first) ac.family = await genl.resolve('accel');
    const now = groupIds();
    // Baseline before joining: every record from each device's next sequence number on is either
    // received or read back, so nothing after this point can be missed.
    const devs = (await ac.dump(CMD.RAS_GET)).filter((d) => d.devIndex !== undefined && d.cursor !== undefined);
    if (first) {
      for (const d of devs) {
        lastSeq.set(d.devIndex!, BigInt(d.cursor!) - 1n);
        seat(d.devIndex!, logKey(d));
      }
      let joined = so.prefer !== 'unicast' && !fmt;
      if (joined) {
        try { for (const id of now) genl.join(id); } catch { joined = false; }
      }
      sub.mode = joined ? 'multicast' : 'unicast';
    } else if (sub.mode === 'multicast') {
      // Memberships are ours (the kernel keeps them across the daemon's restart); ids may have moved.
      for (const id of ids) if (!now.includes(id)) { try { genl.leave(id); } catch { /* gone */ } }
      for (const id of now) if (!ids.includes(id)) genl.join(id);
    }
    ids = now;
    if (sub.mode === 'unicast') {
      for (const g of groups) await ac.do(CMD.SUBSCRIBE, { group: g, ...(fmt && g === 'ras' ? { format: fmt } : {}) });
    }
    if (!first) {
      // Sequence numbers of the daemon that went away may come again in the new one's log.
      arrived.clear();
      const present = new Set(devs.map((d) => d.devIndex!));
      for (const dev of [...lastSeq.keys()]) {
        if (present.has(dev)) continue;
        park(dev);
        lastSeq.delete(dev); recent.delete(dev); arrived.delete(dev); board.delete(dev);
      }
      for (const d of devs) {
        seat(d.devIndex!, logKey(d));
        const again = (): Promise<void> => resume(d.devIndex!, BigInt(d.cursor!));
        enqueue(d.devIndex!, again, again);
      }
      await Promise.all([...chains.values()]);
    }
  };
  await establish(true);

  let watch: Watch | undefined;
  const reestablish = async (restarted: boolean): Promise<void> => {
    held ??= [];
    const before = sub.recovered;
    try {
      await establish(false);
    } catch {
      // Bound but not serving yet, or gone again: the watch tries again at its next look.
      watch?.lost();
      return;
    }
    if (closed) return;
    const waiting = held;
    held = undefined;
    for (const m of waiting) handle(m);
    await Promise.all([...chains.values()]);
    sub.connected = true;
    so.onConnection?.({ state: 'up', restarted, recovered: sub.recovered - before });
  };
  if (follow) {
    watch = watchServer(genl, {
      intervalMs: so.probeMs, family: 'accel',
      onDown: (reason) => {
        held ??= [];
        sub.connected = false;
        so.onConnection?.({ state: 'down', reason });
      },
      onUp: (restarted) => { void reestablish(restarted); },
    });
  }

  sub.close = async () => {
    closed = true;
    for (const t of retryTimers.values()) clearTimeout(t);
    retryTimers.clear();
    watch?.stop();
    off();
    setOverrun(undefined);
    if (sub.mode === 'multicast') for (const id of ids) { try { genl.leave(id); } catch { /* closed */ } }
    else for (const g of groups) await ac.do(CMD.UNSUBSCRIBE, { group: g }).catch(() => undefined);
  };
  return sub;
}
