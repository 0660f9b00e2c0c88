// RAS payload formats: one record model (record.ts), eight encodings, selected by the accel spec's
// ras-format enum (capability bit n = format n). See docs/formats.md.
import type { RasFormat } from '../gen/accel';
import { decodeAsn1, encodeAsn1 } from './asn1';
import { decodeCbor, encodeCbor } from './cbor';
import { decodeJson, encodeJson } from './json';
import { decodeKv32, encodeKv32 } from './kv32';
import { decodeNetlink, encodeNetlink } from './netlink';
import type { Doc, DocType } from './record';
import { decodeThrift, encodeThrift } from './thrift';

export * from './record';

export interface Codec {
  encode(doc: Doc): Uint8Array;
  /** Throws on malformed input. `type` is needed where the bytes do not say (netlink, grpc). */
  decode(b: Uint8Array, type?: DocType): Doc;
}

/**
 * A codec whose module is required on first use: the protobuf and grpc codecs boot
 * @bufbuild/protobuf's descriptor registry when loaded (about 15 % of a daemon's CPU time from
 * spawn to ready), which a process that never meets those formats need not pay.
 */
function lazy(load: () => Codec): Codec {
  let c: Codec | undefined;
  return {
    encode: (doc) => (c ??= load()).encode(doc),
    decode: (b, type) => (c ??= load()).decode(b, type),
  };
}

/* eslint-disable @typescript-eslint/no-require-imports */
const protobufCodec = lazy((): Codec => {
  const m = require('./protobuf') as typeof import('./protobuf');
  return { encode: m.encodeProtobuf, decode: m.decodeProtobuf };
});
const grpcCodec = lazy((): Codec => {
  const m = require('./grpc-wire') as typeof import('./grpc-wire');
  return { encode: m.encodeGrpc, decode: m.decodeGrpc };
});
/* eslint-enable @typescript-eslint/no-require-imports */

export const CODECS: Record<RasFormat, Codec> = {
  'key-val-32': { encode: encodeKv32, decode: decodeKv32 },
  'netlink': { encode: encodeNetlink, decode: decodeNetlink },
  'json': { encode: encodeJson, decode: decodeJson },
  'protobuf': protobufCodec,
  'grpc': grpcCodec,
  'thrift': { encode: encodeThrift, decode: decodeThrift },
  'cbor': { encode: encodeCbor, decode: decodeCbor },
  'asn1': { encode: encodeAsn1, decode: decodeAsn1 },
};

export const encodePayload = (f: RasFormat, doc: Doc): Uint8Array => CODECS[f].encode(doc);
export const decodePayload = (f: RasFormat, b: Uint8Array, type?: DocType): Doc => CODECS[f].decode(b, type);

/**
 * Largest payload fragment per message. An attribute holds at most 65531 bytes; this leaves room
 * for the headers and the other attributes so a message stays within a 64 KiB receive buffer.
 */
export const FRAGMENT = 65280;

/** Split a payload into fragments of at most FRAGMENT bytes (an empty payload is one empty fragment). */
export function fragments(b: Uint8Array, size = FRAGMENT): Uint8Array[] {
  if (b.length <= size) return [b];
  const out: Uint8Array[] = [];
  for (let at = 0; at < b.length; at += size) out.push(b.subarray(at, Math.min(b.length, at + size)));
  return out;
}

/** Events per payload document in a ras-log-get dump. */
export const LOG_BATCH = 256;
