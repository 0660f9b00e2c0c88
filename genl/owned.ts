// Buffer ownership. A received datagram is a view into the socket's receive buffer, which the next
// wake-up overwrites (genl/socket.ts), and `Buffer#slice` is a view too. Whatever outlives the
// receive callback (an async handler's request, a dump's request, a queued datagram) holds a copy
// made here: its own ArrayBuffer, whatever kind of array the source is.

/** A copy of src[start, end) in a fresh ArrayBuffer (never a view, also when src is a Buffer). */
export function ownedCopy(src: Uint8Array, start = 0, end = src.length): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(src.subarray(start, end));
  return out;
}
