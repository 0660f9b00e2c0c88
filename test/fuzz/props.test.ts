// Properties of the TLV layer (fast-check): every attribute kind and policy shape round-trips; the
// reader and validator never throw on any byte string; every rejection carries a kernel errno and
// an extack offset inside the message; nests at any depth are walked or refused at depth 10.
import fc from 'fast-check';
import { constants as os } from 'os';
import * as A from '../../attrs';
import { NLA, VALIDATE } from '../../attrs';
import * as G from '../../genl';
import { readAttrs } from '../../genl/ynl';
import { spec as accelSpec } from '../../device/gen/accel';
import { spec as rasSpec } from '../../device/gen/drm-ras';
import { putValid, rng } from './gen';
import { closeTarget, newTarget, runOne } from './harness';

const RUNS = Number(process.env.PROPS_RUNS ?? 300);
const opts = { numRuns: RUNS, seed: Number(process.env.PROPS_SEED ?? 42) };
const KNOWN = new Set(Object.values(os.errno));

// ---- values of every kind -----------------------------------------------------------------------

type V =
  | { k: 'u8' | 'u16' | 'u32' | 's8' | 's16' | 's32' | 'be16' | 'be32'; v: number }
  | { k: 'u64' | 's64' | 'uint' | 'sint'; v: bigint }
  | { k: 'flag' }
  | { k: 'string' | 'nulstring'; v: string }
  | { k: 'binary'; v: Uint8Array }
  | { k: 'bitfield32'; value: number; selector: number; valid: number }
  | { k: 'nest'; kids: V[] }
  | { k: 'array'; template: V[]; n: number };

const leaf: fc.Arbitrary<V> = fc.oneof(
  fc.integer({ min: 0, max: 0xff }).map((v) => ({ k: 'u8' as const, v })),
  fc.integer({ min: 0, max: 0xffff }).map((v) => ({ k: 'u16' as const, v })),
  fc.integer({ min: 0, max: 0xffffffff }).map((v) => ({ k: 'u32' as const, v })),
  fc.integer({ min: -0x80, max: 0x7f }).map((v) => ({ k: 's8' as const, v })),
  fc.integer({ min: -0x8000, max: 0x7fff }).map((v) => ({ k: 's16' as const, v })),
  fc.integer({ min: -0x80000000, max: 0x7fffffff }).map((v) => ({ k: 's32' as const, v })),
  fc.integer({ min: 0, max: 0xffff }).map((v) => ({ k: 'be16' as const, v })),
  fc.integer({ min: 0, max: 0xffffffff }).map((v) => ({ k: 'be32' as const, v })),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((v) => ({ k: 'u64' as const, v })),
  fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map((v) => ({ k: 's64' as const, v })),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((v) => ({ k: 'uint' as const, v })),
  fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map((v) => ({ k: 'sint' as const, v })),
  fc.constant({ k: 'flag' as const }),
  // An empty NLA_STRING is refused (ERANGE) by the kernel and by us: at least one byte.
  fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 40 }).filter((s) => !s.includes('\0')).map((v) => ({ k: 'string' as const, v })),
  fc.string({ unit: 'grapheme', maxLength: 20 }).filter((s) => !s.includes('\0')).map((v) => ({ k: 'nulstring' as const, v })),
  fc.uint8Array({ maxLength: 64 }).map((v) => ({ k: 'binary' as const, v })),
  fc.tuple(fc.integer({ min: 1, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }))
    .map(([valid, s, x]) => { const selector = (s & valid) >>> 0; return { k: 'bitfield32' as const, valid, selector, value: (x & selector) >>> 0 }; }),
);

const tree = fc.letrec<{ v: V; list: V[] }>((tie) => ({
  v: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf,
    tie('list').map((kids) => ({ k: 'nest' as const, kids })),
    fc.tuple(tie('list'), fc.integer({ min: 0, max: 3 })).map(([template, n]) => ({ k: 'array' as const, template, n }))),
  list: fc.array(tie('v'), { maxLength: 5 }),
})).list;

function put(w: A.Writer, t: number, x: V): void {
  switch (x.k) {
    case 'u8': A.putU8(w, t, x.v); break;
    case 'u16': A.putU16(w, t, x.v); break;
    case 'u32': A.putU32(w, t, x.v); break;
    case 's8': A.putS8(w, t, x.v); break;
    case 's16': A.putS16(w, t, x.v); break;
    case 's32': A.putS32(w, t, x.v); break;
    case 'be16': A.putBe16(w, t, x.v); break;
    case 'be32': A.putBe32(w, t, x.v); break;
    case 'u64': A.putU64(w, t, x.v); break;
    case 's64': A.putS64(w, t, x.v); break;
    case 'uint': A.putUint(w, t, x.v); break;
    case 'sint': A.putSint(w, t, x.v); break;
    case 'flag': A.putFlag(w, t); break;
    case 'string': A.putStringNoNul(w, t, x.v); break;
    case 'nulstring': A.putString(w, t, x.v); break;
    case 'binary': A.putBytes(w, t, x.v); break;
    case 'bitfield32': A.putBitfield32(w, t, x.value, x.selector); break;
    case 'nest': { const at = A.nestStart(w, t); x.kids.forEach((k, i) => put(w, i + 1, k)); A.nestEnd(w, at); break; }
    case 'array': {
      const at = A.nestStart(w, t);
      for (let e = 1; e <= x.n; e++) { const ea = A.nestStart(w, e); x.template.forEach((k, i) => put(w, i + 1, k)); A.nestEnd(w, ea); }
      A.nestEnd(w, at);
      break;
    }
  }
}

const ENTRY: Record<string, number> = {
  u8: NLA.U8, u16: NLA.U16, u32: NLA.U32, s8: NLA.S8, s16: NLA.S16, s32: NLA.S32, be16: NLA.BE16, be32: NLA.BE32,
  u64: NLA.U64, s64: NLA.S64, uint: NLA.UINT, sint: NLA.SINT, flag: NLA.FLAG, string: NLA.STRING,
  nulstring: NLA.NUL_STRING, binary: NLA.BINARY,
};

function policyOf(list: V[]): A.Policy {
  const e: Record<number, A.PolicyEntry> = {};
  list.forEach((x, i) => {
    if (x.k === 'nest') e[i + 1] = A.pol.nested(policyOf(x.kids));
    else if (x.k === 'array') e[i + 1] = A.pol.nestedArray(policyOf(x.template));
    else if (x.k === 'bitfield32') e[i + 1] = A.pol.bitfield32(x.valid);
    else e[i + 1] = { type: ENTRY[x.k] };
  });
  return A.policy(e, Math.max(1, list.length));
}

/** Read attribute `at` back as `x` describes it; throws on a difference. */
function check(v: A.View, at: number, x: V): void {
  const n = A.payloadLen(v, at);
  const eq = (a: unknown, b: unknown) => { if (a !== b) throw new Error(`${x.k}: read ${String(a)}, wrote ${String(b)}`); };
  switch (x.k) {
    case 'u8': eq(A.getU8(v, at), x.v); eq(n, 1); break;
    case 'u16': eq(A.getU16(v, at), x.v); eq(n, 2); break;
    case 'u32': eq(A.getU32(v, at), x.v); eq(n, 4); break;
    case 's8': eq(A.getS8(v, at), x.v); break;
    case 's16': eq(A.getS16(v, at), x.v); break;
    case 's32': eq(A.getS32(v, at), x.v); break;
    case 'be16': eq(A.getBe16(v, at), x.v); break;
    case 'be32': eq(A.getBe32(v, at), x.v); break;
    case 'u64': eq(A.getU64(v, at), x.v); eq(n, 8); break;
    case 's64': eq(A.getS64(v, at), x.v); break;
    case 'uint': eq(BigInt(A.getUint(v, at)), x.v); eq(n, x.v <= 0xffffffffn ? 4 : 8); break;
    case 'sint': eq(BigInt(A.getSint(v, at)), x.v); eq(n, x.v >= -0x80000000n && x.v <= 0x7fffffffn ? 4 : 8); break;
    case 'flag': eq(n, 0); break;
    case 'string': case 'nulstring': eq(A.getString(v, at), x.v); eq(n, Buffer.byteLength(x.v) + (x.k === 'nulstring' ? 1 : 0)); break;
    case 'binary': eq(Buffer.from(A.getBytes(v, at)).toString('hex'), Buffer.from(x.v).toString('hex')); break;
    case 'bitfield32': { const b = A.getBitfield32(v, at); eq(b.value, x.value); eq(b.selector, x.selector); break; }
    case 'nest': checkList(v, at + 4, at + A.attrLen(v, at), x.kids); break;
    case 'array': {
      let i = 0;
      A.walk(v, at + 4, at + A.attrLen(v, at), (e, t) => { eq(t, ++i); checkList(v, e + 4, e + A.attrLen(v, e), x.template); });
      eq(i, x.n);
      break;
    }
  }
}

function checkList(v: A.View, start: number, end: number, list: V[]): void {
  let i = 0;
  const rem = A.walk(v, start, end, (at, t) => {
    if (t !== i + 1) throw new Error(`type ${t}, expected ${i + 1}`);
    if ((A.attrLen(v, at) + 3 & ~3) - A.attrLen(v, at) > 0 && v.buf.subarray(at + A.attrLen(v, at), at + (A.attrLen(v, at) + 3 & ~3)).some((b) => b)) {
      throw new Error('non-zero padding');
    }
    check(v, at, list[i++]);
  });
  if (rem !== 0 || i !== list.length) throw new Error(`walked ${i} of ${list.length}, ${rem} bytes left`);
}

test('every attribute kind, nested and in arrays, round-trips and passes strict validation of its own policy', () => {
  fc.assert(fc.property(tree, (list) => {
    const w = A.newWriter(64);
    list.forEach((x, i) => put(w, i + 1, x));
    const v = A.view(A.bytes(w));
    checkList(v, 0, v.buf.length, list);
    const pol = policyOf(list);
    const ext = A.newExtack();
    const tb = new Int32Array(pol.maxtype + 1);
    const err = A.validate(v, 0, v.buf.length, pol.maxtype, pol, A.NL_VALIDATE.STRICT, ext, tb);
    if (err) throw new Error(`validate: ${err} ${ext.msg}`);
    list.forEach((_, i) => { if (tb[i + 1] < 0) throw new Error(`tb[${i + 1}] not set`); });
  }), opts);
});

// ---- policy shapes ------------------------------------------------------------------------------

const INT_TYPES = [NLA.U8, NLA.U16, NLA.U32, NLA.U64, NLA.S8, NLA.S16, NLA.S32, NLA.S64, NLA.UINT, NLA.SINT, NLA.BE16, NLA.BE32];

const entry = fc.letrec<{ e: A.PolicyEntry; p: A.Policy }>((tie) => ({
  e: fc.oneof({ depthSize: 'small' },
    fc.tuple(fc.constantFrom(...INT_TYPES), fc.nat(4), fc.integer({ min: -200, max: 200 }), fc.nat(400), fc.nat(0xffff))
      .map(([type, kind, lo, span, mask]): A.PolicyEntry => {
        const { min, max, signed } = A.entryRange({ type });
        const clamp = (x: number) => (BigInt(x) < BigInt(min) ? min : BigInt(x) > BigInt(max) ? max : (typeof min === 'bigint' ? BigInt(x) : x));
        const l = signed ? lo : Math.abs(lo);
        switch (kind) {
          case 0: return { type };
          case 1: return { type, validation: VALIDATE.RANGE, min: clamp(l), max: clamp(l + span) };
          case 2: return { type, validation: VALIDATE.MIN, min: clamp(l) };
          case 3: return { type, validation: VALIDATE.MAX, max: clamp(l + span) };
          default: return signed ? { type } : { type, validation: VALIDATE.MASK, mask };
        }
      }),
    fc.constantFrom(NLA.FLAG, NLA.MSECS).map((type) => ({ type })),
    fc.tuple(fc.constantFrom(NLA.STRING, NLA.NUL_STRING), fc.nat(30)).map(([type, len]) => ({ type, len: len || undefined })),
    fc.tuple(fc.nat(2), fc.nat(40), fc.nat(40)).map(([k, a, b]): A.PolicyEntry =>
      k === 0 ? { type: NLA.BINARY, len: b || undefined } : k === 1 ? A.pol.exactLen(a) : A.pol.range(NLA.BINARY, Math.min(a, b), Math.max(a, b))),
    fc.integer({ min: 1, max: 0xffffffff }).map((m) => A.pol.bitfield32(m)),
    tie('p').map((p) => A.pol.nested(p)),
    tie('p').map((p) => A.pol.nestedArray(p)),
  ),
  p: fc.array(tie('e'), { minLength: 1, maxLength: 6 }).map((es) => A.policy(Object.fromEntries(es.map((e, i) => [i + 1, e])))),
})).p;

test('every policy shape: values generated to satisfy it validate strictly, and liberally', () => {
  fc.assert(fc.property(entry, fc.integer(), (pol, seed) => {
    const r = rng(seed);
    const w = A.newWriter(64);
    for (let t = 1; t <= pol.maxtype; t++) if (r.chance(0.7)) putValid(w, r, t, pol.entries[t]);
    const v = A.view(A.bytes(w));
    for (const mode of [A.NL_VALIDATE.STRICT, A.NL_VALIDATE.LIBERAL]) {
      const ext = A.newExtack();
      const err = A.validate(v, 0, v.buf.length, pol.maxtype, pol, mode, ext);
      if (err) throw new Error(`mode ${mode}: ${err} '${ext.msg}' at ${ext.badAttr} in ${Buffer.from(v.buf).toString('hex')}`);
    }
  }), opts);
});

// ---- hostile bytes ------------------------------------------------------------------------------

/** Bytes that are mostly attribute-shaped: random headers and payloads, with random damage. */
const hostile = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  fc.array(fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 24 })), { maxLength: 8 })
    .map((as) => {
      const out: number[] = [];
      for (const [len, type, p] of as) {
        const l = len % 3 === 0 ? 4 + p.length : len % 97;
        out.push(l & 0xff, l >> 8, type & 0xff, type >> 8, ...p);
        while (out.length % 4) out.push(0);
      }
      return Uint8Array.from(out);
    }),
);

test('reader and validator never throw on any byte string; every rejection has a kernel errno and an offset inside', () => {
  fc.assert(fc.property(hostile, entry, fc.integer({ min: 0, max: 31 }), (bytes, pol, flags) => {
    const v = A.view(bytes);
    const end = bytes.length;
    const rem = A.walk(v, 0, end, (at) => { A.getString(v, at); A.getBytes(v, at); A.getUint(v, at); A.getSint(v, at); });
    if (rem > end || rem < -3) throw new Error(`walk returned ${rem}`);
    A.parseInto(v, 0, end, new Int32Array(8));
    const ext = A.newExtack();
    const err = A.validate(v, 0, end, pol.maxtype, pol, flags, ext, new Int32Array(pol.maxtype + 1));
    if (err > 0 || (err < 0 && !KNOWN.has(-err))) throw new Error(`errno ${err}`);
    if (err < 0 && ext.badAttr >= 0 && (ext.badAttr + 4 > end)) throw new Error(`offset ${ext.badAttr} outside ${end}`);
    // The spec codec (what handlers and clients decode with) never throws either.
    for (const [s, set] of [[accelSpec, 'accel'], [accelSpec, 'event'], [rasSpec, 'error-counter-attrs']] as const) readAttrs(v, 0, end, s, set);
  }), { ...opts, numRuns: RUNS * 4 });
});

test('whole requests to the server: answers are well-formed, errors carry kernel errnos and offsets inside the request', () => {
  const t = newTarget();
  try {
    const fam = G.familiesIn(G.registryOf(t.srv));
    fc.assert(fc.property(fc.nat(1000), fc.nat(255), fc.constantFrom(0x5, 0x305, 0x1, 0x4), hostile, fc.boolean(), (f, cmd, flags, attrs, nobody) => {
      const w = A.newWriter(256);
      const at = G.genlStart(w, fam[f % fam.length].id!, flags, 7, 0, cmd % 40, 1);
      const p = A.ensure(w, attrs.length);
      w.buf.set(attrs, p);
      w.len = p + attrs.length;
      G.msgEnd(w, at);
      const v = runOne(t, A.bytes(w), nobody);
      if (v.problems.length) throw new Error(v.problems.join('; '));
    }), opts);
  } finally {
    closeTarget(t);
  }
});

// ---- depth --------------------------------------------------------------------------------------

const SELF: A.Policy = A.policy({ 2: A.pol.u32() }, 2);
(SELF.entries as A.PolicyEntry[])[1] = A.pol.nested(SELF, 2);
const SELF_ARRAY: A.Policy = A.policy({ 2: A.pol.u32() }, 2);
(SELF_ARRAY.entries as A.PolicyEntry[])[1] = A.pol.nestedArray(SELF_ARRAY, 2);

/** d nests of type 1 (or array elements), innermost holding a u32. */
function chain(d: number, array: boolean): Uint8Array {
  const w = A.newWriter(64);
  const open: number[] = [];
  for (let i = 0; i < d; i++) {
    open.push(A.nestStart(w, 1));
    if (array) open.push(A.nestStart(w, 1));
  }
  A.putU32(w, 2, 5);
  while (open.length) A.nestEnd(w, open.pop()!);
  return A.bytes(w);
}

test('nests at any depth are walked, and validated up to the kernel limit (depth 10), refused beyond', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 60 }), fc.boolean(), (d, array) => {
    const b = chain(d, array);
    const v = A.view(b);
    // Walking needs no policy and has no limit.
    let depth = 0;
    const deep = (s: number, e: number, k: number): void => { depth = Math.max(depth, k); A.walk(v, s, e, (at) => { if (A.attrType(v, at) === 1) deep(at + 4, at + A.attrLen(v, at), k + 1); }); };
    deep(0, b.length, 0);
    if (depth !== d * (array ? 2 : 1)) throw new Error(`walked to ${depth}`);
    const ext = A.newExtack();
    const err = A.validate(v, 0, b.length, 2, array ? SELF_ARRAY : SELF, A.NL_VALIDATE.STRICT, ext);
    // validate() runs at depth 0 for the top level and one deeper for each nest (an array's
    // elements count once, as nla_validate_array passes depth + 1 for each).
    const refused = d >= A.MAX_DEPTH;
    if (refused !== (err !== 0)) throw new Error(`depth ${d}: err ${err} '${ext.msg}'`);
    if (refused && (err !== -22 || ext.msg !== 'allowed policy recursion depth exceeded')) throw new Error(`depth ${d}: ${err} ${ext.msg}`);
  }), { ...opts, numRuns: 200 });
});
