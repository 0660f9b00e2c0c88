// Memory for buffer objects. A fresh SharedArrayBuffer is untouched pages: the first write to each
// 4 KiB page faults, and on these VMs that costs about 10 µs a page (2.6 ms per MiB), more than
// copying the data in. Clients allocate the same sizes again and again (a job's A, B and C every
// round), so freed memory is kept, by exact size, up to a byte limit, and handed to the next BO of
// that size zeroed: a BO never shows a previous owner's bytes. Zeroing touches warm pages only.

export interface BoMemory {
  /** Freed buffers by byte length, the most recently freed last. */
  readonly spare: Map<number, SharedArrayBuffer[]>;
  /** Bytes held in `spare`, and the most it may hold. */
  bytes: number;
  readonly limit: number;
  /** Allocations served from `spare`, and from fresh memory. */
  reused: number;
  fresh: number;
}

export const newBoMemory = (limit: number): BoMemory => ({ spare: new Map(), bytes: 0, limit, reused: 0, fresh: 0 });

/** Zeroed memory of `size` bytes: a kept buffer if there is one, else a new one (which may throw). */
export function takeMemory(m: BoMemory, size: number): SharedArrayBuffer {
  const list = m.spare.get(size);
  const mem = list?.pop();
  if (!mem) {
    m.fresh++;
    return new SharedArrayBuffer(size);
  }
  if (!list!.length) m.spare.delete(size);
  m.bytes -= size;
  m.reused++;
  // Eight bytes at a time: a Uint8Array fill on shared memory goes byte by byte (8× slower).
  const words = size >>> 3;
  new Float64Array(mem, 0, words).fill(0);
  new Uint8Array(mem, words << 3).fill(0);
  return mem;
}

/**
 * Keep `mem` for reuse, if it fits under the limit. The caller guarantees nothing else writes it
 * any more: a buffer a compute worker may still be writing is never given back.
 */
export function giveMemory(m: BoMemory, mem: SharedArrayBuffer): void {
  const size = mem.byteLength;
  if (size > m.limit) return; // dropped: the garbage collector frees it
  // Make room by dropping the sizes freed longest ago (a Map keeps its keys in insertion order).
  for (const [s, list] of m.spare) {
    if (m.bytes + size <= m.limit) break;
    while (list.length && m.bytes + size > m.limit) { list.shift(); m.bytes -= s; }
    if (!list.length) m.spare.delete(s);
  }
  let list = m.spare.get(size);
  if (!list) m.spare.set(size, (list = []));
  list.push(mem);
  m.bytes += size;
}

/** Give every kept buffer up (when the host limit needs the memory, or the engine stops). */
export function dropMemory(m: BoMemory): void {
  m.spare.clear();
  m.bytes = 0;
}
