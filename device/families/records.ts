// Each device's dev-get record, encoded once and reused until the device changes (Device.changes,
// bumped by every change of a field the record shows, telemetry ticks included). A dump then
// copies bytes per device instead of building an object and encoding it, and a record that did
// not fit one datagram is copied again into the next, not encoded again (appended with attrs' putRaw).
import { type Writer, newWriter } from '../../attrs';
import type { Device } from '../model';

interface Cached { changes: number; bytes: Uint8Array }

const cache = new WeakMap<Device, Cached>();
const scratch = newWriter(2048);

/** The record's attribute bytes (position-independent: 4-aligned TLVs, no 64-bit pad attributes). Shared: do not modify. */
export function encodedRecord(d: Device, encode: (w: Writer, d: Device) => void): Uint8Array {
  const hit = cache.get(d);
  if (hit && hit.changes === d.changes) return hit.bytes;
  scratch.len = 0;
  encode(scratch, d);
  const bytes = scratch.buf.slice(0, scratch.len);
  if (hit) { hit.changes = d.changes; hit.bytes = bytes; } else cache.set(d, { changes: d.changes, bytes });
  return bytes;
}
