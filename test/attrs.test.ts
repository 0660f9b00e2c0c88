import * as A from '../attrs';
import { NLA, NL_VALIDATE, pol, policy, newExtack, validate, view } from '../attrs';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const fromHex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

describe('writer: kernel layout', () => {
  test('string with NUL, one zero pad byte (nlctrl capture)', () => {
    const w = A.newWriter(1); // forces growth too
    A.putString(w, 2, 'nlctrl');
    expect(hex(A.bytes(w))).toBe('0b0002006e6c6374726c0000');
  });
  test('u16 is padded to 8 with zeros, nla_len 6', () => {
    const w = A.newWriter();
    w.buf.fill(0xff);
    A.putU16(w, 1, 0x10);
    expect(hex(A.bytes(w))).toBe('0600010010000000');
  });
  test('u8/u32/u64/s8/s16/s32/s64/flag sizes', () => {
    const w = A.newWriter();
    A.putU8(w, 1, 0xab); A.putU32(w, 2, 0xdeadbeef); A.putU64(w, 3, 0x0102030405060708n);
    A.putS8(w, 4, -1); A.putS16(w, 5, -2); A.putS32(w, 6, -3); A.putS64(w, 7, -4n); A.putFlag(w, 8);
    expect(hex(A.bytes(w))).toBe(
      '05000100ab000000' + '08000200efbeadde' + '0c0003000807060504030201' +
      '05000400ff000000' + '06000500feff0000' + '08000600fdffffff' + '0c000700fcffffffffffffff' + '04000800');
  });
  test('uint/sint are 4 bytes when they fit, else 8', () => {
    const w = A.newWriter();
    A.putUint(w, 1, 0xffffffff); A.putUint(w, 2, 0x100000000); A.putUint(w, 3, 5n);
    A.putSint(w, 4, -1); A.putSint(w, 5, 0x80000000); A.putSint(w, 6, -0x80000000);
    expect(hex(A.bytes(w))).toBe('08000100ffffffff' + '0c0002000000000001000000' + '0800030005000000' +
      '08000400ffffffff' + '0c0005000000008000000000' + '0800060000000080');
  });
  test('be16/be32, NLA_F_NET_BYTEORDER only when asked', () => {
    const w = A.newWriter();
    A.putBe16(w, 1, 0x1234); A.putBe32(w, 2, 0x01020304, true);
    expect(hex(A.bytes(w))).toBe('0600010012340000' + '0800024001020304');
  });
  test('bitfield32 and binary', () => {
    const w = A.newWriter();
    A.putBitfield32(w, 1, 1, 3); A.putBytes(w, 2, new Uint8Array([9, 8, 7]));
    expect(hex(A.bytes(w))).toBe('0c000100010000000300000007000200090807' + '00');
  });
  test('nests: flagged and noflag, length covers padded children, empty nest is 4', () => {
    const w = A.newWriter();
    const n = A.nestStart(w, 1); A.putU8(w, 1, 7); A.nestEnd(w, n);
    const m = A.nestStartNoflag(w, 2); A.nestEnd(w, m);
    expect(hex(A.bytes(w))).toBe('0c000180' + '0500010007000000' + '04000200');
  });
  test('64-bit pad attribute only when configured and the tail is 8-aligned', () => {
    const w = A.newWriter();
    w.pad64 = 9;
    A.putU64(w, 1, 1n); // tail 0: pad first, payload lands on 8
    A.putU64(w, 2, 2n); // tail 16: pad again
    expect(hex(A.bytes(w))).toBe('04000900' + '0c0001000100000000000000' + '04000900' + '0c0002000200000000000000');
    const x = A.newWriter();
    A.putU64(x, 1, 1n);
    expect(x.len).toBe(12);
  });
  test('UTF-8 strings', () => {
    const w = A.newWriter();
    A.putString(w, 1, 'hé');
    expect(hex(A.bytes(w))).toBe('08000100' + '68c3a900');
    expect(A.getString(view(A.bytes(w)), 0)).toBe('hé');
  });
  test('oversized payloads are refused', () => {
    const w = A.newWriter();
    expect(() => A.putBytes(w, 1, new Uint8Array(70000))).toThrow(RangeError);
  });
  test('strings whose encoding passes nla_len are refused, the writer left as it was (the largest that fits is written)', () => {
    const w = A.newWriter();
    A.putU32(w, 1, 7);
    const before = hex(A.bytes(w));
    // 65531 bytes of payload fit: 65530 characters + NUL, or 65531 without it.
    for (const [put, s] of [[A.putString, 'x'.repeat(65531)], [A.putString, 'é'.repeat(32766)], [A.putStringNoNul, 'x'.repeat(65532)], [A.putString, 'x'.repeat(70000)]] as const) {
      expect(() => put(w, 2, s)).toThrow(new RangeError(`string attribute of ${Buffer.byteLength(s) + (put === A.putString ? 1 : 0)} bytes exceeds 65531`));
      expect(hex(A.bytes(w))).toBe(before);
    }
    A.putString(w, 2, 'x'.repeat(65530));
    A.putStringNoNul(w, 3, 'y'.repeat(65531));
    const v = view(A.bytes(w));
    expect(v.dv.getUint16(8, true)).toBe(65535);
    expect(A.getString(v, 8)).toBe('x'.repeat(65530));
    expect(v.dv.getUint16(8 + 65536, true)).toBe(65535);
  });
});

describe('copyBytes: exact at every alignment, to and from shared memory', () => {
  // Shared memory misaligned with the other side goes through a bounce buffer (attrs/writer.ts):
  // the bytes must be the same as a plain set() would give, with nothing written around them.
  const pattern = new Uint8Array(1100).map((_, i) => (i * 7 + 3) & 0xff);
  const cases: [string, () => Uint8Array][] = [['ordinary', () => new Uint8Array(2400)], ['shared', () => new Uint8Array(new SharedArrayBuffer(2400))]];
  for (const [srcKind, makeSrc] of cases) {
    for (const [dstKind, makeDst] of cases) {
      test(`${srcKind} -> ${dstKind}`, () => {
        const srcMem = makeSrc();
        srcMem.set(pattern);
        const dst = makeDst();
        for (const n of [0, 16, 65, 255, 256, 1000]) {
          for (let so = 0; so < 8; so++) {
            for (let at = 0; at < 8; at++) {
              dst.fill(0xee);
              A.copyBytes(dst, at + 40, srcMem, so, so + n);
              // the same through a view of the source (from/to left out), at another place
              A.copyBytes(dst, 41 + n + at, srcMem.subarray(so, so + n));
              const want = pattern.subarray(so, so + n);
              expect(Buffer.from(dst.subarray(at + 40, at + 40 + n)).equals(want)).toBe(true);
              expect(Buffer.from(dst.subarray(41 + n + at, 41 + n + at + n)).equals(want)).toBe(true);
              expect(dst[at + 39]).toBe(0xee);
              expect(dst[41 + n + at + n]).toBe(0xee);
            }
          }
        }
      });
    }
  }
  test('putBytes of a shared, misaligned payload lays it out as any other', () => {
    const shared = new Uint8Array(new SharedArrayBuffer(600));
    shared.set(pattern.subarray(0, 600));
    const w1 = A.newWriter(16), w2 = A.newWriter(16);
    A.putU32(w1, 1, 7); A.putU32(w2, 1, 7);
    A.putBytes(w1, 2, shared.subarray(3, 503));
    A.putBytes(w2, 2, pattern.slice(3, 503));
    expect(Buffer.from(A.bytes(w1)).equals(Buffer.from(A.bytes(w2)))).toBe(true);
  });
});

describe('reader', () => {
  test('round trip of every kind', () => {
    const w = A.newWriter();
    A.putU8(w, 1, 200); A.putU16(w, 2, 65535); A.putU32(w, 3, 4000000000); A.putU64(w, 4, 2n ** 64n - 1n);
    A.putS8(w, 5, -100); A.putS16(w, 6, -30000); A.putS32(w, 7, -2000000000); A.putS64(w, 8, -(2n ** 63n));
    A.putUint(w, 9, 7); A.putUint(w, 10, 2n ** 60n); A.putSint(w, 11, -7); A.putSint(w, 12, -(2n ** 60n));
    A.putBe16(w, 13, 0xabcd); A.putBe32(w, 14, 0xa1b2c3d4); A.putString(w, 15, 'x'); A.putFlag(w, 16);
    A.putBitfield32(w, 17, 5, 7);
    const v = view(A.bytes(w));
    const tb = new Int32Array(20);
    expect(A.parseInto(v, 0, v.buf.length, tb)).toBe(0);
    expect(A.getU8(v, tb[1])).toBe(200);
    expect(A.getU16(v, tb[2])).toBe(65535);
    expect(A.getU32(v, tb[3])).toBe(4000000000);
    expect(A.getU64(v, tb[4])).toBe(2n ** 64n - 1n);
    expect(A.getS8(v, tb[5])).toBe(-100);
    expect(A.getS16(v, tb[6])).toBe(-30000);
    expect(A.getS32(v, tb[7])).toBe(-2000000000);
    expect(A.getS64(v, tb[8])).toBe(-(2n ** 63n));
    expect(A.getUint(v, tb[9])).toBe(7);
    expect(A.getUint(v, tb[10])).toBe(2n ** 60n);
    expect(A.getSint(v, tb[11])).toBe(-7);
    expect(A.getSint(v, tb[12])).toBe(-(2n ** 60n));
    expect(A.getBe16(v, tb[13])).toBe(0xabcd);
    expect(A.getBe32(v, tb[14])).toBe(0xa1b2c3d4);
    expect(A.getString(v, tb[15])).toBe('x');
    expect(A.payloadLen(v, tb[16])).toBe(0);
    expect(A.getBitfield32(v, tb[17])).toEqual({ value: 5, selector: 7 });
    expect(tb[18]).toBe(-1);
  });
  test('malformed input is reported as leftover bytes, never thrown', () => {
    const cases: [string, number][] = [
      ['0800010001000000' + '0300', 2],        // short header
      ['0800010001000000' + '02000100', 4],    // nla_len below 4
      ['0800010001000000' + '20000100aaaa', 6], // nla_len past the end
    ];
    for (const [h, left] of cases) {
      const v = view(fromHex(h));
      const seen: number[] = [];
      expect(A.walk(v, 0, v.buf.length, (at, t) => { seen.push(t); })).toBe(left);
      expect(seen).toEqual([1]);
    }
  });
  test('a final attribute without its padding is accepted (rem goes negative)', () => {
    const v = view(fromHex('05000100ff'));
    expect(A.walk(v, 0, 5, () => {})).toBeLessThanOrEqual(0);
  });
  test('walk can stop early', () => {
    const w = A.newWriter();
    A.putU8(w, 1, 1); A.putU8(w, 2, 2);
    const v = view(A.bytes(w));
    let n = 0;
    A.walk(v, 0, v.buf.length, () => { n++; return false; });
    expect(n).toBe(1);
  });
});

// The nlctrl policies as the kernel defines them (kernel-genl.md §6.1).
const family = policy({ 1: pol.u16(), 2: pol.nulString(15) });
const withOp = policy({ 1: pol.u16(), 2: pol.nulString(15), 10: pol.u32() });

function check(h: string, p: A.Policy, flags: number, maxtype = p.maxtype) {
  const v = view(fromHex(h));
  const ext = newExtack();
  const err = validate(v, 0, v.buf.length, maxtype, p, flags, ext);
  return { err, msg: ext.msg, off: ext.badAttr, policy: ext.policy, };
}

describe('validator: kernel semantics', () => {
  test('unknown type: strict rejects with offset, liberal skips', () => {
    expect(check('0600010010000000' + '0800140001000000', withOp, NL_VALIDATE.STRICT))
      .toMatchObject({ err: -22, msg: 'Unknown attribute type', off: 8, policy: undefined });
    expect(check('0800140001000000', withOp, NL_VALIDATE.LIBERAL).err).toBe(0);
  });
  test('u16 with 4 bytes: strict EINVAL, liberal accepted; 1 byte liberal ERANGE', () => {
    expect(check('0800010010000000', family, NL_VALIDATE.STRICT))
      .toMatchObject({ err: -22, msg: 'invalid attribute length', off: 0, policy: family.entries[1] });
    expect(check('0800010010000000', family, NL_VALIDATE.LIBERAL).err).toBe(0);
    expect(check('0500010010000000', family, NL_VALIDATE.LIBERAL))
      .toMatchObject({ err: -34, msg: 'Attribute failed policy validation', off: 0 });
  });
  test('NUL_STRING: missing NUL, too long, empty', () => {
    const s = (t: string) => {
      const w = A.newWriter(); A.putStringNoNul(w, 2, t); return hex(A.bytes(w));
    };
    expect(check(s('nlctrl'), family, NL_VALIDATE.LIBERAL).err).toBe(-22);
    expect(check(s('abcdefghijklmnopqrst\0'), family, NL_VALIDATE.LIBERAL))
      .toMatchObject({ err: -22, msg: 'Attribute failed policy validation' });
    expect(check(s('abcdefghijklmnop\0'), family, NL_VALIDATE.LIBERAL).err).toBe(-22);
    expect(check(s('abcdefghijklmno\0'), family, NL_VALIDATE.LIBERAL).err).toBe(0);
    expect(check('04000200', family, NL_VALIDATE.LIBERAL).err).toBe(-22);
    // A NUL early but payload continuing past .len: ERANGE
    expect(check(s('a\0bcdefghijklmnopqr'), family, NL_VALIDATE.LIBERAL).err).toBe(-34);
  });
  test('trailing bytes: strict error, liberal warning kept in extack', () => {
    expect(check('0600010010000000' + 'ffff', family, NL_VALIDATE.STRICT))
      .toMatchObject({ err: -22, msg: 'bytes leftover after parsing attributes', off: -1 });
    expect(check('0600010010000000' + 'ffff', family, NL_VALIDATE.LIBERAL))
      .toMatchObject({ err: 0, msg: 'bytes leftover after parsing attributes' });
  });
  test('unspec slot: strict "Unsupported attribute", no policy', () => {
    expect(check('0800050001000000', withOp, NL_VALIDATE.STRICT))
      .toMatchObject({ err: -22, msg: 'Unsupported attribute', off: 0, policy: undefined });
  });
  test('nests: flag required/forbidden in strict, inner errors keep inner offset, depth limit', () => {
    const inner = policy({ 1: pol.u32() });
    const outer = policy({ 1: pol.nested(inner), 2: pol.u8() });
    expect(check('0c000100' + '0800010001000000', outer, NL_VALIDATE.STRICT).msg).toBe('NLA_F_NESTED is missing');
    expect(check('05000280ff000000', outer, NL_VALIDATE.STRICT).msg).toBe('NLA_F_NESTED not expected');
    expect(check('0a000180' + '06000100ffff0000', outer, NL_VALIDATE.STRICT))
      .toMatchObject({ err: -22, msg: 'invalid attribute length', off: 4, policy: inner.entries[1] });
    expect(check('06000180ffff0000', outer, NL_VALIDATE.LIBERAL))
      .toMatchObject({ err: -34, msg: 'Attribute failed policy validation', off: 0 });
    // Recursive policy: depth 10 is refused.
    const rec: A.Policy = { maxtype: 1, entries: [undefined, { type: NLA.NESTED, len: 1 }] };
    (rec.entries[1] as A.PolicyEntry).nested = rec;
    const w = A.newWriter();
    const stack: number[] = [];
    for (let i = 0; i < 12; i++) stack.push(A.nestStart(w, 1));
    while (stack.length) A.nestEnd(w, stack.pop()!);
    expect(check(hex(A.bytes(w)), rec, NL_VALIDATE.STRICT))
      .toMatchObject({ err: -22, msg: 'allowed policy recursion depth exceeded' });
  });
  test('nested arrays: element too short, elements validated', () => {
    const elem = policy({ 1: pol.u32() });
    const p = policy({ 1: pol.nestedArray(elem) });
    expect(check('0c000180' + '06000100ffff0000', p, NL_VALIDATE.STRICT))
      .toMatchObject({ err: -34, msg: 'Array element too short', off: 4 });
    expect(check('10000180' + '0c000100' + '0800010001000000', p, NL_VALIDATE.STRICT).err).toBe(0);
    expect(check('10000180' + '0c000100' + '0800020001000000', p, NL_VALIDATE.STRICT))
      .toMatchObject({ err: -22, msg: 'Unknown attribute type', off: 8 });
  });
  test('ranges, masks, uint, flag, bitfield32, reject, binary', () => {
    const p = policy({
      1: pol.range(NLA.U8, 1, 10), 2: pol.mask(NLA.U32, 0x0f), 3: pol.uint(), 4: pol.flag(),
      5: pol.bitfield32(0x3), 6: pol.reject('no thanks'), 7: pol.binary(2), 8: pol.exactLen(2),
      9: pol.range(NLA.S16, -5, 5), 10: pol.reject(),
    });
    expect(check('050001000b000000', p, NL_VALIDATE.STRICT)).toMatchObject({ err: -34, msg: 'integer out of range' });
    expect(check('0800020010000000', p, NL_VALIDATE.STRICT)).toMatchObject({ err: -22, msg: 'reserved bit set', policy: undefined });
    expect(check('0600030001000000', p, NL_VALIDATE.LIBERAL)).toMatchObject({ err: -22, msg: 'invalid attribute length' });
    expect(check('0c0003000000000001000000', p, NL_VALIDATE.STRICT).err).toBe(0);
    expect(check('0500040001000000', p, NL_VALIDATE.LIBERAL)).toMatchObject({ err: -34, msg: 'Attribute failed policy validation' });
    expect(check('0c000500' + '04000000' + '04000000', p, NL_VALIDATE.STRICT).err).toBe(-22);
    expect(check('0c000500' + '01000000' + '03000000', p, NL_VALIDATE.STRICT).err).toBe(0);
    expect(check('0c000500' + '02000000' + '01000000', p, NL_VALIDATE.STRICT).err).toBe(-22);
    expect(check('04000600', p, NL_VALIDATE.STRICT)).toMatchObject({ err: -22, msg: 'no thanks', off: 0 });
    expect(check('04000a00', p, NL_VALIDATE.STRICT)).toMatchObject({ err: -22, msg: 'Attribute failed policy validation' });
    expect(check('07000700010203' + '00', p, NL_VALIDATE.STRICT)).toMatchObject({ err: -34 });
    expect(check('07000800010203' + '00', p, NL_VALIDATE.STRICT)).toMatchObject({ err: -34, msg: 'binary attribute size out of range' });
    expect(check('06000900faff0000', p, NL_VALIDATE.STRICT)).toMatchObject({ err: -34, msg: 'integer out of range' });
    expect(check('06000900fbff0000', p, NL_VALIDATE.STRICT).err).toBe(0);
  });
  test('strictStartType makes later types strict', () => {
    const p = { ...policy({ 1: pol.u16(), 2: pol.u16() }), strictStartType: 2 };
    expect(check('0800010001000000', p, NL_VALIDATE.LIBERAL).err).toBe(0);
    expect(check('0800020001000000', p, NL_VALIDATE.LIBERAL).msg).toBe('invalid attribute length');
  });
  test('validate fills tb like nla_parse', () => {
    const v = view(fromHex('0600010010000000' + '0600010011000000'));
    const tb = new Int32Array(3);
    expect(validate(v, 0, v.buf.length, 2, family, NL_VALIDATE.STRICT, newExtack(), tb)).toBe(0);
    expect(Array.from(tb)).toEqual([-1, 8, -1]);
  });
});

describe('policy dump encoding', () => {
  test('u16 and NUL_STRING entries match the kernel bytes', () => {
    const w = A.newWriter();
    A.writePolicyAttr(w, family.entries[1], 1);
    expect(hex(A.bytes(w))).toBe('24000180' + '0c000400' + '0000000000000000' + '0c000500' + 'ffff000000000000' + '0800010003000000');
    A.resetWriter(w);
    A.writePolicyAttr(w, family.entries[2], 2);
    expect(hex(A.bytes(w))).toBe('14000280' + '080007000f000000' + '080001000c000000');
  });
  test('unspec, reject, be16 are not advertised', () => {
    const w = A.newWriter();
    expect(A.writePolicyAttr(w, undefined, 1)).toBe(-61);
    expect(A.writePolicyAttr(w, pol.reject(), 1)).toBe(-61);
    expect(A.writePolicyAttr(w, pol.be16(), 1)).toBe(-61);
    expect(w.len).toBe(0);
  });
  test('decode then re-encode is identity for every advertised shape', () => {
    const inner = policy({ 1: pol.u32() });
    const entries: A.PolicyEntry[] = [
      pol.u8(), pol.u16(), pol.u32(), pol.u64(), pol.uint(), pol.s8(), pol.s16(), pol.s32(), pol.s64(), pol.sint(),
      pol.range(NLA.U32, 1, 9), pol.range(NLA.U64, 0, 2n ** 60n), pol.range(NLA.S32, -3, 3), pol.min(NLA.U8, 3),
      pol.mask(NLA.U16, 0xff), pol.flag(), pol.string(), pol.string(20), pol.nulString(15), pol.binary(),
      pol.binary(64), pol.exactLen(6), pol.bitfield32(7), pol.nested(inner), pol.nestedArray(inner),
    ];
    const st = A.newPolicyDumpState();
    A.addPolicy(st, policy(Object.fromEntries(entries.map((e, i) => [i + 1, e]))), entries.length);
    for (const e of entries) {
      const w = A.newWriter();
      expect(A.writePolicyAttr(w, e, 1, st)).toBe(0);
      const v = view(A.bytes(w));
      const d = A.readPolicyAttr(v, 4, v.buf.length)!;
      const nested = d.nestedIdx !== undefined ? st.policies[d.nestedIdx].policy : undefined;
      const w2 = A.newWriter();
      A.writePolicyAttr(w2, { ...d, nested }, 1, st);
      expect(hex(A.bytes(w2))).toBe(hex(A.bytes(w)));
    }
  });
  test('dump state indexes nested policies once, in discovery order', () => {
    const leaf = policy({ 1: pol.u8() });
    const mid = policy({ 1: pol.nested(leaf), 2: pol.nestedArray(leaf) });
    const top = policy({ 1: pol.nested(mid), 2: pol.u8() });
    const st = A.newPolicyDumpState();
    A.addPolicy(st, top, top.maxtype);
    A.addPolicy(st, top, top.maxtype);
    A.addPolicy(st, policy({}), 0);
    expect(st.policies.map((p) => p.policy)).toEqual([top, mid, leaf]);
  });
});
