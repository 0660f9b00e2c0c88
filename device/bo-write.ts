// A BO upload as bo-write requests. An attribute holds under 64 KiB, so a request carries `data`
// and then `more-data` parts, each at most the spec's max-len (65000), three parts a request: a
// datagram of 195,056 bytes, within the 212,960 that a socket with the default send buffer
// (net.core.wmem_default 212992, less 32) may send, and within the server's 256 KiB receive slot.
// One datagram instead of three saves two wake-ups of the daemon and two answers.
import { findSet } from '../genl/ynl/model';
import { type Accel, spec } from './gen/accel';

const maxLen = (name: string): number => Number(findSet(spec, 'accel')!.attributes.find((a) => a.name === name)!.checks!.maxLen);

/** Bytes per data (or more-data) attribute: the spec's max-len. */
export const BO_WRITE_PART = maxLen('data');
/** Parts per bo-write request, and so the bytes of data one request carries. */
export const BO_WRITE_PARTS = 3;
export const BO_WRITE_MAX = BO_WRITE_PART * BO_WRITE_PARTS;

/** The bo-write requests that put `data` into BO `boHandle` from byte `offset`, in order (none for no data). */
export function boWrites(boHandle: number, data: Uint8Array, offset = 0): Accel[] {
  const out: Accel[] = [];
  for (let at = 0; at < data.length; at += BO_WRITE_MAX) {
    const parts: Uint8Array[] = [];
    const end = Math.min(at + BO_WRITE_MAX, data.length);
    for (let p = at; p < end; p += BO_WRITE_PART) parts.push(data.subarray(p, Math.min(p + BO_WRITE_PART, end)));
    const [first, ...moreData] = parts;
    out.push(moreData.length ? { boHandle, boOffset: offset + at, data: first, moreData } : { boHandle, boOffset: offset + at, data: first });
  }
  return out;
}
