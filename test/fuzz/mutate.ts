// A structure-aware mutator for netlink datagrams. A datagram is parsed into messages and attribute
// trees (a payload that parses cleanly as attributes is a nest), mutated as a tree (insert, delete,
// duplicate, splice from another input, wrap in deep nests) and re-serialised with correct lengths,
// or mutated as bytes where lengths are the point (nla_len, nlmsg_len, types, flags, truncation).
import type { Rng } from './gen';

interface Node { type: number; payload: Uint8Array; kids: Node[] | undefined }
interface Msg { hdr: Uint8Array; attrs: Node[]; tail: Uint8Array }

const u16 = (b: Uint8Array, at: number): number => b[at] | (b[at + 1] << 8);
const u32 = (b: Uint8Array, at: number): number => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
const put16 = (b: Uint8Array, at: number, v: number): void => { b[at] = v & 0xff; b[at + 1] = (v >> 8) & 0xff; };
const put32 = (b: Uint8Array, at: number, v: number): void => { put16(b, at, v & 0xffff); put16(b, at + 2, (v >>> 16) & 0xffff); };

/** Attributes in [start, end); undefined unless they cover it exactly (so the bytes are a nest). */
function parseAttrs(b: Uint8Array, start: number, end: number, depth: number): Node[] | undefined {
  const out: Node[] = [];
  let at = start;
  while (end - at >= 4) {
    const len = u16(b, at);
    if (len < 4 || len > end - at) return undefined;
    const type = u16(b, at + 2);
    const payload = b.slice(at + 4, at + len);
    const kids = depth < 24 && payload.length >= 4 ? parseAttrs(b, at + 4, at + len, depth + 1) : undefined;
    out.push({ type, payload, kids });
    at += (len + 3) & ~3;
  }
  return at >= end ? out : undefined;
}

/** Messages of a datagram (attribute area after a 20-byte header); trailing bytes kept as a tail. */
export function parse(d: Uint8Array): Msg[] {
  const msgs: Msg[] = [];
  let at = 0;
  while (d.length - at >= 20) {
    const len = u32(d, at);
    if (len < 20 || len > d.length - at) break;
    const attrs = parseAttrs(d, at + 20, at + len, 0);
    msgs.push({ hdr: d.slice(at, at + 20), attrs: attrs ?? [], tail: attrs ? new Uint8Array(0) : d.slice(at + 20, at + len) });
    at += (len + 3) & ~3;
  }
  if (!msgs.length) msgs.push({ hdr: pad(d.slice(0, 20), 20), attrs: [], tail: new Uint8Array(0) });
  return msgs;
}

function pad(b: Uint8Array, n: number): Uint8Array {
  if (b.length >= n) return b;
  const o = new Uint8Array(n);
  o.set(b);
  return o;
}

function nodeSize(n: Node): number {
  return 4 + (n.kids ? n.kids.reduce((s, k) => s + ((nodeSize(k) + 3) & ~3), 0) : n.payload.length);
}

function writeNode(out: number[], n: Node): void {
  const len = Math.min(nodeSize(n), 0xffff);
  out.push(len & 0xff, len >> 8, n.type & 0xff, (n.type >> 8) & 0xff);
  if (n.kids) for (const k of n.kids) writeNode(out, k);
  else for (const x of n.payload) out.push(x);
  while (out.length % 4) out.push(0);
}

/** Serialise with every length recomputed (nlmsg_len, nla_len of each nest). */
export function serialize(msgs: Msg[]): Uint8Array {
  const out: number[] = [];
  for (const m of msgs) {
    const start = out.length;
    for (const x of m.hdr) out.push(x);
    for (const a of m.attrs) writeNode(out, a);
    for (const x of m.tail) out.push(x);
    const len = out.length - start;
    out[start] = len & 0xff; out[start + 1] = (len >> 8) & 0xff; out[start + 2] = (len >> 16) & 0xff; out[start + 3] = len >>> 24;
    while (out.length % 4) out.push(0);
  }
  return Uint8Array.from(out);
}

/** Every attribute list in a message (the top level and each nest's children), for picking a place. */
function lists(m: Msg): Node[][] {
  const out: Node[][] = [m.attrs];
  const visit = (ns: Node[]) => { for (const n of ns) if (n.kids) { out.push(n.kids); visit(n.kids); } };
  visit(m.attrs);
  return out;
}

/** Byte offsets of every attribute header in a serialised datagram (following the tree). */
function attrOffsets(d: Uint8Array): number[] {
  const out: number[] = [];
  const visit = (start: number, end: number, depth: number) => {
    let at = start;
    while (end - at >= 4) {
      const len = u16(d, at);
      if (len < 4 || len > end - at) return;
      out.push(at);
      if (depth < 24 && len >= 8) visit(at + 4, at + len, depth + 1);
      at += (len + 3) & ~3;
    }
  };
  let at = 0;
  while (d.length - at >= 20) {
    const len = u32(d, at);
    if (len < 20 || len > d.length - at) break;
    visit(at + 20, at + len, 0);
    at += (len + 3) & ~3;
  }
  return out;
}

const interesting16 = (r: Rng, v: number): number => r.pick([0, 1, 2, 3, 4, 5, 7, 8, v - 1, v + 1, v + 4, v - 4, 0x7fff, 0x8000, 0xffff, r.int(0x10000)]);
const interesting32 = (r: Rng, v: number): number => r.pick([0, 1, 15, 16, 19, 20, 21, v - 1, v + 1, v + 4, v - 4, 0x7fffffff, 0x80000000, 0xffffffff, r.int(0x100000)]);
const NL_FLAGS = [0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x100, 0x200, 0x300, 0x400, 0x800, 0x1000, 0x8000];

type TreeOp = (r: Rng, m: Msg, other: Msg[]) => void;
type ByteOp = (r: Rng, d: Uint8Array, other: Uint8Array) => Uint8Array;

const randNode = (r: Rng): Node => {
  const n = r.int(12);
  const payload = new Uint8Array(n);
  for (let i = 0; i < n; i++) payload[i] = r.chance(0.5) ? 0 : r.int(256);
  return { type: r.int(16) | (r.chance(0.2) ? 0x8000 : 0), payload, kids: undefined };
};

const clone = (n: Node): Node => ({ type: n.type, payload: n.payload, kids: n.kids?.map(clone) });

function anyNode(r: Rng, msgs: Msg[]): Node | undefined {
  const ls = msgs.flatMap(lists).filter((l) => l.length);
  return ls.length ? clone(r.pick(r.pick(ls))) : undefined;
}

const TREE_OPS: [string, TreeOp][] = [
  ['delete', (r, m) => { const l = r.pick(lists(m)); if (l.length) l.splice(r.int(l.length), 1); }],
  ['duplicate', (r, m) => { const l = r.pick(lists(m)); if (l.length) l.splice(r.int(l.length + 1), 0, clone(r.pick(l))); }],
  ['insert-random', (r, m) => { const l = r.pick(lists(m)); l.splice(r.int(l.length + 1), 0, randNode(r)); }],
  ['splice', (r, m, other) => {
    const n = anyNode(r, other);
    const l = r.pick(lists(m));
    if (n) l.splice(r.int(l.length + 1), 0, n);
  }],
  ['deep-nest', (r, m) => {
    // Wrap an attribute in k nests: the depth limit (10) and recursion in readers.
    const l = r.pick(lists(m));
    if (!l.length) return;
    const i = r.int(l.length);
    let n = l[i];
    const k = r.pick([1, 2, 8, 9, 10, 11, 12, 30, 200]);
    const t = n.type & 0x3fff;
    const flag = r.chance(0.7) ? 0x8000 : 0;
    for (let j = 0; j < k; j++) n = { type: (r.chance(0.8) ? t : r.int(8)) | flag, payload: new Uint8Array(0), kids: [n] };
    l[i] = n;
  }],
  ['swap', (r, m) => { const l = r.pick(lists(m)); if (l.length > 1) { const i = r.int(l.length), j = r.int(l.length); [l[i], l[j]] = [l[j], l[i]]; } }],
  ['type', (r, m) => {
    const l = r.pick(lists(m));
    if (!l.length) return;
    const n = l[r.int(l.length)];
    const t = n.type & 0x3fff;
    n.type = r.chance(0.4) ? n.type ^ r.pick([0x8000, 0x4000, 0xc000]) : (n.type & 0xc000) | (r.pick([0, t + 1, t - 1, 0x3fff, r.int(40)]) & 0x3fff);
  }],
  ['payload', (r, m) => {
    // Boundary integers, strings without NUL, emptied or grown payloads.
    const l = r.pick(lists(m));
    if (!l.length) return;
    const n = l[r.int(l.length)];
    n.kids = undefined;
    const len = r.pick([0, 1, 2, 3, 4, 5, 8, 12, 16, n.payload.length, n.payload.length + 1, n.payload.length - 1, 300]);
    const p = new Uint8Array(Math.max(0, len));
    p.set(n.payload.subarray(0, p.length));
    const fill = r.pick([0x00, 0xff, 0x7f, 0x80, 0x41]);
    for (let i = Math.min(n.payload.length, p.length); i < p.length; i++) p[i] = fill;
    if (p.length && r.chance(0.3)) p[r.int(p.length)] = r.pick([0, 0xff, 0x80]);
    n.payload = p;
  }],
  ['genl-header', (r, m) => {
    const h = m.hdr;
    switch (r.int(3)) {
      case 0: h[16] = r.pick([0, 1, 2, 3, 9, 10, 11, 20, 30, 254, 255, r.int(256)]); break;
      case 1: h[17] = r.int(256); break;
      default: put16(h, 18, r.pick([1, 0x8000, 0xffff])); break;
    }
  }],
  ['nl-header', (r, m, other) => {
    const h = m.hdr;
    switch (r.int(4)) {
      case 0: put16(h, 6, u16(h, 6) ^ r.pick(NL_FLAGS)); break;
      case 1: put16(h, 4, r.chance(0.5) && other.length ? u16(r.pick(other).hdr, 4) : r.pick([0, 1, 2, 3, 4, 0xf, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x3ff, 0xffff])); break;
      case 2: put32(h, 8, r.pick([0, 1, 0xffffffff, r.int(0x100000)])); break;
      default: put32(h, 12, r.int(0x100000)); break;
    }
  }],
  ['tail', (r, m) => { const n = 1 + r.int(7); m.tail = new Uint8Array(n).map(() => r.int(256)); }],
];

const BYTE_OPS: [string, ByteOp][] = [
  ['nla_len', (r, d) => {
    const offs = attrOffsets(d);
    if (!offs.length) return d;
    const at = r.pick(offs);
    put16(d, at, interesting16(r, u16(d, at)) & 0xffff);
    return d;
  }],
  ['nlmsg_len', (r, d) => { if (d.length >= 4) put32(d, 0, interesting32(r, u32(d, 0)) >>> 0); return d; }],
  ['truncate', (r, d) => d.slice(0, r.int(d.length + 1))],
  ['truncate-fixed', (r, d) => { const n = Math.max(16, r.int(d.length + 1)); const o = d.slice(0, n); if (o.length >= 4) put32(o, 0, o.length); return o; }],
  ['grow', (r, d) => { const n = r.pick([1, 3, 4, 100, 4096, 70000]); const o = new Uint8Array(d.length + n); o.set(d); return o; }],
  ['flip', (r, d) => { for (let k = 1 + r.int(4); k > 0 && d.length; k--) d[r.int(d.length)] ^= 1 << r.int(8); return d; }],
  ['byte', (r, d) => { for (let k = 1 + r.int(3); k > 0 && d.length; k--) d[r.int(d.length)] = r.pick([0, 0xff, 0x80, 0x7f, 4, 8]); return d; }],
  ['concat', (r, d, other) => {
    // Several messages per datagram; the next starts at the aligned end, as netlink_rcv_skb steps.
    const a = (d.length + 3) & ~3;
    const o = new Uint8Array(a + other.length);
    o.set(d);
    o.set(other, a);
    return o;
  }],
  ['splice-bytes', (r, d, other) => {
    if (!other.length) return d;
    const cut = r.int(d.length + 1), from = r.int(other.length), n = r.int(other.length - from + 1);
    const o = new Uint8Array(cut + n + (r.chance(0.5) ? d.length - cut : 0));
    o.set(d.subarray(0, cut));
    o.set(other.subarray(from, from + n), cut);
    if (o.length > cut + n) o.set(d.subarray(cut, cut + o.length - cut - n), cut + n);
    return o;
  }],
];

/** Names of the mutations, for statistics. */
export const MUTATIONS = [...TREE_OPS.map(([n]) => n), ...BYTE_OPS.map(([n]) => n)];

/**
 * One to a few mutations of `input`; `pool` supplies material for splicing. Returns the new
 * datagram and the names of what was done.
 */
export function mutate(r: Rng, input: Uint8Array, pool: readonly Uint8Array[]): { data: Uint8Array; ops: string[] } {
  const ops: string[] = [];
  let d = input;
  for (let k = r.pick([1, 1, 1, 2, 2, 3, 5]); k > 0; k--) {
    const other = pool.length ? r.pick(pool) : input;
    if (r.chance(0.55)) {
      const [name, op] = r.pick(TREE_OPS);
      const msgs = parse(d);
      op(r, r.pick(msgs), parse(other));
      d = serialize(msgs);
      ops.push(name);
    } else {
      const [name, op] = r.pick(BYTE_OPS);
      d = op(r, d === input ? d.slice() : d, other);
      ops.push(name);
    }
  }
  if (d.length > 1 << 17) d = d.slice(0, 1 << 17);
  return { data: d, ops };
}
