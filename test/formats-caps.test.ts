// Capability bit 4 (grpc): clear on a default daemon (the gRPC endpoint is off unless --grpc), set
// with --grpc; `accel caps show` says why the bit is clear, in text and JSON.
import { type Daemon, startDaemon } from '../device';
import { CMD, RAS_FORMAT } from '../device/gen/accel';
import { connectAccel } from '../device/client';
import { runAccel } from './helpers/cli';

const PORT = 0x41570000 + (process.pid & 0xfff);
const GRPC_BIT = 1 << RAS_FORMAT.GRPC;
let d: Daemon | undefined;
beforeAll(async () => { await require('../bin/build.js').build(); }); // fresh bundle once
afterEach(() => { d?.close(); d = undefined; });

async function capsBits(): Promise<number[]> {
  const c = await connectAccel({ serverPort: PORT });
  try { return (await c.dump(CMD.CAPS_GET)).map((x) => x.formats as number); } finally { c.close(); }
}

test('default daemon: bit 4 clear on every device, and accel caps show says why', async () => {
  d = startDaemon({ port: PORT, config: 'devices: [{}, {}]', tick: false });
  expect(GRPC_BIT).toBe(0x10);
  const bits = await capsBits();
  expect(bits).toHaveLength(2);
  for (const b of bits) { expect(b & GRPC_BIT).toBe(0); expect(b & 1 << RAS_FORMAT.CBOR).not.toBe(0); }

  const r = await runAccel(['caps', 'show'], { port: PORT });
  expect(r.code).toBe(0);
  const blocks = r.stdout.split(/\n(?=\S)/);
  expect(blocks).toHaveLength(2);
  for (const b of blocks) {
    expect(b).toMatch(/\n {2}formats [a-z0-9 -]+\n/);
    expect(b.match(/\n {2}formats ([a-z0-9 -]+)\n/)![1].split(" ")).not.toContain("grpc");
    expect(b).toMatch(/\n {2}grpc not offered: capability bit 4 is set only while the daemon runs its gRPC endpoint \(off by default; accel daemon --grpc ADDR\)/);
  }
  const j = JSON.parse((await runAccel(['-j', 'caps', 'show', 'accel0'], { port: PORT })).stdout);
  const dev = Object.values(j.caps)[0] as { formats: string[]; note: string };
  expect(dev.formats).not.toContain('grpc');
  expect(dev.note).toMatch(/^grpc not offered: .*--grpc ADDR/);
  expect((await runAccel(['caps', 'help'], { port: PORT })).stdout + (await runAccel(['caps', 'help'], { port: PORT })).stderr)
    .toMatch(/off by default: start it with accel daemon --grpc ADDR/);
});

test('daemon with --grpc: bit 4 set with the endpoint, no note', async () => {
  d = startDaemon({ port: PORT, config: 'devices: [{}]', tick: false, grpc: '127.0.0.1:0' });
  const endpoint = await d.grpc!.ready;
  expect((await capsBits())[0] & GRPC_BIT).toBe(GRPC_BIT);
  const r = await runAccel(['caps', 'show'], { port: PORT });
  expect(r.code).toBe(0);
  expect(r.stdout.match(/\n {2}formats ([a-z0-9 -]+)\n/)![1].split(" ")).toContain("grpc");
  expect(r.stdout).toContain(`endpoint ${endpoint}`);
  expect(r.stdout).not.toContain('not offered');
});
