// Every RAS payload format decoded by Python (/usr/bin/python3 with Debian's libraries), each
// decoder written from the format's page under docs/formats alone, never from our decoder:
// field and record order included (test/formats-py/*.py say how each checks it).
//   key-val-32  struct; key and string registries parsed from key-val-32.md; key sequence per record
//   netlink     struct TLV walk; ids and types from accel.yaml (PyYAML); attribute order per netlink.md
//   json        json with key order kept, checked against json.md's field order
//   protobuf    python3-protobuf on protoc --python_out of ras.proto; re-serialized bytes are ours
//   grpc        struct for the length-prefixed frames, then as protobuf; and python3-grpcio calling the
//               live service (GetCounters, StreamEvents replay, accel-lost, NOT_FOUND)
//   thrift      python3-thrift on thrift --gen py of ras.thrift (thrift.md's recipe); re-serialized
//   cbor        cbor2; its canonical encoding of what it read is our bytes
//   asn1        asn1crypto's DER parser walked along ras.asn1's component lists
// A missing Python package or tool skips that format visibly, naming it (.ci/packages.txt lists them).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as G from '../genl';
import { manualClock, startDaemon } from '../device';
import { ACTIONS, BLOCKS, EVENT_KINDS, SEVERITIES } from '../device/enums';
import { CODECS, type Doc, type DocType, FORMATS as ALL_FORMATS, LOG_BATCH, countersOf, eventRec } from '../device/formats';
import { readAttrs, writeAttrs } from '../genl/ynl';
import { type Accel, CMD, spec } from '../device/gen/accel';
import { reassemble } from '../device/client';
import { readFrom } from '../device/log';
import { inject } from '../device/ras';
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

describe('grpc, live: python3-grpcio calls the daemon\'s Ras service as grpc.md describes it', () => {
  const why = [...missing('grpc'), ...(hasModule('grpc') ? [] : ['python3-grpcio'])];
  if (why.length) console.warn(`formats-python: live gRPC skipped, missing Debian package(s): ${why.join(', ')}`);
  (why.length ? it.skip : it)('GetCounters, StreamEvents replay from seq 1 with accel-lost, NOT_FOUND for an unknown device', async () => {
    const hub = G.newHub();
    const PORT = 0x41580000 + (process.pid & 0xfff);
    const d = startDaemon({ port: PORT, tick: false, clock: manualClock(), grpc: '127.0.0.1:0', config: 'devices: [{}]',
      open: (onBatch) => G.openInproc(hub, { port: PORT, onBatch }) });
    try {
      const endpoint = await d.grpc!.ready;
      const dev = d.rt.emu.devices.get(0)!;
      for (let i = 0; i < 5; i++) {
        inject(d.rt.emu, dev, { block: BLOCKS[i], severity: SEVERITIES[i % 4], address: BigInt(i) << 40n, count: i + 1,
          syndrome: Uint8Array.from({ length: i * 3 }, (_, j) => j * 7 + i) });
      }
      const want = {
        counters: normal({ type: 'counters', counters: countersOf(dev, d.rt.emu.clock.nowNs()) }).counters,
        events: normal({ type: 'events', events: readFrom(dev.log, 1n).events.map(eventRec) }).events,
      };
      expect((want.events as unknown[]).length).toBeGreaterThanOrEqual(5);
      // The client runs in a child process; the daemon's event loop must stay free meanwhile.
      const out = await new Promise<string>((resolve, reject) => {
        const { spawn } = require('child_process') as typeof import('child_process');
        const p = spawn(PY, [path.join(SCRIPTS, 'grpc_live.py'), gen.protobuf, endpoint, '0', String((want.events as unknown[]).length)],
          { env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
        let so = '', se = '';
        p.stdout.on('data', (b: Buffer) => { so += b; });
        p.stderr.on('data', (b: Buffer) => { se += b; });
        p.on('close', (code: number) => (code === 0 ? resolve(so) : reject(new Error(`grpc_live.py exit ${code}: ${se}`))));
      });
      expect(JSON.parse(out)).toEqual({ ...want, lost: '0', unknown_device: 'NOT_FOUND' });
    } finally {
      d.close();
    }
  });
});

describe('from the daemon: ras-get and ras-log-get payloads, reassembled as formats.md says, decoded in Python', () => {
  const usable = ALL_FORMATS.filter((f) => !missing(f).length);
  const skipped = ALL_FORMATS.filter((f) => missing(f).length);
  if (skipped.length) console.warn(`formats-python: daemon payloads not checked for ${skipped.join(', ')} (missing Debian packages)`);
  (usable.length ? it : it.skip)(`every usable format (${usable.join(', ')}): counters, and a log of ${LOG_BATCH + 44} records in two documents`, async () => {
    const hub = G.newHub();
    const PORT = 0x41590000 + (process.pid & 0xfff);
    const d = startDaemon({ port: PORT, tick: false, clock: manualClock(), grpc: '127.0.0.1:0', config: 'devices: [{ log-capacity: 1024 }]',
      open: (onBatch) => G.openInproc(hub, { port: PORT, onBatch }) });
    const c = G.createClient({ serverPort: PORT, open: (onBatch) => G.openInproc(hub, { onBatch, uid: 0 }) });
    try {
      await d.grpc!.ready;
      const fam = await c.resolve('accel');
      const dev = d.rt.emu.devices.get(0)!;
      for (let i = 0; i < LOG_BATCH + 44; i++) {
        inject(d.rt.emu, dev, { block: BLOCKS[i % 11], severity: SEVERITIES[i % 4], address: BigInt(i) << 20n, count: 1 + (i % 5),
          syndrome: Uint8Array.from({ length: i % 17 }, (_, j) => (i + j) & 0xff) });
      }
      const put = (a: Accel) => (w: Parameters<typeof writeAttrs>[0]) => writeAttrs(w, spec, 'accel', a);
      const read = (m: G.Message) => readAttrs<Accel>(m.v, m.attrs, m.end, spec, 'accel');
      const log = readFrom(dev.log, 1n).events.map(eventRec);
      const batches = [log.slice(0, LOG_BATCH), log.slice(LOG_BATCH)];
      expect(batches[1].length).toBeGreaterThan(0);
      for (const f of usable) {
        const [r] = (await c.request(fam.id, CMD.RAS_GET, { fill: put({ devIndex: 0, format: f }) })).map(read);
        expect([f, r.format]).toEqual([f, f]);
        const snap = countersOf(dev, d.rt.emu.clock.nowNs());
        const want = f === 'key-val-32' ? { type: 'counters' as const, counters: { ...snap, counters: snap.counters.map((x) => ({
          ...x, volatileCount: x.volatileCount > 0xffffffffn ? 0xffffffffn : x.volatileCount, aggregateCount: x.aggregateCount > 0xffffffffn ? 0xffffffffn : x.aggregateCount })) } }
          : { type: 'counters' as const, counters: snap };
        expect([f, pyDecode(f, r.payload!, 'counters')]).toEqual([f, { out: normal(want) }]);
        const msgs: Accel[] = [];
        for await (const m of c.dump(fam.id, CMD.RAS_LOG_GET, { fill: put({ devIndex: 0, cursor: 1, format: f }) })) msgs.push(read(m));
        const docs = reassemble(msgs);
        expect([f, docs.length]).toEqual([f, 2]);
        docs.forEach((doc, i) => expect([f, i, pyDecode(f, doc, 'events')]).toEqual([f, i, { out: normal({ type: 'events', events: batches[i] }) }]));
      }
    } finally {
      c.close();
      d.close();
    }
  });
});
