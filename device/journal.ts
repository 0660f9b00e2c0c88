// A crash-safe append-only journal: each record is [u32 length][u32 crc32][payload], appended with
// one write and, when asked, fsync'ed before the caller acknowledges anything. Recovery reads
// records until the first torn or corrupt one, truncates a torn tail, and sets aside a file whose
// damage is not at the tail, reporting either way. It never throws on what it finds on disk.
import * as fs from 'fs';
import * as path from 'path';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3), as zlib computes it. */
export function crc32(b: Uint8Array, start = 0, end = b.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface Journal {
  file: string;
  fd: number;
  size: number;
}

export interface Recovery {
  records: Uint8Array[];
  /** Bytes cut off a torn tail (a crash mid-append), 0 if none. */
  truncated: number;
  /** Where a damaged file was moved, when the damage was not a torn tail. */
  setAside?: string;
  problems: string[];
}

const HDR = 8;
const MAX_RECORD = 16 << 20;

/** Read every intact record; decide what to do with damage. */
export function recover(file: string): Recovery {
  const r: Recovery = { records: [], truncated: 0, problems: [] };
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') r.problems.push(`cannot read ${file}: ${(e as Error).message}`);
    return r;
  }
  let at = 0;
  while (at < buf.length) {
    const left = buf.length - at;
    const len = left >= 4 ? buf.readUInt32LE(at) : -1;
    if (left < HDR || len < 0 || len > MAX_RECORD || left < HDR + len) {
      // Not enough bytes for what the header promises: a torn final append. Cut it.
      r.truncated = left;
      r.problems.push(`torn record at byte ${at} (${left} bytes) truncated`);
      try { fs.truncateSync(file, at); } catch (e) { r.problems.push(`truncate failed: ${(e as Error).message}`); }
      break;
    }
    const crc = buf.readUInt32LE(at + 4);
    if (crc32(buf, at + HDR, at + HDR + len) !== crc) {
      if (at + HDR + len === buf.length) {
        r.truncated = left;
        r.problems.push(`corrupt final record at byte ${at} truncated`);
        try { fs.truncateSync(file, at); } catch (e) { r.problems.push(`truncate failed: ${(e as Error).message}`); }
      } else {
        // Damage in the middle: keep what came before, move the file aside for inspection.
        const aside = `${file}.corrupt-${Date.now()}`;
        r.problems.push(`corrupt record at byte ${at}; file set aside as ${path.basename(aside)}`);
        try {
          fs.renameSync(file, aside);
          r.setAside = aside;
        } catch (e) { r.problems.push(`set aside failed: ${(e as Error).message}`); }
      }
      break;
    }
    r.records.push(new Uint8Array(buf.buffer, buf.byteOffset + at + HDR, len));
    at += HDR + len;
  }
  return r;
}

export function openJournal(file: string): Journal {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, 'a');
  return { file, fd, size: fs.fstatSync(fd).size };
}

/** Append one record; with `sync`, return only once it is on stable storage. */
export function appendRecord(j: Journal, payload: Uint8Array, sync: boolean): void {
  const b = Buffer.allocUnsafe(HDR + payload.length);
  b.writeUInt32LE(payload.length, 0);
  b.writeUInt32LE(crc32(payload), 4);
  b.set(payload, HDR);
  let off = 0;
  while (off < b.length) off += fs.writeSync(j.fd, b, off, b.length - off);
  j.size += b.length;
  if (sync) fs.fsyncSync(j.fd);
}

export function syncJournal(j: Journal): void {
  fs.fsyncSync(j.fd);
}

export function closeJournal(j: Journal): void {
  try { fs.closeSync(j.fd); } catch { /* already closed */ }
}

/** Replace a file atomically: write a temporary, fsync it, rename over, fsync the directory. */
export function writeAtomic(file: string, data: Uint8Array | string): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fs.fsyncSync(fd);
  } finally { fs.closeSync(fd); }
  fs.renameSync(tmp, file);
  const dfd = fs.openSync(path.dirname(file), 'r');
  try { fs.fsyncSync(dfd); } finally { fs.closeSync(dfd); }
}
