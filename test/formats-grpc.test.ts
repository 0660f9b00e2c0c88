// The gRPC service with a real gRPC client on loopback: @grpc/grpc-js with the service and messages
// loaded from docs/formats/ras.proto by @grpc/proto-loader (protobufjs), not from our generated code.
// Counter reads, the event stream, resume after a disconnect with nothing lost or duplicated,
// replay of what the ring still holds, and the error statuses.
import * as path from 'path';
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import * as G from '../genl';
import { manualClock, startDaemon } from '../device';
import { inject } from '../device/ras';

const PORT = 0x41434345;
const def = loader.loadSync(path.join(__dirname, '../docs/formats/ras.proto'), { longs: String, enums: String, defaults: true, keepCase: true });
const Ras = (grpc.loadPackageDefinition(def) as unknown as { accelnl: { ras: { v1: { Ras: grpc.ServiceClientConstructor } } } }).accelnl.ras.v1.Ras;

interface Ev { dev: number; seq: string; kind: string; block: string; severity: string; syndrome: Buffer; error_name: string }
type Client = grpc.Client & {
  GetCounters(r: object, cb: (e: grpc.ServiceError | null, v: { dev: number; cursor: string; counters: { block: string; severity: string; volatile_count: string }[] }) => void): void;
  StreamEvents(r: object): grpc.ClientReadableStream<Ev>;
};

let d: ReturnType<typeof startDaemon>;
let client: Client;
beforeEach(async () => {
  const hub = G.newHub();
  d = startDaemon({ port: PORT, tick: false, clock: manualClock(), grpc: '127.0.0.1:0', config: 'devices:\n  - {}\n  - { log-capacity: 16 }\n',
    open: (onBatch) => G.openInproc(hub, { port: PORT, onBatch }) });
  const endpoint = await d.grpc!.ready;
  client = new Ras(endpoint, grpc.credentials.createInsecure()) as unknown as Client;
});
afterEach(() => { client.close(); d.close(); });

const hbm = (i: number) => inject(d.rt.emu, d.rt.emu.devices.get(0)!, { block: 'sram', severity: 'deferred', address: BigInt(i) << 12n, syndrome: Uint8Array.of(i & 0xff) });
const counters = (dev: number) => new Promise<Parameters<Parameters<Client['GetCounters']>[1]>[1]>((res, rej) => client.GetCounters({ dev_index: dev }, (e, v) => (e ? rej(e) : res(v))));

/** Collect `n` events from a stream, then cancel it (the disconnect). */
function take(req: object, n: number, onFirst?: () => void): Promise<{ events: Ev[]; lost: string | undefined }> {
  return new Promise((resolve, reject) => {
    const events: Ev[] = [];
    let lost: string | undefined;
    const s = client.StreamEvents(req);
    s.on('metadata', (md) => { lost = String(md.get('accel-lost')[0]); onFirst?.(); });
    s.on('data', (e: Ev) => {
      events.push(e);
      if (events.length === n) { s.cancel(); resolve({ events, lost }); }
    });
    s.on('error', (e: grpc.ServiceError) => { if (e.code !== grpc.status.CANCELLED) reject(e); });
  });
}

test('GetCounters: a real client reads a device\'s counters', async () => {
  inject(d.rt.emu, d.rt.emu.devices.get(0)!, { block: 'dma', severity: 'uncorrectable-nonfatal', count: 3 });
  const c = await counters(0);
  expect(c.dev).toBe(0);
  expect(c.cursor).toBe('2');
  expect(c.counters).toHaveLength(44);
  expect(c.counters.find((x) => x.block === 'BLOCK_DMA' && x.severity === 'SEVERITY_UNCORRECTABLE_NONFATAL')!.volatile_count).toBe('3');
  await expect(counters(7)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
});

test('StreamEvents: replay, live, disconnect, resume from the next seq: every event once, in order', async () => {
  for (let i = 0; i < 5; i++) hbm(i); // seq 1..5, before anyone listens
  // First connection: replay from 1, then live events injected once the stream is open.
  const first = await take({ dev_index: 0, from_seq: 1 }, 8, () => { for (let i = 5; i < 8; i++) hbm(i); });
  expect(first.lost).toBe('0');
  expect(first.events.map((e) => e.seq)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8']);
  expect(first.events[0]).toMatchObject({ dev: 0, kind: 'EVENT_KIND_ERROR', block: 'BLOCK_SRAM', severity: 'SEVERITY_DEFERRED', error_name: 'sram' });
  expect(first.events[7].syndrome).toEqual(Buffer.of(7));
  // Disconnected: events keep coming.
  for (let i = 8; i < 12; i++) hbm(i);
  // Resume from the last seq received + 1, with more live events after reconnecting.
  const last = Number(first.events[first.events.length - 1].seq);
  const second = await take({ dev_index: 0, from_seq: last + 1 }, 6, () => { hbm(12); hbm(13); });
  expect(second.events.map((e) => Number(e.seq))).toEqual([9, 10, 11, 12, 13, 14]);
  const all = [...first.events, ...second.events].map((e) => Number(e.seq));
  expect(new Set(all).size).toBe(all.length);
  expect(all).toEqual(Array.from({ length: 14 }, (_, i) => i + 1));
});

test('StreamEvents: records the ring no longer holds are reported as lost in the metadata', async () => {
  const dev1 = d.rt.emu.devices.get(1)!;
  for (let i = 0; i < 20; i++) inject(d.rt.emu, dev1, { block: 'pcie', severity: 'deferred' });
  const r = await take({ dev_index: 1, from_seq: 1 }, 16);
  expect(r.lost).toBe('4');
  expect(r.events.map((e) => Number(e.seq))).toEqual(Array.from({ length: 16 }, (_, i) => i + 5));
});

test('StreamEvents of every device, live only; errors for bad requests', async () => {
  const r = take({}, 2, () => { hbm(0); inject(d.rt.emu, d.rt.emu.devices.get(1)!, { block: 'mmu', severity: 'deferred' }); });
  expect((await r).events.map((e) => [e.dev, e.seq])).toEqual([[0, '1'], [1, '1']]);
  await expect(take({ from_seq: 3 }, 1)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  await expect(take({ dev_index: 9 }, 1)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
});

test('a device configured without grpc is refused', async () => {
  client.close();
  d.close();
  const hub = G.newHub();
  d = startDaemon({ port: PORT, tick: false, clock: manualClock(), grpc: '127.0.0.1:0', config: 'devices:\n  - { formats: [json] }\n',
    open: (onBatch) => G.openInproc(hub, { port: PORT, onBatch }) });
  client = new Ras(await d.grpc!.ready, grpc.credentials.createInsecure()) as unknown as Client;
  await expect(counters(0)).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: 'accel0 does not offer grpc' });
});
