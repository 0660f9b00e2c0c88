// PROTOBUF: docs/formats/ras.proto, with @bufbuild/protobuf (the conformance-clean runtime). The
// message code in gen/ras_pb.ts is generated from the shipped .proto by protoc-gen-es
// (`npm run gen:proto`) and committed, so neither the daemon nor CI needs a code generator.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  type Counters, CountersSchema, type Event, EventSchema, EventsSchema, PayloadSchema,
} from './gen/ras_pb';
import type { CountersRec, Doc, DocType, EventRec } from './record';
import { enumName, enumNum } from './record';

export const eventMsg = (e: EventRec): Event => create(EventSchema, {
  dev: e.dev, seq: e.seq, tsNs: e.tsNs, kind: enumNum('kind', e.kind), block: enumNum('block', e.block),
  severity: enumNum('severity', e.severity), errorId: e.errorId, errorName: e.errorName, count: e.count,
  address: e.address, syndrome: e.syndrome, action: enumNum('action', e.action), folded: e.folded,
  firstTsNs: e.firstTsNs, lastTsNs: e.lastTsNs,
});

export const countersMsg = (c: CountersRec): Counters => create(CountersSchema, {
  dev: c.dev, tsNs: c.tsNs, cursor: c.cursor,
  counters: c.counters.map((x) => ({
    block: enumNum('block', x.block), severity: enumNum('severity', x.severity),
    volatileCount: x.volatileCount, aggregateCount: x.aggregateCount,
  })),
  rowsActive: c.rowsActive, rowsPending: c.rowsPending, rmaThreshold: c.rmaThreshold, rma: c.rma,
});

export const eventRecOf = (m: Event): EventRec => ({
  dev: m.dev, seq: m.seq, tsNs: m.tsNs, kind: enumName('kind', m.kind), block: enumName('block', m.block),
  severity: enumName('severity', m.severity), errorId: m.errorId, errorName: m.errorName, count: m.count,
  address: m.address, syndrome: m.syndrome, action: enumName('action', m.action), folded: m.folded,
  firstTsNs: m.firstTsNs, lastTsNs: m.lastTsNs,
});

export const countersRecOf = (m: Counters): CountersRec => ({
  dev: m.dev, tsNs: m.tsNs, cursor: m.cursor,
  counters: m.counters.map((x) => ({
    block: enumName('block', x.block), severity: enumName('severity', x.severity),
    volatileCount: x.volatileCount, aggregateCount: x.aggregateCount,
  })),
  rowsActive: m.rowsActive, rowsPending: m.rowsPending, rmaThreshold: m.rmaThreshold, rma: m.rma,
});

export function encodeProtobuf(doc: Doc): Uint8Array {
  const body = doc.type === 'counters'
    ? { case: 'counters' as const, value: countersMsg(doc.counters) }
    : { case: 'events' as const, value: create(EventsSchema, { events: doc.events.map(eventMsg) }) };
  return toBinary(PayloadSchema, create(PayloadSchema, { body }));
}

export function decodeProtobuf(b: Uint8Array, _type?: DocType): Doc {
  const p = fromBinary(PayloadSchema, b);
  switch (p.body.case) {
    case 'counters': return { type: 'counters', counters: countersRecOf(p.body.value) };
    case 'events': return { type: 'events', events: p.body.value.events.map(eventRecOf) };
    default: throw new TypeError('protobuf: Payload has no body');
  }
}

export { CountersSchema, EventSchema };
