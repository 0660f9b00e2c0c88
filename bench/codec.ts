// TLV codec: encode + decode of a realistic 20-attribute message (8 u32, 4 u64, 4 strings, 2 nests
// of 3 u32, 2 u16: 262 bytes with headers) with our attrs/ and with the `netlink` package's codec.
import * as structs from 'netlink/dist/structs';
import * as A from '../attrs';
import { fmt, quick, rate, report, table } from './_lib';

interface Msg {
  u32: number[]; u64: bigint[]; str: string[]; nestA: number[]; nestB: number[]; u16: number[];
}
const msg: Msg = {
  u32: [1, 2, 3, 0xdeadbeef, 5, 6, 7, 8], u64: [1n, 1n << 40n, 123456789012345n, 0xffffffffffffffffn],
  str: ['accel0', '0000:03:00.0', 'accelnl_emu', 'ACNL0000A1B2'], nestA: [10, 11, 12], nestB: [20, 21, 22], u16: [0x1ded, 0xa100],
};

// Attribute types: 1-8 u32, 9-12 u64, 13-16 string, 17-18 nests (children 1-3 u32), 19-20 u16.
const w = A.newWriter(1024);
function encodeOurs(m: Msg): Uint8Array {
  A.resetWriter(w);
  w.len = 20; // nlmsghdr + genlmsghdr, written by genl/ in real use
  for (let i = 0; i < 8; i++) A.putU32(w, 1 + i, m.u32[i]);
  for (let i = 0; i < 4; i++) A.putU64(w, 9 + i, m.u64[i]);
  for (let i = 0; i < 4; i++) A.putString(w, 13 + i, m.str[i]);
  for (const [t, arr] of [[17, m.nestA], [18, m.nestB]] as const) {
    const n = A.nestStart(w, t);
    for (let i = 0; i < 3; i++) A.putU32(w, 1 + i, arr[i]);
    A.nestEnd(w, n);
  }
  A.putU16(w, 19, m.u16[0]);
  A.putU16(w, 20, m.u16[1]);
  w.dv.setUint32(0, w.len, true);
  return w.buf.subarray(0, w.len);
}

function decodeOurs(buf: Uint8Array): Msg {
  const v = A.view(buf);
  const m: Msg = { u32: [], u64: [], str: [], nestA: [], nestB: [], u16: [] };
  A.walk(v, 20, buf.length, (at, t) => {
    if (t <= 8) m.u32.push(A.getU32(v, at));
    else if (t <= 12) m.u64.push(A.getU64(v, at));
    else if (t <= 16) m.str.push(A.getString(v, at));
    else if (t <= 18) {
      const arr = t === 17 ? m.nestA : m.nestB;
      A.walk(v, at + 4, at + A.attrLen(v, at), (c) => { arr.push(A.getU32(v, c)); });
    } else m.u16.push(A.getU16(v, at));
  });
  return m;
}

// The netlink package: its generated-code style (putObject/getObject tables, AttrStream).
interface NObj extends structs.BaseObject { [k: string]: unknown }
const putNest = (arr: number[]) => structs.putObject({ a: arr[0], b: arr[1], c: arr[2] } as NObj, {
  a: (d, o) => d.push(1, structs.putU32(o.a as number)), b: (d, o) => d.push(2, structs.putU32(o.b as number)),
  c: (d, o) => d.push(3, structs.putU32(o.c as number)),
});
// Tables built once, as the package's generated code does.
const encFns: Record<string, (d: structs.AttrStream, o: NObj) => void> = {};
for (let i = 0; i < 8; i++) encFns[`u${i}`] = (d, ob) => d.push(1 + i, structs.putU32(ob[`u${i}`] as number));
for (let i = 0; i < 4; i++) encFns[`q${i}`] = (d, ob) => d.push(9 + i, structs.putU64(ob[`q${i}`] as bigint));
for (let i = 0; i < 4; i++) encFns[`s${i}`] = (d, ob) => d.push(13 + i, structs.putString(ob[`s${i}`] as string));
encFns.na = (d, ob) => d.push(17, putNest(ob.na as number[]));
encFns.nb = (d, ob) => d.push(18, putNest(ob.nb as number[]));
encFns.h0 = (d, ob) => d.push(19, structs.putU16(ob.h0 as number));
encFns.h1 = (d, ob) => d.push(20, structs.putU16(ob.h1 as number));
function encodeTheirs(m: Msg): Buffer {
  const o: NObj = {
    u0: m.u32[0], u1: m.u32[1], u2: m.u32[2], u3: m.u32[3], u4: m.u32[4], u5: m.u32[5], u6: m.u32[6], u7: m.u32[7],
    q0: m.u64[0], q1: m.u64[1], q2: m.u64[2], q3: m.u64[3], s0: m.str[0], s1: m.str[1], s2: m.str[2], s3: m.str[3],
    na: m.nestA, nb: m.nestB, h0: m.u16[0], h1: m.u16[1],
  };
  const stream = new structs.AttrStream();
  stream.emit(structs.putObject(o, encFns));
  return Buffer.concat([Buffer.alloc(20), ...stream.bufs]);
}
const getNest = (data: Buffer) => {
  const r = structs.getObject<NObj>(data, {
    1: (x, ob) => { ob.a = structs.getU32(x); }, 2: (x, ob) => { ob.b = structs.getU32(x); }, 3: (x, ob) => { ob.c = structs.getU32(x); },
  });
  return [r.a, r.b, r.c] as number[];
};
let cur: Msg;
const decFns: Record<number, (x: Buffer, o: NObj) => void> = {};
for (let t = 1; t <= 8; t++) decFns[t] = (x) => { cur.u32.push(structs.getU32(x)); };
for (let t = 9; t <= 12; t++) decFns[t] = (x) => { cur.u64.push(structs.getU64(x)); };
for (let t = 13; t <= 16; t++) decFns[t] = (x) => { cur.str.push(structs.getString(x)); };
decFns[17] = (x) => { cur.nestA = getNest(x); };
decFns[18] = (x) => { cur.nestB = getNest(x); };
decFns[19] = (x) => { cur.u16.push(structs.getU16(x)); };
decFns[20] = (x) => { cur.u16.push(structs.getU16(x)); };
function decodeTheirs(buf: Buffer): Msg {
  cur = { u32: [], u64: [], str: [], nestA: [], nestB: [], u16: [] };
  structs.getObject(buf.subarray(20), decFns);
  return cur;
}

// Both must agree before anything is timed.
const ours = encodeOurs(msg);
const theirs = encodeTheirs(msg);
const same = (a: Msg, b: Msg) => JSON.stringify(a, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)) ===
  JSON.stringify(b, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
if (!same(decodeOurs(ours), msg) || !same(decodeTheirs(theirs), msg) || !same(decodeOurs(new Uint8Array(theirs)), msg)) {
  throw new Error('codec benchmark setup: decoders disagree');
}
console.log(`message: ours ${ours.length} bytes (kernel layout), netlink package ${theirs.length} bytes (no final padding)`);

let sink = 0;
const rOurs = rate((n) => { for (let i = 0; i < n; i++) sink += decodeOurs(encodeOurs(msg)).u32.length; });
const rTheirs = rate((n) => { for (let i = 0; i < n; i++) sink += decodeTheirs(encodeTheirs(msg)).u32.length; });
const rOursEnc = rate((n) => { for (let i = 0; i < n; i++) sink += encodeOurs(msg).length; });
const rTheirsEnc = rate((n) => { for (let i = 0; i < n; i++) sink += encodeTheirs(msg).length; });
const rOursDec = rate((n) => { for (let i = 0; i < n; i++) sink += decodeOurs(ours).u32.length; });
const rTheirsDec = rate((n) => { for (let i = 0; i < n; i++) sink += decodeTheirs(theirs).u32.length; });
if (sink < 0) console.log(sink);

const rows = [
  { case: 'encode+decode', 'accelnl msg/s': fmt(rOurs), 'netlink pkg msg/s': fmt(rTheirs), ratio: fmt(rOurs / rTheirs, 2) },
  { case: 'encode', 'accelnl msg/s': fmt(rOursEnc), 'netlink pkg msg/s': fmt(rTheirsEnc), ratio: fmt(rOursEnc / rTheirsEnc, 2) },
  { case: 'decode', 'accelnl msg/s': fmt(rOursDec), 'netlink pkg msg/s': fmt(rTheirsDec), ratio: fmt(rOursDec / rTheirsDec, 2) },
];
table(`TLV codec, 20-attribute message${quick ? ' (quick)' : ''}`, rows);
report('codec', { bytes: ours.length, ours: { roundtrip: rOurs, encode: rOursEnc, decode: rOursDec },
  netlink: { roundtrip: rTheirs, encode: rTheirsEnc, decode: rTheirsDec }, ratio: rOurs / rTheirs });
