// accel exporter, spawned against a real daemon, scraped over HTTP on 127.0.0.1: every series
// present (zeros included), values that follow injections, resets and health changes without
// polling, device hot-plug; the exposition read by an independent parser (Debian's
// python3-prometheus-client); counters that never decrease; and a daemon that is absent, dies and
// comes back (accel_up, no stale series, reconnection).
import { spawnSync } from 'child_process';
import * as http from 'http';
import { type Daemon, startDaemon } from '../device';
import { type AccelClient, connectAccel } from '../device/client';
import { CMD } from '../device/gen/accel';
import { BLOCKS, SEVERITIES } from '../device/enums';
import * as fs from 'fs';
import * as path from 'path';
import { type Running, runAccel, startAccel } from './helpers/cli';

const PORT = 0x41490000 + (process.pid & 0xfff);
let d: Daemon;
let admin: AccelClient;
let exp: Running;
let url: string;

beforeAll(async () => {
  await require('../bin/build.js').build();
  d = startDaemon({ port: PORT, config: 'devices: [{}, {}]', tick: false });
  admin = await connectAccel({ serverPort: PORT });
  // Telemetry refresh slowed right down: everything below must arrive through events.
  exp = startAccel(['exporter', '--listen', '127.0.0.1:0', '--interval', '600000'], { port: PORT });
  url = (await exp.waitFor(/http:\/\/127\.0\.0\.1:\d+\/metrics/)).toString();
});
afterAll(async () => { await exp?.stop(); admin.close(); d.close(); });

const get = (u: string): Promise<{ status: number; body: string }> => new Promise((resolve, reject) => {
  http.get(u, (res) => {
    let body = '';
    res.on('data', (c) => { body += c; });
    res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
  }).on('error', reject);
});

/** The value of one series, by name and label subset. */
function value(body: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of body.split('\n')) {
    const m = /^(\w+)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const ls = Object.fromEntries([...m[2].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => ls[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** Scrape until `check` passes (events are asynchronous), or fail with the last body. */
async function until(check: (body: string) => boolean, ms = 5000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const { body } = await get(url);
    if (check(body)) return body;
    if (Date.now() > end) throw new Error(`metrics never matched:\n${body.split('\n').filter((l) => !l.startsWith('#')).slice(0, 40).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('listens on 127.0.0.1; every series is present, zeros included; base units; an info metric with the identity', async () => {
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const { status, body } = await get(url);
  expect(status).toBe(200);
  expect(body).toMatch(/# TYPE accel_ras_errors_total counter/);
  expect(body).toMatch(/# TYPE accel_temperature_celsius gauge/);
  expect(body).toMatch(/^accel_up 1$/m);
  for (const dev of ['0', '1']) {
    for (const block of BLOCKS) {
      for (const severity of SEVERITIES) {
        expect(value(body, 'accel_ras_errors_volatile', { accel: dev, block, severity })).toBe(0);
        expect(value(body, 'accel_ras_errors_total', { accel: dev, block, severity })).toBe(0);
      }
    }
    for (const reporter of ['fw', 'mem', 'pcie', 'thermal', 'core']) {
      expect(value(body, 'accel_health_reporter_state', { accel: dev, reporter })).toBe(0);
    }
    expect(value(body, 'accel_retired_rows_pending', { accel: dev })).toBe(0);
    expect(value(body, 'accel_state', { accel: dev, state: 'operational' })).toBe(1);
    expect(value(body, 'accel_state', { accel: dev, state: 'offline' })).toBe(0);
  }
  expect(body).toMatch(/^accel_temperature_celsius\{accel="0",device="accel0",pci_bus_id="0000:03:00.0"\} \d/m);
  expect(body).toMatch(/^accel_device_info\{accel="0",device="accel0",pci_bus_id="0000:03:00.0",uuid="ACCEL-[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",serial="ACNL00001EEF",model="ACNL-EMU-1",firmware="1.4.2",driver="accelnl_emu",Hostname="[^"]+"\} 1$/m);
  expect(value(body, 'accel_power_limit_watts', { accel: '1' })).toBe(300);
  expect(value(body, 'accel_memory_total_bytes', { accel: '1' })).toBe(16 * 2 ** 30);
  expect(value(body, 'accel_clock_max_hertz', { accel: '1' })).toBe(1.8e9);
  expect(value(body, 'accel_utilization_ratio', { accel: '1' })).toBeLessThanOrEqual(1);
  expect((await get(url.replace('/metrics', '/'))).status).toBe(404);
});

test('injections, clears, resets and health changes show up without polling', async () => {
  await admin.do(CMD.RAS_INJECT, { devIndex: 1, block: 'hbm', severity: 'correctable', count: 5 });
  await admin.do(CMD.RAS_INJECT, { devIndex: 1, block: 'hbm', severity: 'uncorrectable-nonfatal', address: 0x9000 });
  let body = await until((b) => value(b, 'accel_ras_errors_volatile', { accel: '1', block: 'hbm', severity: 'uncorrectable-nonfatal' }) === 1 &&
    value(b, 'accel_ras_errors_volatile', { accel: '1', block: 'hbm', severity: 'correctable' }) === 5);
  expect(value(body, 'accel_ras_errors_volatile', { accel: '1', block: 'hbm', severity: 'correctable' })).toBe(5);
  expect(value(body, 'accel_ras_errors_total', { accel: '1', block: 'hbm', severity: 'correctable' })).toBe(5);
  expect(value(body, 'accel_ras_errors_volatile', { accel: '0', block: 'hbm', severity: 'correctable' })).toBe(0);
  expect(value(body, 'accel_retired_rows_pending', { accel: '1' })).toBe(1);
  expect(value(body, 'accel_bad_pages', { accel: '1' })).toBe(1);
  expect(value(body, 'accel_exporter_ras_events_total', { how: 'live' })).toBeGreaterThanOrEqual(2);

  await admin.do(CMD.RAS_CLEAR, { devIndex: 1 });
  await admin.do(CMD.RAS_INJECT, { devIndex: 1, block: 'pcie', severity: 'correctable' }); // the clear has no event of its own
  body = await until((b) => value(b, 'accel_ras_errors_volatile', { accel: '1', block: 'hbm', severity: 'correctable' }) === 0);
  expect(value(body, 'accel_ras_errors_total', { accel: '1', block: 'hbm', severity: 'correctable' })).toBe(5);

  await admin.do(CMD.RAS_INJECT, { devIndex: 0, block: 'firmware', severity: 'uncorrectable-fatal' });
  body = await until((b) => value(b, 'accel_state', { accel: '0', state: 'needs-reset' }) === 1 &&
    value(b, 'accel_health_reporter_state', { accel: '0', reporter: 'fw' }) === 1);
  expect(value(body, 'accel_state', { accel: '0', state: 'operational' })).toBe(0);
  expect(value(body, 'accel_health', { accel: '0' })).toBe(2);
  expect(value(body, 'accel_health_reporter_state', { accel: '0', reporter: 'fw' })).toBe(1);
  expect(value(body, 'accel_health_reporter_errors_total', { accel: '0', reporter: 'fw' })).toBe(1);

  await admin.do(CMD.DEV_SET, { devIndex: 0, action: 'reset' });
  body = await until((b) => value(b, 'accel_resets_total', { accel: '0' }) === 1 && value(b, 'accel_state', { accel: '0', state: 'operational' }) === 1 &&
    value(b, 'accel_ras_errors_volatile', { accel: '0', block: 'firmware', severity: 'uncorrectable-fatal' }) === 0);
  expect(value(body, 'accel_ras_errors_volatile', { accel: '0', block: 'firmware', severity: 'uncorrectable-fatal' })).toBe(0);
  expect(value(body, 'accel_ras_errors_total', { accel: '0', block: 'firmware', severity: 'uncorrectable-fatal' })).toBe(1);
});

test('hot-plugged devices appear and removed ones disappear', async () => {
  await admin.do(CMD.DEV_NEW, { devIndex: 5, busAddr: '0000:0c:00.0' });
  let body = await until((b) => value(b, 'accel_state', { accel: '5', state: 'operational' }) === 1 &&
    value(b, 'accel_ras_errors_volatile', { accel: '5', block: 'dma', severity: 'deferred' }) !== undefined);
  expect(value(body, 'accel_ras_errors_volatile', { accel: '5', block: 'dma', severity: 'deferred' })).toBe(0);
  await admin.do(CMD.DEV_DEL, { devIndex: 5 });
  body = await until((b) => value(b, 'accel_state', { accel: '5', state: 'operational' }) === undefined);
  expect(value(body, 'accel_state', { accel: '1', state: 'operational' })).toBe(1);
});

/** The value of an unlabelled series. */
const plain = (body: string, name: string): number | undefined => {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(body);
  return m ? Number(m[1]) : undefined;
};

test("the daemon's server counters, refreshed every --interval", async () => {
  const fast = startAccel(['exporter', '--listen', '127.0.0.1:0', '--interval', '100'], { port: PORT });
  try {
    const u = (await fast.waitFor(/http:\/\/127\.0\.0\.1:\d+\/metrics/)).toString();
    const before = (await get(u)).body;
    const msgs = plain(before, 'accel_server_messages_total')!;
    expect(msgs).toBeGreaterThan(0);
    expect(plain(before, 'accel_server_dropped_total')).toBe(0);
    expect(plain(before, 'accel_server_backlog_bytes')).toBe(0);
    const enodev = value(before, 'accel_server_errors_total', { errno: 'ENODEV' }) ?? 0;
    await expect(admin.do(CMD.DEV_GET, { devIndex: 99 })).rejects.toMatchObject({ errno: 19 });
    const end = Date.now() + 5000;
    let after = before;
    while (value(after, 'accel_server_errors_total', { errno: 'ENODEV' }) !== enodev + 1 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
      after = (await get(u)).body;
    }
    expect(value(after, 'accel_server_errors_total', { errno: 'ENODEV' })).toBe(enodev + 1);
    expect(plain(after, 'accel_server_messages_total')).toBeGreaterThan(msgs);
  } finally {
    await fast.stop();
  }
});

test('a listen address in use is a runtime failure (exit 1), and the exporter exits (it used to hang)', async () => {
  const port = new URL(url).port;
  const r = await runAccel(['exporter', '--listen', `127.0.0.1:${port}`], { port: PORT, timeoutMs: 10000 });
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(new RegExp(`^Cannot listen on 127\\.0\\.0\\.1:${port}: listen EADDRINUSE`));
});

/** Families as prometheus_client's own text parser reads them (the reference implementation's parser). */
const PARSER = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]})
print(json.dumps(out))
`;
const parserMissing = ((): string | undefined => {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import prometheus_client.parser'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `/usr/bin/python3 cannot import prometheus_client (apt-get install python3-prometheus-client): ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`;
})();
interface Family { name: string; type: string; samples: { name: string; labels: Record<string, string>; value: number }[] }
function parse(body: string): Family[] {
  const r = spawnSync('/usr/bin/python3', ['-c', PARSER], { input: body, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`prometheus_client rejected the exposition: ${r.stderr}`);
  return JSON.parse(r.stdout) as Family[];
}
const itParsed = parserMissing ? it.skip : it;
if (parserMissing) console.warn(`skipping the independent parser checks: ${parserMissing}`);

itParsed('the exposition is valid for prometheus_client: counters end in _total, units in the names, info metric', async () => {
  const fams = parse((await get(url)).body);
  const byName = new Map(fams.map((f) => [f.name, f]));
  for (const f of fams) {
    expect(f.name).toMatch(/^accel_[a-z_]+$/);
    if (f.type === 'counter') {
      // The parser strips _total from a counter's family name; every sample carries it.
      expect({ f: f.name, ok: f.samples.every((x) => x.name === `${f.name}_total`) }).toEqual({ f: f.name, ok: true });
    } else {
      expect({ f: f.name, type: f.type }).toEqual({ f: f.name, type: 'gauge' });
      expect(f.name).not.toMatch(/_total$/);
    }
    for (const x of f.samples) expect(Number.isFinite(x.value)).toBe(true);
  }
  for (const [name, type] of [['accel_ras_errors', 'counter'], ['accel_energy_joules', 'counter'], ['accel_resets', 'counter'],
    ['accel_temperature_celsius', 'gauge'], ['accel_memory_used_bytes', 'gauge'], ['accel_clock_hertz', 'gauge'],
    ['accel_power_watts', 'gauge'], ['accel_utilization_ratio', 'gauge'], ['accel_up', 'gauge'], ['accel_device_info', 'gauge']]) {
    expect({ name, type: byName.get(name)?.type }).toEqual({ name, type });
  }
  const info = byName.get('accel_device_info')!.samples;
  expect(info.map((x) => x.labels.device).sort()).toEqual(['accel0', 'accel1']);
  for (const x of info) {
    expect(x.value).toBe(1);
    expect(x.labels).toMatchObject({ model: 'ACNL-EMU-1', firmware: '1.4.2', uuid: expect.stringMatching(/^ACCEL-/) });
  }
  expect(new Set(info.map((x) => x.labels.uuid)).size).toBe(2);
  // Every metric is documented, with its type.
  const doc = fs.readFileSync(path.join(__dirname, '../docs/metrics.md'), 'utf8');
  for (const f of fams) {
    const sample = f.type === 'counter' ? `${f.name}_total` : f.name;
    expect({ sample, documented: new RegExp(`\\| \`${sample}(\\{[^}]*\\})?\` \\| ${f.type} \\|`).test(doc) }).toEqual({ sample, documented: true });
  }
});

test('no counter ever decreases: a lifetime clear is a counter reset, added on top', async () => {
  const counters = (body: string): Map<string, number> => {
    const m = new Map<string, number>();
    for (const line of body.split('\n')) {
      const x = /^(\w+_total)(\{.*\})? (\S+)$/.exec(line);
      if (x) m.set(`${x[1]}${x[2] ?? ''}`, Number(x[3]));
    }
    return m;
  };
  await admin.do(CMD.RAS_INJECT, { devIndex: 1, block: 'sram', severity: 'deferred', count: 3 });
  const before = counters(await until((b) => value(b, 'accel_ras_errors_total', { accel: '1', block: 'sram', severity: 'deferred' }) === 3));
  await admin.do(CMD.RAS_CLEAR, { devIndex: 1, aggregate: true }); // the daemon's lifetime counters go to 0
  await admin.do(CMD.RAS_INJECT, { devIndex: 1, block: 'sram', severity: 'deferred' }); // 1 on the device now
  const after = counters(await until((b) => value(b, 'accel_ras_errors_total', { accel: '1', block: 'sram', severity: 'deferred' }) === 4));
  const decreased = [...before].filter(([k, v]) => after.has(k) && after.get(k)! < v);
  expect(decreased).toEqual([]);
  expect(before.size).toBeGreaterThan(100);
});

describe('a daemon that is not there, dies and comes back', () => {
  const P2 = 0x414e0000 + (process.pid & 0xfff);
  it('stays up with accel_up 0 and no device series; connects, drops every series when it dies, reconnects', async () => {
    const e = startAccel(['exporter', '--listen', '127.0.0.1:0', '--interval', '200'], { port: P2 });
    let d2: Daemon | undefined;
    try {
      const u = (await e.waitFor(/http:\/\/127\.0\.0\.1:\d+\/metrics/)).toString();
      expect(e.stdout()).toMatch(/^accel exporter: no daemon at netlink port 0x[0-9a-f]+ yet; serving http/);
      const poll = async (check: (b: string) => boolean, what: string): Promise<string> => {
        const end = Date.now() + 8000;
        for (;;) {
          const { body } = await get(u);
          if (check(body)) return body;
          if (Date.now() > end) throw new Error(`never ${what}:\n${body}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      let body = await poll((b) => /^accel_up 0$/m.test(b), 'accel_up 0');
      expect(body).not.toMatch(/^accel_state\{/m);
      d2 = startDaemon({ port: P2, config: 'devices: [{}]', tick: false });
      body = await poll((b) => /^accel_up 1$/m.test(b) && value(b, 'accel_state', { accel: '0', state: 'operational' }) === 1, 'connected');
      const a2 = await connectAccel({ serverPort: P2 });
      await a2.do(CMD.RAS_INJECT, { devIndex: 0, block: 'dma', severity: 'deferred', count: 2 });
      a2.close();
      body = await poll((b) => value(b, 'accel_ras_errors_total', { accel: '0', block: 'dma', severity: 'deferred' }) === 2, 'the injection');
      body = await poll((b) => (plain(b, 'accel_server_messages_total') ?? 0) > 0, 'server counters');
      const served = plain(body, 'accel_server_messages_total')!;
      d2.close(); // gone: no stale series
      d2 = undefined;
      body = await poll((b) => /^accel_up 0$/m.test(b), 'accel_up 0 after the daemon left');
      expect(body).not.toMatch(/^accel_(state|ras_errors_total|device_info)\{/m);
      // The server counters keep their total while the daemon is away (0 and back would be a reset).
      expect(plain(body, 'accel_server_messages_total')).toBeGreaterThanOrEqual(served);
      expect(plain(body, 'accel_server_backlog_bytes')).toBe(0);
      d2 = startDaemon({ port: P2, config: 'devices: [{}]', tick: false }); // a fresh daemon: its counters start at 0
      body = await poll((b) => /^accel_up 1$/m.test(b) && value(b, 'accel_state', { accel: '0', state: 'operational' }) === 1, 'reconnected');
      expect(value(body, 'accel_ras_errors_total', { accel: '0', block: 'dma', severity: 'deferred' })).toBe(2); // not back to 0
      expect(/^accel_exporter_reconnects_total (\d+)$/m.exec(body)?.[1]).not.toBe('0');
    } finally {
      d2?.close();
      await e.stop();
    }
  }, 30000);
});
