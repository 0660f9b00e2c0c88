// GRPC as a payload: the body the gRPC service would send for the same question, i.e. protobuf
// messages each in gRPC's Length-Prefixed-Message framing (1 byte compressed flag = 0, 4 bytes
// big-endian length, the message). Counters: one Counters message (GetCounters' response);
// events: one Event message per record (StreamEvents' stream). The live service is at the endpoint
// caps-get reports; this form lets a netlink client reuse its gRPC message reader.
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { CountersSchema, EventSchema } from './gen/ras_pb';
import { countersMsg, countersRecOf, eventMsg, eventRecOf } from './protobuf';
import type { Doc, DocType } from './record';

function frames(msgs: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(msgs.reduce((n, m) => n + 5 + m.length, 0));
  const dv = new DataView(out.buffer);
  let at = 0;
  for (const m of msgs) {
    out[at] = 0;
    dv.setUint32(at + 1, m.length);
    out.set(m, at + 5);
    at += 5 + m.length;
  }
  return out;
}

export function encodeGrpc(doc: Doc): Uint8Array {
  if (doc.type === 'counters') return frames([toBinary(CountersSchema, countersMsg(doc.counters))]);
  return frames(doc.events.map((e) => toBinary(EventSchema, eventMsg(e))));
}

export function decodeGrpc(b: Uint8Array, type: DocType = 'events'): Doc {
  const msgs: Uint8Array[] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let at = 0; at < b.length;) {
    if (b.length - at < 5 || b[at] !== 0) throw new RangeError('grpc: bad or compressed frame');
    const n = dv.getUint32(at + 1);
    if (at + 5 + n > b.length) throw new RangeError('grpc: truncated frame');
    msgs.push(b.subarray(at + 5, at + 5 + n));
    at += 5 + n;
  }
  if (type === 'counters') {
    if (msgs.length !== 1) throw new RangeError('grpc: a counters payload is one message');
    return { type, counters: countersRecOf(fromBinary(CountersSchema, msgs[0])) };
  }
  return { type, events: msgs.map((m) => eventRecOf(fromBinary(EventSchema, m))) };
}
