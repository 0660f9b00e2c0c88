// A TypeScript client for the daemon: typed calls for the accel family, and event subscriptions
// that never lose a RAS event: kernel multicast when allowed (root), the subscribe op otherwise,
// and sequence-gap or overrun detection with read-back from the RAS log, in order, without duplicates.
import { type Client, type ClientOptions, type FamilyInfo, type Message, createClient } from '../genl';
import { readAttrs, writeAttrs } from '../genl/ynl';
import { type Doc, type EventRec, decodePayload } from './formats';
import { type Accel, CMD, type Event, type RasFormat, spec } from './gen/accel';

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
}

export interface Subscription {
  /** How events arrive: kernel multicast (root) or unicast through the subscribe op. */
  mode: 'multicast' | 'unicast';
  /** Highest RAS sequence number delivered, per device. */
  lastSeq: Map<number, bigint>;
  /** RAS events recovered from the log so far. */
  recovered: number;
  close(): Promise<void>;
}

export interface AccelClient {
  genl: Client;
  family: FamilyInfo;
  do(cmd: number, a?: Accel): Promise<Accel[]>;
  dump(cmd: number, a?: Accel): Promise<Accel[]>;
  subscribe(groups: string[], onEvent: (e: AccelEvent) => void, o?: SubscribeOptions): Promise<Subscription>;
  close(): void;
}

const CMD_NAME = new Map(spec.operations.map((o) => [o.value, o.name]));

export const decode = (m: Message): Accel => readAttrs<Accel>(m.v, m.attrs, m.end, spec, 'accel');

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

/** Connect and resolve the accel family (ACCEL_NL_PORT or 0x41434345 by default). */
export async function connectAccel(o: ClientOptions = {}): Promise<AccelClient> {
  let onOverrun: (() => void) | undefined;
  const genl = createClient({ rcvbuf: 4 << 20, ...o, onOverrun: () => { onOverrun?.(); o.onOverrun?.(); } });
  let family: FamilyInfo;
  try {
    family = await genl.resolve('accel');
  } catch (e) {
    genl.close();
    throw e;
  }
  const put = (a: Accel) => (w: Parameters<NonNullable<Parameters<Client['request']>[2]>['fill'] & object>[0]) => writeAttrs(w, spec, 'accel', a);
  const ac: AccelClient = {
    genl, family,
    async do(cmd, a = {}) { return (await genl.request(family.id, cmd, { fill: put(a) })).map(decode); },
    async dump(cmd, a = {}) {
      const out: Accel[] = [];
      for await (const m of genl.dump(family.id, cmd, { fill: put(a) })) out.push(decode(m));
      return out;
    },
    async subscribe(groups, onEvent, so = {}) {
      const lastSeq = new Map<number, bigint>();
      // Per-device chains keep delivery in order while a gap is being read back.
      const chains = new Map<number, Promise<void>>();
      const sub: Subscription = { mode: 'multicast', lastSeq, recovered: 0, close: async () => {} };
      const fmt = so.format;
      const deliverRas = async (dev: number, e: Event, attrs: Accel, record?: EventRec): Promise<void> => {
        const seq = BigInt(e.seq ?? 0);
        const last = lastSeq.get(dev);
        if (last !== undefined && seq <= last) return; // already delivered (recovered earlier)
        if (last !== undefined && seq > last + 1n) await readBack(dev, last + 1n, seq);
        lastSeq.set(dev, seq);
        onEvent({ cmd: 'ras-event-ntf', attrs, ...(record ? { record } : {}) });
      };
      /** Deliver log records [from, to) as recovered events. */
      const readBack = async (dev: number, from: bigint, to?: bigint): Promise<void> => {
        if (fmt) {
          const msgs = await ac.dump(CMD.RAS_LOG_GET, { devIndex: dev, cursor: from, format: fmt });
          for (const doc of decodeDocs(msgs, fmt, 'events')) {
            for (const record of doc.type === 'events' ? doc.events : []) {
              if (to !== undefined && record.seq >= to) return;
              if (record.seq <= (lastSeq.get(dev) ?? 0n)) continue;
              lastSeq.set(dev, record.seq);
              sub.recovered++;
              onEvent({ cmd: 'ras-event-ntf', attrs: { devIndex: dev, format: fmt }, record, recovered: true });
            }
          }
          return;
        }
        for (const m of await ac.dump(CMD.RAS_LOG_GET, { devIndex: dev, cursor: from })) {
          for (const e of m.event ?? []) {
            const seq = BigInt(e.seq ?? 0);
            if (to !== undefined && seq >= to) return;
            if (seq <= (lastSeq.get(dev) ?? 0n)) continue;
            lastSeq.set(dev, seq);
            sub.recovered++;
            onEvent({ cmd: 'ras-event-ntf', attrs: { devIndex: dev, event: [e] }, recovered: true });
          }
        }
      };
      const enqueue = (dev: number, f: () => Promise<void>): void => {
        const next = (chains.get(dev) ?? Promise.resolve()).then(f).catch(() => { /* next event retries */ });
        chains.set(dev, next);
      };
      const off = genl.onEvent((m) => {
        if (m.type !== family.id) return;
        const name = CMD_NAME.get(m.cmd) ?? String(m.cmd);
        const a = decode(m);
        if (name === 'ras-event-ntf' && a.devIndex !== undefined && a.event?.length) {
          const dev = a.devIndex;
          enqueue(dev, () => deliverRas(dev, a.event![0], a));
        } else if (name === 'ras-event-ntf' && a.devIndex !== undefined && a.payload && typeof a.format === 'string') {
          const dev = a.devIndex;
          const doc = decodePayload(a.format, a.payload, 'events');
          for (const r of doc.type === 'events' ? doc.events : []) enqueue(dev, () => deliverRas(dev, { seq: r.seq }, a, r));
        } else onEvent({ cmd: name, attrs: a });
      });
      // After an overrun anything may be missing: read every device's log past what we have.
      onOverrun = () => {
        for (const dev of lastSeq.keys()) enqueue(dev, () => readBack(dev, lastSeq.get(dev)! + 1n));
      };
      const ids = groups.map((g) => {
        const id = family.groups.get(g);
        if (id === undefined) throw new Error(`accel has no group "${g}" (${[...family.groups.keys()].join(', ')})`);
        return id;
      });
      // Baseline before joining: every record from each device's next sequence number on is
      // either received or read back, so nothing after this call can be missed.
      for (const d of await ac.dump(CMD.RAS_GET)) {
        if (d.devIndex !== undefined && d.cursor !== undefined) lastSeq.set(d.devIndex, BigInt(d.cursor) - 1n);
      }
      let joined = so.prefer !== 'unicast' && !fmt;
      if (joined) {
        try { for (const id of ids) genl.join(id); } catch { joined = false; }
      }
      if (!joined) {
        for (const g of groups) await ac.do(CMD.SUBSCRIBE, { group: g, ...(fmt && g === 'ras' ? { format: fmt } : {}) });
        sub.mode = 'unicast';
      }
      sub.close = async () => {
        off();
        onOverrun = undefined;
        if (sub.mode === 'multicast') for (const id of ids) { try { genl.leave(id); } catch { /* closed */ } }
        else for (const g of groups) await ac.do(CMD.UNSUBSCRIBE, { group: g }).catch(() => undefined);
      };
      return sub;
    },
    close() { genl.close(); },
  };
  return ac;
}
