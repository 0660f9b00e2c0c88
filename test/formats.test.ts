// RAS payload formats: every format round-trips the same records (every block, severity, kind and
// action; u64/u32 max, zero, empty strings, empty and 256-byte syndromes), and every payload is
// decoded by an implementation that is not ours, against the schema we ship:
//   key-val-32  python3 struct, with the key registry read from docs/formats/key-val-32.md
//   netlink     the `netlink` npm package's attribute parser, with the accel spec's attribute ids
//   json        python3 json
//   protobuf    protobufjs loading docs/formats/ras.proto; and protoc --decode / --encode
//   grpc        the gRPC framing by hand, the messages by protobufjs (the live service: formats-grpc.test.ts)
//   thrift      @creditkarma/thrift-server-core's CompactProtocol, driven by docs/formats/ras.thrift
//               as @creditkarma/thrift-parser reads it
//   cbor        node-cbor (`cbor`), which also checks the bytes are its canonical encoding
//   asn1        openssl asn1parse, walked along docs/formats/ras.asn1's component lists
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as cbor from 'cbor';
import * as structs from 'netlink/dist/structs';
import * as protobuf from 'protobufjs';
import { parse as parseThrift } from '@creditkarma/thrift-parser';
import * as tsc from '@creditkarma/thrift-server-core';
import { ACTIONS, BLOCKS, EVENT_KINDS, SEVERITIES } from '../device/enums';
import { CODECS, type Doc, FORMATS, FRAGMENT, fragments } from '../device/formats';
import { ACCEL, COUNTER, EVENT, MEMORY } from '../device/gen/accel';
import { edgeCounters, edgeEvents, saturated, typicalEvent } from './helpers/ras-records';
import { type N, normal } from './helpers/format-normal';

const ROOT = path.join(__dirname, '..');
const DOCS = path.join(ROOT, 'docs/formats');
const events: Doc = { type: 'events', events: edgeEvents() };
const counters: Doc = { type: 'counters', counters: edgeCounters() };
const empty: Doc = { type: 'events', events: [] };

// ---- the normalised form every independent decoder is compared in: test/helpers/format-normal.ts
const d = (v: number | bigint): string => BigInt(v).toString();
/** Integers (number, bigint, Long, numeric strings) to decimal strings, bytes to hex, recursively. */
function norm(v: unknown, key = ''): unknown {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (Array.isArray(v)) return v.map((x) => norm(x));
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return String(v);
  if (v && typeof v === 'object') {
    if (typeof (v as { toString?: unknown }).toString === 'function' && 'low' in v && 'high' in v) return String(v);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x, k)]));
  }
  void key;
  return v;
}

const python = (script: string, input: Uint8Array, ...args: string[]): N => {
  const r = spawnSync('/usr/bin/python3', ['-c', script, ...args], { input, encoding: 'buffer', timeout: 30000 }); // Debian's, see the team rules
  if (r.status !== 0) throw new Error(`python3: ${r.stderr?.toString() || r.error?.message}`);
  return JSON.parse(r.stdout.toString());
};

describe('round trip: encode, then decode with our decoder, gives the same records', () => {
  test.each(FORMATS)('%s', (f) => {
    const c = CODECS[f];
    expect(c.decode(c.encode(events), 'events')).toEqual(events);
    expect(c.decode(c.encode(empty), 'events')).toEqual(empty);
    const want = f === 'key-val-32' ? { type: 'counters', counters: saturated(counters.counters) } : counters;
    expect(c.decode(c.encode(counters), 'counters')).toEqual(want);
  });
  test('key-val-32 counters saturate at u32 max; below that they are exact', () => {
    const kv = CODECS['key-val-32'];
    const doc = kv.decode(kv.encode(counters), 'counters') as Extract<Doc, { type: 'counters' }>;
    const vols = doc.counters.counters.map((x) => x.volatileCount);
    expect(vols).toContain(0xffffffffn);
    expect(vols).toContain(0xfffffffen + 1n);
    expect(vols.every((v) => v <= 0xffffffffn)).toBe(true);
  });
  test('fragments: payloads over one attribute are cut at FRAGMENT bytes and join back', () => {
    const big = Uint8Array.from({ length: FRAGMENT * 2 + 17 }, (_, i) => i & 0xff);
    const parts = fragments(big);
    expect(parts.map((p) => p.length)).toEqual([FRAGMENT, FRAGMENT, 17]);
    expect(Buffer.concat(parts)).toEqual(Buffer.from(big));
    expect(fragments(new Uint8Array(0))).toHaveLength(1);
    expect(FRAGMENT + 64).toBeLessThanOrEqual(65536); // headers + other attributes still fit a 64 KiB read
  });
});

describe('independent decoders', () => {
  test('key-val-32: python3 struct, with the registry parsed from docs/formats/key-val-32.md', () => {
    const script = String.raw`
import json, re, struct, sys
doc = open(sys.argv[1]).read()
keys = {m.group(2): int(m.group(1), 16) for m in re.finditer(r'^\| (0x[0-9a-f]+) \| ([A-Z_]+) \|', doc, re.M)}
strings = {int(m.group(1)): ('' if m.group(2).startswith('(empty') else m.group(2)) for m in re.finditer(r'^\| (\d+) \| ([^|]+?) \|$', doc, re.M)}
name = {v: k for k, v in keys.items()}
pairs = list(struct.iter_unpack('<II', sys.stdin.buffer.read()))
assert pairs[0] == (keys['VERSION'], 1), pairs[0]
recs = []
for k, v in pairs[1:]:
    if k == keys['RECORD']:
        recs.append({'type': v, 'kv': {}, 'syn': b''})
    elif k == keys['SYNDROME']:
        recs[-1]['syn'] += struct.pack('<I', v)
    else:
        recs[-1]['kv'][k] = v
def g(r, n): return r['kv'][keys[n]]
def g64(r, n): return str(g(r, n + '_HI') << 32 | g(r, n + '_LO'))
out = {}
if recs and recs[0]['type'] == 1:
    r = recs[0]
    cs = []
    for b in range(11):
        for s in range(4):
            base = 0x1000 + (b << 4) + (s << 1)
            cs.append({'block': str(b), 'severity': str(s), 'volatile_count': str(r['kv'][base]), 'aggregate_count': str(r['kv'][base + 1])})
    out['counters'] = {'dev': str(g(r, 'DEV')), 'ts_ns': g64(r, 'TS'), 'cursor': g64(r, 'CURSOR'), 'counters': cs,
        'rows_active': str(g(r, 'ROWS_ACTIVE')), 'rows_pending': str(g(r, 'ROWS_PENDING')),
        'rma_threshold': str(g(r, 'RMA_THRESHOLD')), 'rma': g(r, 'RMA') == 1}
else:
    out['events'] = [{'dev': str(g(r, 'DEV')), 'seq': g64(r, 'SEQ'), 'ts_ns': g64(r, 'TS'), 'kind': str(g(r, 'KIND')),
        'block': str(g(r, 'BLOCK')), 'severity': str(g(r, 'SEVERITY')), 'error_id': str(g(r, 'ERROR_ID')),
        'error_name': strings[g(r, 'ERROR_NAME')], 'count': str(g(r, 'COUNT')), 'address': g64(r, 'ADDR'),
        'syndrome': r['syn'][:g(r, 'SYNDROME_LEN')].hex(), 'action': str(g(r, 'ACTION')), 'folded': str(g(r, 'FOLDED')),
        'first_ts_ns': g64(r, 'FIRST_TS'), 'last_ts_ns': g64(r, 'LAST_TS')} for r in recs]
print(json.dumps(out))
`;
    const md = path.join(DOCS, 'key-val-32.md');
    const kv = CODECS['key-val-32'];
    expect(python(script, kv.encode(events), md)).toEqual(normal(events));
    expect(python(script, kv.encode(counters), md)).toEqual(normal({ type: 'counters', counters: saturated(counters.counters) }));
    expect(python(script, kv.encode(empty), md)).toEqual({ events: [] });
  });

  test('netlink: the netlink package walks the TLVs; attribute ids are the accel spec\'s', () => {
    const attrs = (b: Buffer): [number, Buffer][] => { const out: [number, Buffer][] = []; structs.parseAttributes(b, (a) => out.push([a.type, a.data])); return out; };
    const u32 = (b: Buffer) => d(structs.getU32(b));
    const u64 = (b: Buffer) => d(structs.getU64(b));
    const decodeEvents = (b: Buffer): N => ({
      events: attrs(b).filter(([t]) => t === ACCEL.EVENT).map(([, nest]) => {
        const m = new Map(attrs(nest));
        return {
          dev: u32(m.get(EVENT.DEV_INDEX)!), seq: u64(m.get(EVENT.SEQ)!), ts_ns: u64(m.get(EVENT.TS_NS)!), kind: u32(m.get(EVENT.KIND)!),
          block: u32(m.get(EVENT.BLOCK)!), severity: u32(m.get(EVENT.SEVERITY)!), error_id: u32(m.get(EVENT.ERROR_ID)!),
          error_name: structs.getString(m.get(EVENT.ERROR_NAME)!), count: u32(m.get(EVENT.COUNT)!), address: u64(m.get(EVENT.ADDRESS)!),
          syndrome: m.get(EVENT.SYNDROME)!.toString('hex'), action: u32(m.get(EVENT.ACTION)!), folded: u32(m.get(EVENT.FOLDED)!),
          first_ts_ns: u64(m.get(EVENT.FIRST_TS_NS)!), last_ts_ns: u64(m.get(EVENT.LAST_TS_NS)!),
        };
      }),
    });
    const nl = CODECS.netlink;
    expect(decodeEvents(Buffer.from(nl.encode(events)))).toEqual(normal(events));
    const top = attrs(Buffer.from(nl.encode(counters)));
    const one = (t: number) => top.find(([x]) => x === t)![1];
    const mem = new Map(attrs(one(ACCEL.MEMORY)));
    expect({
      counters: {
        dev: u32(one(ACCEL.DEV_INDEX)), ts_ns: u64(one(ACCEL.TS_NS)), cursor: u64(one(ACCEL.CURSOR)),
        counters: top.filter(([t]) => t === ACCEL.COUNTER).map(([, n]) => {
          const m = new Map(attrs(n));
          return { block: u32(m.get(COUNTER.BLOCK)!), severity: u32(m.get(COUNTER.SEVERITY)!), volatile_count: u64(m.get(COUNTER.VOLATILE)!), aggregate_count: u64(m.get(COUNTER.AGGREGATE)!) };
        }),
        rows_active: u32(mem.get(MEMORY.ROWS_ACTIVE)!), rows_pending: u32(mem.get(MEMORY.ROWS_PENDING)!),
        rma_threshold: u32(mem.get(MEMORY.RMA_THRESHOLD)!), rma: structs.getU8(mem.get(MEMORY.RMA)!) === 1,
      },
    }).toEqual(normal(counters));
  });

  test('json: python3 json; numbers above 2^53 - 1 are strings, the rest numbers', () => {
    const script = String.raw`
import json, sys
names = json.loads(sys.argv[1])
o = json.loads(sys.stdin.buffer.read())
def n(k, v):
    if k in names: return str(names[k].index(v))
    if isinstance(v, bool): return v
    if isinstance(v, int):
        assert v <= 2**53 - 1, (k, v)
        return str(v)
    if isinstance(v, str) and k not in ('error_name', 'syndrome'):
        assert int(v) > 2**53 - 1, (k, v)
        return v
    if isinstance(v, list): return [n('', x) for x in v]
    if isinstance(v, dict): return {a: n(a, b) for a, b in v.items()}
    return v
print(json.dumps(n('', o)))
`;
    const names = JSON.stringify({ kind: EVENT_KINDS, block: BLOCKS, severity: SEVERITIES, action: ACTIONS });
    const j = CODECS.json;
    expect(python(script, j.encode(events), names)).toEqual(normal(events));
    expect(python(script, j.encode(counters), names)).toEqual(normal(counters));
  });

  /** protobufjs, loaded with camelCase off, names fields as the .proto does. */
  const rootKeep = new protobuf.Root().loadSync(path.join(DOCS, 'ras.proto'), { keepCase: true });
  const pbKeep = (type: string, b: Uint8Array): unknown => {
    const t = rootKeep.lookupType(`accelnl.ras.v1.${type}`);
    return norm(t.toObject(t.decode(b), { longs: String, enums: Number, defaults: true }));
  };

  test('protobuf: protobufjs decodes with the shipped .proto', () => {
    const pb = CODECS.protobuf;
    expect(pbKeep('Payload', pb.encode(events))).toEqual({ events: normal(events) });
    expect(pbKeep('Payload', pb.encode(counters))).toEqual(normal(counters));
  });

  test('grpc payload: length-prefixed frames of protobufjs-decodable messages', () => {
    const frames = (b: Uint8Array): Buffer[] => {
      const out: Buffer[] = [];
      const buf = Buffer.from(b);
      for (let at = 0; at < buf.length; at += 5 + buf.readUInt32BE(at + 1)) {
        expect(buf[at]).toBe(0);
        out.push(buf.subarray(at + 5, at + 5 + buf.readUInt32BE(at + 1)));
      }
      return out;
    };
    const g = CODECS.grpc;
    expect({ events: frames(g.encode(events)).map((f) => pbKeep('Event', f)) }).toEqual(normal(events));
    const [one] = frames(g.encode(counters));
    expect({ counters: pbKeep('Counters', one) }).toEqual(normal(counters));
  });

  test('protobuf: protoc --decode with the shipped .proto, and --encode gives our bytes back', () => {
    const why = ensureDebian(['protobuf-compiler']);
    if (why) { console.warn(`skipped protoc check: ${why}`); return; }
    for (const doc of [events, counters]) {
      const bytes = CODECS.protobuf.encode(doc);
      const dec = spawnSync('protoc', ['-I', DOCS, '--decode=accelnl.ras.v1.Payload', 'ras.proto'], { input: bytes, cwd: DOCS });
      expect(dec.status).toBe(0);
      const text = dec.stdout.toString();
      expect(text).not.toMatch(/^\s*\d+:/m); // no field the schema does not know
      if (doc.type === 'events') expect(text).toContain('error_name: "hbm"');
      else expect(text).toContain('cursor: 18446744073709551615');
      const enc = spawnSync('protoc', ['-I', DOCS, '--encode=accelnl.ras.v1.Payload', 'ras.proto'], { input: dec.stdout, cwd: DOCS });
      expect(Buffer.from(enc.stdout)).toEqual(Buffer.from(bytes));
    }
  });

  test('protobuf: the committed generated code is what protoc-gen-es makes of ras.proto', () => {
    const why = ensureDebian(['protobuf-compiler']);
    if (why) { console.warn(`skipped generated-code drift check: ${why}`); return; }
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-pb-'));
    const r = spawnSync('protoc', [`--plugin=protoc-gen-es=${path.join(ROOT, 'node_modules/.bin/protoc-gen-es')}`, `--es_out=${out}`,
      '--es_opt=target=ts,import_extension=none', '-I', DOCS, path.join(DOCS, 'ras.proto')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const fresh = fs.readFileSync(path.join(out, 'ras_pb.ts'), 'utf8');
    fs.rmSync(out, { recursive: true });
    expect(fresh).toBe(fs.readFileSync(path.join(ROOT, 'device/formats/gen/ras_pb.ts'), 'utf8')); // else: npm run gen:proto
  });

  test('thrift: creditkarma CompactProtocol reads the bytes along the shipped IDL', () => {
    const idl = parseThrift(fs.readFileSync(path.join(DOCS, 'ras.thrift'), 'utf8'));
    if (idl.type !== 'ThriftDocument') throw new Error('ras.thrift does not parse');
    const defs = new Map(idl.body.map((x) => [(x as { name: { value: string } }).name.value, x]));
    const TT = tsc.TType;
    type FT = { type: string; value?: string; valueType?: FT };
    const wire = (t: FT): number => {
      switch (t.type) {
        case 'I32Keyword': return TT.I32;
        case 'I64Keyword': return TT.I64;
        case 'StringKeyword': case 'BinaryKeyword': return TT.STRING;
        case 'BoolKeyword': return TT.BOOL;
        case 'ListType': return TT.LIST;
        default: return defs.get(t.value!)!.type === 'EnumDefinition' ? TT.I32 : TT.STRUCT;
      }
    };
    const read = (p: tsc.CompactProtocol, t: FT): unknown => {
      switch (t.type) {
        case 'I32Keyword': return String(p.readI32() >>> 0);
        case 'I64Keyword': return BigInt.asUintN(64, BigInt(p.readI64().toDecimalString())).toString();
        case 'StringKeyword': return p.readString();
        case 'BinaryKeyword': return p.readBinary().toString('hex');
        case 'BoolKeyword': return p.readBool();
        case 'ListType': {
          const l = p.readListBegin();
          expect(l.elementType).toBe(wire(t.valueType!));
          return Array.from({ length: l.size }, () => read(p, t.valueType!));
        }
        default: {
          const def = defs.get(t.value!) as unknown as { type: string; fields: { name: { value: string }; fieldID: { value: number }; fieldType: FT }[] };
          if (def.type === 'EnumDefinition') return String(p.readI32());
          const o: N = {};
          p.readStructBegin();
          for (;;) {
            const f = p.readFieldBegin();
            if (f.fieldType === TT.STOP) break;
            const fd = def.fields.find((x) => x.fieldID.value === f.fieldId);
            expect(fd).toBeDefined();
            expect(f.fieldType).toBe(wire(fd!.fieldType));
            o[fd!.name.value] = read(p, fd!.fieldType);
            p.readFieldEnd();
          }
          p.readStructEnd();
          return o;
        }
      }
    };
    const decode = (b: Uint8Array) => read(new tsc.CompactProtocol(new tsc.BufferedTransport(Buffer.from(b))), { type: 'Identifier', value: 'Payload' });
    expect(decode(CODECS.thrift.encode(events))).toEqual(normal(events));
    expect(decode(CODECS.thrift.encode(counters))).toEqual(normal(counters));
  });

  test('cbor: node-cbor decodes, and our bytes are its canonical (RFC 8949 deterministic) encoding', () => {
    for (const doc of [events, counters, empty]) {
      const b = Buffer.from(CODECS.cbor.encode(doc));
      const o = cbor.decodeFirstSync(b, { extendedResults: false });
      // node-cbor hands back integers up to 2^53 as numbers and would re-encode those above 2^32
      // as floats; as bigints it encodes them as the unsigned integers they were.
      const ints = (v: unknown): unknown => (typeof v === 'number' && v > 0xffffffff ? BigInt(v)
        : Array.isArray(v) ? v.map(ints) : v && typeof v === 'object' && !Buffer.isBuffer(v)
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, ints(x)])) : v);
      expect(Buffer.from(cbor.encodeCanonical(ints(o)))).toEqual(b);
      expect(norm(o)).toEqual(normal(doc));
    }
  });

  test('asn1: openssl asn1parse reads the DER along the shipped module', () => {
    const why = ensureDebian(['openssl']);
    if (why) { console.warn(`skipped asn1 check: ${why}`); return; }
    // Component names of each SEQUENCE in the module, in order.
    const mod = fs.readFileSync(path.join(DOCS, 'ras.asn1'), 'utf8').replace(/--[^\n]*/g, '');
    const seqs = new Map<string, string[]>();
    for (const m of mod.matchAll(/^(\w+) ::= SEQUENCE \{([^}]*)\}/gm)) {
      seqs.set(m[1], m[2].split(',').map((l) => l.trim().split(/\s+/)[0]).filter(Boolean));
    }
    expect(seqs.get('Event')).toHaveLength(15);
    type T = { tag: string; value: string; kids: T[]; bytes: Buffer };
    const parse = (der: Uint8Array): T => {
      const file = path.join(os.tmpdir(), `accelnl-asn1-${process.pid}.der`);
      fs.writeFileSync(file, der);
      const r = spawnSync('openssl', ['asn1parse', '-inform', 'DER', '-in', file], { encoding: 'utf8' });
      fs.rmSync(file);
      expect(r.status).toBe(0);
      const rootT: T = { tag: 'root', value: '', kids: [], bytes: Buffer.alloc(0) };
      const stack: T[] = [rootT];
      for (const line of r.stdout.split('\n').filter(Boolean)) {
        const m = /^\s*(\d+):d=(\d+)\s+hl=(\d+)\s+l=\s*(\d+)\s+(?:cons|prim):\s*(.*?)\s*(?::(.*))?$/.exec(line)!;
        const depth = Number(m[2]);
        // openssl prints printable octet strings as text: take their bytes at the offset it gives.
        const at = Number(m[1]) + Number(m[3]);
        const node: T = { tag: m[5].replace(/\s*\[HEX DUMP\]$/, '').trim(), value: m[6] ?? '', kids: [], bytes: Buffer.from(der.subarray(at, at + Number(m[4]))) };
        stack[depth].kids.push(node);
        stack[depth + 1] = node;
      }
      return rootT.kids[0];
    };
    const val = (t: T, name: string): unknown => {
      switch (t.tag) {
        case 'INTEGER': case 'ENUMERATED': return BigInt(`0x${t.value || '0'}`).toString();
        case 'UTF8STRING': return t.value;
        case 'OCTET STRING': return t.bytes.toString('hex');
        case 'BOOLEAN': return t.value === '255';
        default: throw new Error(`${name}: unexpected ${t.tag}`);
      }
    };
    const struct = (t: T, type: string): N => {
      expect(t.tag).toBe('SEQUENCE');
      const names = seqs.get(type)!;
      expect(t.kids).toHaveLength(names.length);
      return Object.fromEntries(names.map((n, i) => {
        const k = t.kids[i];
        if (n === 'counters') return ['counters', k.kids.map((c) => struct(c, 'Counter'))];
        return [n.replace(/-/g, '_'), val(k, n)];
      }));
    };
    const ev = parse(CODECS.asn1.encode(events));
    expect(ev.tag).toBe('cont [ 1 ]');
    expect({ events: ev.kids[0].kids.map((e) => struct(e, 'Event')) }).toEqual(normal(events));
    const co = parse(CODECS.asn1.encode(counters));
    expect(co.tag).toBe('cont [ 0 ]');
    expect({ counters: struct(co.kids[0], 'Counters') }).toEqual(normal(counters));
  });

  test('a typical event decodes everywhere too', () => {
    const doc: Doc = { type: 'events', events: [typicalEvent()] };
    for (const f of FORMATS) expect(CODECS[f].decode(CODECS[f].encode(doc), 'events')).toEqual(doc);
  });
});

/** Why a check cannot run: the Debian packages it needs that are not installed (tests never install them; .ci/packages.txt does). */
function ensureDebian(pkgs: string[]): string | undefined {
  const have = (p: string) => spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' }).stdout?.includes('install ok installed');
  const missing = pkgs.filter((p) => !have(p));
  return missing.length ? `not installed: ${missing.join(' ')}` : undefined;
}
