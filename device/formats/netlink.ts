// NETLINK: the accel family's own attributes (docs/netlink/specs/accel.yaml) as the payload bytes,
// a TLV stream exactly as in a message after the genl header. Counters: dev-index, ts-ns, cursor,
// one `counter` nest per block x severity and a `memory` nest, in that order; events: one `event` nest each,
// with every event attribute present (the native notification leaves out the storm-only ones).
import { newWriter, view } from '../../attrs';
import { type Accel, type Event, readAccel, writeAccel } from '../gen/accel';
import type { Doc, DocType, EventRec } from './record';

const big = (v: number | bigint | undefined): bigint => BigInt(v ?? 0);
const num = (v: number | undefined): number => v ?? 0;

export const eventNest = (e: EventRec): Event => ({
  devIndex: e.dev, seq: e.seq, tsNs: e.tsNs, kind: e.kind, block: e.block, severity: e.severity, errorId: e.errorId,
  errorName: e.errorName, count: e.count, address: e.address, syndrome: e.syndrome, action: e.action, folded: e.folded,
  firstTsNs: e.firstTsNs, lastTsNs: e.lastTsNs,
});

export function encodeNetlink(doc: Doc): Uint8Array {
  const w = newWriter(doc.type === 'events' ? 64 + doc.events.length * 200 : 4096);
  if (doc.type === 'events') writeAccel(w, { event: doc.events.map(eventNest) });
  else {
    // The documented order (docs/formats/netlink.md), not attribute-id order, which writeAccel
    // follows within one call: so one call per attribute (or run of counter nests).
    const c = doc.counters;
    const parts: Accel[] = [
      { devIndex: c.dev }, { tsNs: c.tsNs }, { cursor: c.cursor },
      { counter: c.counters.map((x) => ({ block: x.block, severity: x.severity, volatile: x.volatileCount, aggregate: x.aggregateCount })) },
      { memory: { rowsActive: c.rowsActive, rowsPending: c.rowsPending, rmaThreshold: c.rmaThreshold, rma: c.rma ? 1 : 0 } },
    ];
    for (const part of parts) writeAccel(w, part);
  }
  return w.buf.slice(0, w.len);
}

function known<T>(v: T | number | undefined, what: string): T {
  if (v === undefined || typeof v === 'number') throw new TypeError(`netlink: ${what} missing or unknown`);
  return v;
}

/** Decoding needs the type: an empty event list and an empty snapshot are both zero bytes. */
export function decodeNetlink(b: Uint8Array, type: DocType = 'events'): Doc {
  const a = readAccel(view(b), 0, b.byteLength);
  if (type === 'events') {
    return {
      type, events: (a.event ?? []).map((e) => ({
        dev: num(e.devIndex), seq: big(e.seq), tsNs: big(e.tsNs), kind: known(e.kind, 'kind'), block: known(e.block, 'block'),
        severity: known(e.severity, 'severity'), errorId: num(e.errorId), errorName: e.errorName ?? '', count: num(e.count),
        address: big(e.address), syndrome: e.syndrome ?? new Uint8Array(0), action: known(e.action, 'action'),
        folded: num(e.folded), firstTsNs: big(e.firstTsNs), lastTsNs: big(e.lastTsNs),
      })),
    };
  }
  const m = a.memory ?? {};
  return {
    type,
    counters: {
      dev: num(a.devIndex), tsNs: big(a.tsNs), cursor: big(a.cursor),
      counters: (a.counter ?? []).map((x) => ({
        block: known(x.block, 'block'), severity: known(x.severity, 'severity'), volatileCount: big(x.volatile), aggregateCount: big(x.aggregate),
      })),
      rowsActive: num(m.rowsActive), rowsPending: num(m.rowsPending), rmaThreshold: num(m.rmaThreshold), rma: !!m.rma,
    },
  };
}
