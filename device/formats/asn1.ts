// ASN1: docs/formats/ras.asn1 (module AccelnlRas), DER-encoded with asn1js. DER follows from the
// module: every component is mandatory and in order, integers minimal (asn1js' fromBigInt),
// booleans 0xFF, definite lengths, and the CHOICE is an explicit [0] or [1].
import * as asn1 from 'asn1js';
import type { CounterRec, CountersRec, Doc, DocType, EventRec } from './record';
import { enumName, enumNum } from './record';

// asn1js' own number path is much faster than fromBigInt; it is exact below 2^31.
const int = (v: number | bigint) => (v < 0x80000000 ? new asn1.Integer({ value: Number(v) }) : asn1.Integer.fromBigInt(BigInt(v)));
const en = (k: 'block' | 'severity' | 'kind' | 'action', v: string) => new asn1.Enumerated({ value: enumNum(k, v) });

const eventDer = (e: EventRec) => new asn1.Sequence({
  value: [
    int(e.dev), int(e.seq), int(e.tsNs), en('kind', e.kind), en('block', e.block), en('severity', e.severity),
    int(e.errorId), new asn1.Utf8String({ value: e.errorName }), int(e.count), int(e.address),
    new asn1.OctetString({ valueHex: e.syndrome }), en('action', e.action), int(e.folded), int(e.firstTsNs), int(e.lastTsNs),
  ],
});

const counterDer = (c: CounterRec) => new asn1.Sequence({
  value: [en('block', c.block), en('severity', c.severity), int(c.volatileCount), int(c.aggregateCount)],
});

const countersDer = (c: CountersRec) => new asn1.Sequence({
  value: [
    int(c.dev), int(c.tsNs), int(c.cursor), new asn1.Sequence({ value: c.counters.map(counterDer) }),
    int(c.rowsActive), int(c.rowsPending), int(c.rmaThreshold), new asn1.Boolean({ value: c.rma }),
  ],
});

export function encodeAsn1(doc: Doc): Uint8Array {
  const alt = doc.type === 'counters' ? countersDer(doc.counters) : new asn1.Sequence({ value: doc.events.map(eventDer) });
  const choice = new asn1.Constructed({ idBlock: { tagClass: 3, tagNumber: doc.type === 'counters' ? 0 : 1 }, value: [alt] });
  return new Uint8Array(choice.toBER());
}

// Decoding: positional, each element type-checked, as a decoder generated from the module would.
type Node = asn1.AsnType;
function kids(n: Node, what: string, len?: number): Node[] {
  if (!(n instanceof asn1.Sequence) && !(n instanceof asn1.Constructed)) throw new TypeError(`asn1: ${what} is not a SEQUENCE`);
  const v = (n as asn1.Sequence).valueBlock.value as Node[];
  if (len !== undefined && v.length !== len) throw new TypeError(`asn1: ${what} has ${v.length} components, not ${len}`);
  return v;
}
function big(n: Node, what: string, max: bigint): bigint {
  if (!(n instanceof asn1.Integer)) throw new TypeError(`asn1: ${what} is not an INTEGER`);
  const v = n.toBigInt();
  if (v < 0n || v > max) throw new TypeError(`asn1: ${what} out of range`);
  return v;
}
const u64 = (n: Node, what: string) => big(n, what, 0xffffffffffffffffn);
const u32 = (n: Node, what: string) => Number(big(n, what, 0xffffffffn));
function enumOf<K extends 'block' | 'severity' | 'kind' | 'action'>(n: Node, k: K) {
  if (!(n instanceof asn1.Enumerated)) throw new TypeError(`asn1: ${k} is not ENUMERATED`);
  return enumName(k, n.valueBlock.valueDec);
}

function eventFrom(n: Node): EventRec {
  const v = kids(n, 'Event', 15);
  if (!(v[7] instanceof asn1.Utf8String)) throw new TypeError('asn1: error-name is not a UTF8String');
  if (!(v[10] instanceof asn1.OctetString)) throw new TypeError('asn1: syndrome is not an OCTET STRING');
  return {
    dev: u32(v[0], 'dev'), seq: u64(v[1], 'seq'), tsNs: u64(v[2], 'ts-ns'), kind: enumOf(v[3], 'kind'),
    block: enumOf(v[4], 'block'), severity: enumOf(v[5], 'severity'), errorId: u32(v[6], 'error-id'),
    errorName: v[7].valueBlock.value, count: u32(v[8], 'count'), address: u64(v[9], 'address'),
    syndrome: new Uint8Array(v[10].getValue()), action: enumOf(v[11], 'action'), folded: u32(v[12], 'folded'),
    firstTsNs: u64(v[13], 'first-ts-ns'), lastTsNs: u64(v[14], 'last-ts-ns'),
  };
}

export function decodeAsn1(b: Uint8Array, _type?: DocType): Doc {
  const r = asn1.fromBER(b);
  if (r.offset === -1 || r.offset !== b.byteLength) throw new TypeError(`asn1: not one DER value (${r.result.error || 'trailing bytes'})`);
  const top = r.result;
  if (top.idBlock.tagClass !== 3 || top.idBlock.tagNumber > 1) throw new TypeError('asn1: not a RasPayload CHOICE');
  const [alt] = kids(top, 'RasPayload', 1);
  if (top.idBlock.tagNumber === 1) return { type: 'events', events: kids(alt, 'events').map(eventFrom) };
  const v = kids(alt, 'Counters', 8);
  if (!(v[7] instanceof asn1.Boolean)) throw new TypeError('asn1: rma is not a BOOLEAN');
  return {
    type: 'counters',
    counters: {
      dev: u32(v[0], 'dev'), tsNs: u64(v[1], 'ts-ns'), cursor: u64(v[2], 'cursor'),
      counters: kids(v[3], 'counters').map((c) => {
        const x = kids(c, 'Counter', 4);
        return { block: enumOf(x[0], 'block'), severity: enumOf(x[1], 'severity'), volatileCount: u64(x[2], 'volatile-count'), aggregateCount: u64(x[3], 'aggregate-count') };
      }),
      rowsActive: u32(v[4], 'rows-active'), rowsPending: u32(v[5], 'rows-pending'), rmaThreshold: u32(v[6], 'rma-threshold'),
      rma: v[7].getValue(),
    },
  };
}
