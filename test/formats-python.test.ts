// Every RAS payload format decoded by Python (/usr/bin/python3 with Debian's libraries), each
// decoder written from the format's page under docs/formats alone, never from our decoder:
// field and record order included (test/formats-py/*.py say how each checks it).
//   key-val-32  struct; key and string registries parsed from key-val-32.md; key sequence per record
//   netlink     struct TLV walk; ids and types from accel.yaml (PyYAML); attribute order per netlink.md
//   json        json with key order kept, checked against json.md's field order
//   protobuf    python3-protobuf on protoc --python_out of ras.proto; re-serialized bytes are ours
//   grpc        struct for the length-prefixed frames, then as protobuf
//   thrift      python3-thrift on thrift --gen py of ras.thrift (thrift.md's recipe); re-serialized
//   cbor        cbor2; its canonical encoding of what it read is our bytes
//   asn1        asn1crypto's DER parser walked along ras.asn1's component lists
// A missing Python package or tool skips that format visibly, naming it (.ci/packages.txt lists them).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ACTIONS, BLOCKS, EVENT_KINDS, SEVERITIES } from '../device/enums';
import { CODECS, type Doc, type DocType } from '../device/formats';
import { normal } from './helpers/format-normal';
import { edgeCounters, edgeEvents, saturated, typicalEvent } from './helpers/ras-records';

const PY = '/usr/bin/python3';
const ROOT = path.join(__dirname, '..');
const DOCS = path.join(ROOT, 'docs/formats');
const SCRIPTS = path.join(__dirname, 'formats-py');
const SPEC = path.join(ROOT, 'docs/netlink/specs/accel.yaml');

const events: Doc = { type: 'events', events: [...edgeEvents(), typicalEvent()] };
const counters: Doc = { type: 'counters', counters: edgeCounters() };
const empty: Doc = { type: 'events', events: [] };

const hasModule = (m: string): boolean => fs.existsSync(PY) && spawnSync(PY, ['-c', `import ${m}`]).status === 0;
const hasTool = (t: string): boolean => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0;

// What each decoder needs: a Python module or a command, and the Debian package that has it.
type Need = { py?: string; tool?: string; pkg: string };
const NEEDS: Record<string, Need[]> = {
  'key-val-32': [],
  netlink: [{ py: 'yaml', pkg: 'python3-yaml' }],
  json: [],
  protobuf: [{ py: 'google.protobuf', pkg: 'python3-protobuf' }, { tool: 'protoc', pkg: 'protobuf-compiler' }],
  grpc: [{ py: 'google.protobuf', pkg: 'python3-protobuf' }, { tool: 'protoc', pkg: 'protobuf-compiler' }],
  thrift: [{ py: 'thrift', pkg: 'python3-thrift' }, { tool: 'thrift', pkg: 'thrift-compiler' }],
  cbor: [{ py: 'cbor2', pkg: 'python3-cbor2' }],
  asn1: [{ py: 'asn1crypto', pkg: 'python3-asn1crypto' }],
};
function missing(format: string): string[] {
  if (!fs.existsSync(PY)) return ['python3 (/usr/bin/python3)'];
  return NEEDS[format].filter((n) => (n.py ? !hasModule(n.py) : !hasTool(n.tool!))).map((n) => n.pkg);
}

let tmp = '';
const gen: Record<string, string> = {};
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-pyfmt-'));
  if (!missing('protobuf').length) {
    gen.protobuf = path.join(tmp, 'pb');
    fs.mkdirSync(gen.protobuf);
    const r = spawnSync('protoc', ['-I', DOCS, `--python_out=${gen.protobuf}`, 'ras.proto'], { cwd: DOCS, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`protoc --python_out: ${r.stderr}`);
  }
  if (!missing('thrift').length) {
    gen.thrift = path.join(tmp, 'thrift');
    fs.mkdirSync(gen.thrift);
    const r = spawnSync('thrift', ['--gen', 'py', '-out', gen.thrift, path.join(DOCS, 'ras.thrift')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`thrift --gen py: ${r.stderr}`);
  }
});
afterAll(() => { if (tmp) fs.rmSync(tmp, { recursive: true, force: true }); });

function argsFor(format: string, type: DocType): [string, string[]] {
  const names = JSON.stringify({ kind: EVENT_KINDS, block: BLOCKS, severity: SEVERITIES, action: ACTIONS });
  switch (format) {
    case 'key-val-32': return ['kv32.py', [path.join(DOCS, 'key-val-32.md')]];
    case 'netlink': return ['netlink.py', [SPEC, type]];
    case 'json': return ['json_.py', [names]];
    case 'protobuf': case 'grpc': return ['pb.py', [gen.protobuf, format, type]];
    case 'thrift': return ['thrift_.py', [gen.thrift]];
    case 'cbor': return ['cbor_.py', []];
    case 'asn1': return ['asn1_.py', [path.join(DOCS, 'ras.asn1')]];
    default: throw new Error(format);
  }
}

function pyDecode(format: string, bytes: Uint8Array, type: DocType): { out?: unknown; err?: string } {
  const [script, args] = argsFor(format, type);
  const r = spawnSync(PY, [path.join(SCRIPTS, script), ...args], {
    input: bytes, encoding: 'buffer', timeout: 60000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
  if (r.status !== 0) return { err: `${script} exit ${r.status}: ${r.stderr?.toString() || r.error?.message}` };
  return { out: JSON.parse(r.stdout.toString()) };
}

const FORMATS = Object.keys(NEEDS);

describe.each(FORMATS)('%s: decoded in Python from its page alone', (format) => {
  const why = missing(format);
  if (why.length) console.warn(`formats-python: ${format} skipped, missing Debian package(s): ${why.join(', ')}`);
  const it_ = why.length ? it.skip : it;
  const c = CODECS[format as keyof typeof CODECS];

  it_('events: every block, severity, kind, action and edge value, in log order', () => {
    expect(pyDecode(format, c.encode(events), 'events')).toEqual({ out: normal(events) });
  });
  it_('an empty event list', () => {
    expect(pyDecode(format, c.encode(empty), 'events')).toEqual({ out: { events: [] } });
  });
  it_('a counter snapshot: 44 counters block-major, memory fields, edge values', () => {
    const want = format === 'key-val-32' ? { type: 'counters' as const, counters: saturated(counters.counters) } : counters;
    expect(pyDecode(format, c.encode(counters), 'counters')).toEqual({ out: normal(want) });
  });
});

test('empty event lists are the bytes the pages give', () => {
  expect(Buffer.from(CODECS.protobuf.encode(empty)).toString('hex')).toBe('1200'); // protobuf.md: field 2, length 0
  expect(CODECS.grpc.encode(empty)).toHaveLength(0); // grpc.md: no frame at all
  expect(CODECS.netlink.encode(empty)).toHaveLength(0); // netlink.md: an empty list is zero bytes
});
