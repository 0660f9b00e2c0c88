// accel exporter, spawned against a real daemon, scraped over HTTP on 127.0.0.1: every series
// present (zeros included), values that follow injections, resets and health changes without
// polling, and device hot-plug.
import * as http from 'http';
import { type Daemon, startDaemon } from '../device';
import { type AccelClient, connectAccel } from '../device/client';
import { CMD } from '../device/gen/accel';
import { BLOCKS, SEVERITIES } from '../device/enums';
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

test('listens on 127.0.0.1; every series is present, zeros included, with dcgm-style labels', async () => {
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const { status, body } = await get(url);
  expect(status).toBe(200);
  expect(body).toMatch(/# TYPE ACCEL_FI_DEV_RAS_VOL_TOTAL counter/);
  expect(body).toMatch(/# TYPE ACCEL_FI_DEV_TEMP gauge/);
  for (const dev of ['0', '1']) {
    for (const block of BLOCKS) {
      for (const severity of SEVERITIES) {
        expect(value(body, 'ACCEL_FI_DEV_RAS_VOL_TOTAL', { accel: dev, block, severity })).toBe(0);
        expect(value(body, 'ACCEL_FI_DEV_RAS_AGG_TOTAL', { accel: dev, block, severity })).toBe(0);
      }
    }
    for (const reporter of ['fw', 'mem', 'pcie', 'thermal', 'core']) {
      expect(value(body, 'ACCEL_FI_DEV_HEALTH_REPORTER_STATE', { accel: dev, reporter })).toBe(0);
    }
    expect(value(body, 'ACCEL_FI_DEV_RETIRED_ROWS_PENDING', { accel: dev })).toBe(0);
    expect(value(body, 'ACCEL_FI_DEV_STATE', { accel: dev, state: 'operational' })).toBe(1);
    expect(value(body, 'ACCEL_FI_DEV_STATE', { accel: dev, state: 'offline' })).toBe(0);
  }
  expect(body).toMatch(/ACCEL_FI_DEV_TEMP\{accel="0",device="accel0",pci_bus_id="0000:03:00.0",serial="ACNL00001EEF",driver="accelnl_emu",Hostname="[^"]+"\} \d/);
  expect(value(body, 'ACCEL_FI_DEV_POWER_LIMIT', { accel: '1' })).toBe(300);
  expect((await get(url.replace('/metrics', '/'))).status).toBe(404);
});

test('injections, clears, resets and health changes show up without polling', async () => {
  await admin.do(CMD.RAS_INJECT, { devIndex: 1, block: 'hbm', severity: 'correctable', count: 5 });
  await admin.do(CMD.RAS_INJECT, { devIndex: 1, block: 'hbm', severity: 'uncorrectable-nonfatal', address: 0x9000 });
  let body = await until((b) => value(b, 'ACCEL_FI_DEV_RAS_VOL_TOTAL', { accel: '1', block: 'hbm', severity: 'uncorrectable-nonfatal' }) === 1 &&
    value(b, 'ACCEL_FI_DEV_RAS_VOL_TOTAL', { accel: '1', block: 'hbm', severity: 'correctable' }) === 5);
  expect(value(body, 'ACCEL_FI_DEV_RAS_VOL_TOTAL', { accel: '1', block: 'hbm', severity: 'correctable' })).toBe(5);
  expect(value(body, 'ACCEL_FI_DEV_RAS_AGG_TOTAL', { accel: '1', block: 'hbm', severity: 'correctable' })).toBe(5);
  expect(value(body, 'ACCEL_FI_DEV_RAS_VOL_TOTAL', { accel: '0', block: 'hbm', severity: 'correctable' })).toBe(0);
  expect(value(body, 'ACCEL_FI_DEV_RETIRED_ROWS_PENDING', { accel: '1' })).toBe(1);
  expect(value(body, 'ACCEL_FI_DEV_BAD_PAGES', { accel: '1' })).toBe(1);
  expect(value(body, 'ACCEL_EXP_RAS_EVENTS_TOTAL', { how: 'live' })).toBeGreaterThanOrEqual(2);

  await admin.do(CMD.RAS_CLEAR, { devIndex: 1 });
  await admin.do(CMD.RAS_INJECT, { devIndex: 1, block: 'pcie', severity: 'correctable' }); // the clear has no event of its own
  body = await until((b) => value(b, 'ACCEL_FI_DEV_RAS_VOL_TOTAL', { accel: '1', block: 'hbm', severity: 'correctable' }) === 0);
  expect(value(body, 'ACCEL_FI_DEV_RAS_AGG_TOTAL', { accel: '1', block: 'hbm', severity: 'correctable' })).toBe(5);

  await admin.do(CMD.RAS_INJECT, { devIndex: 0, block: 'firmware', severity: 'uncorrectable-fatal' });
  body = await until((b) => value(b, 'ACCEL_FI_DEV_STATE', { accel: '0', state: 'needs-reset' }) === 1 &&
    value(b, 'ACCEL_FI_DEV_HEALTH_REPORTER_STATE', { accel: '0', reporter: 'fw' }) === 1);
  expect(value(body, 'ACCEL_FI_DEV_STATE', { accel: '0', state: 'operational' })).toBe(0);
  expect(value(body, 'ACCEL_FI_DEV_HEALTH', { accel: '0' })).toBe(2);
  expect(value(body, 'ACCEL_FI_DEV_HEALTH_REPORTER_STATE', { accel: '0', reporter: 'fw' })).toBe(1);
  expect(value(body, 'ACCEL_FI_DEV_HEALTH_REPORTER_ERRORS', { accel: '0', reporter: 'fw' })).toBe(1);

  await admin.do(CMD.DEV_SET, { devIndex: 0, action: 'reset' });
  body = await until((b) => value(b, 'ACCEL_FI_DEV_RESETS', { accel: '0' }) === 1 && value(b, 'ACCEL_FI_DEV_STATE', { accel: '0', state: 'operational' }) === 1 &&
    value(b, 'ACCEL_FI_DEV_RAS_VOL_TOTAL', { accel: '0', block: 'firmware', severity: 'uncorrectable-fatal' }) === 0);
  expect(value(body, 'ACCEL_FI_DEV_RAS_VOL_TOTAL', { accel: '0', block: 'firmware', severity: 'uncorrectable-fatal' })).toBe(0);
  expect(value(body, 'ACCEL_FI_DEV_RAS_AGG_TOTAL', { accel: '0', block: 'firmware', severity: 'uncorrectable-fatal' })).toBe(1);
});

test('hot-plugged devices appear and removed ones disappear', async () => {
  await admin.do(CMD.DEV_NEW, { devIndex: 5, busAddr: '0000:0c:00.0' });
  let body = await until((b) => value(b, 'ACCEL_FI_DEV_STATE', { accel: '5', state: 'operational' }) === 1 &&
    value(b, 'ACCEL_FI_DEV_RAS_VOL_TOTAL', { accel: '5', block: 'dma', severity: 'deferred' }) !== undefined);
  expect(value(body, 'ACCEL_FI_DEV_RAS_VOL_TOTAL', { accel: '5', block: 'dma', severity: 'deferred' })).toBe(0);
  await admin.do(CMD.DEV_DEL, { devIndex: 5 });
  body = await until((b) => value(b, 'ACCEL_FI_DEV_STATE', { accel: '5', state: 'operational' }) === undefined);
  expect(value(body, 'ACCEL_FI_DEV_STATE', { accel: '1', state: 'operational' })).toBe(1);
});

test("the daemon's server counters, refreshed every --interval", async () => {
  const plain = (body: string, name: string): number | undefined => {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(body);
    return m ? Number(m[1]) : undefined;
  };
  const fast = startAccel(['exporter', '--listen', '127.0.0.1:0', '--interval', '100'], { port: PORT });
  try {
    const u = (await fast.waitFor(/http:\/\/127\.0\.0\.1:\d+\/metrics/)).toString();
    const before = (await get(u)).body;
    const msgs = plain(before, 'ACCEL_SERVER_MESSAGES_TOTAL')!;
    expect(msgs).toBeGreaterThan(0);
    expect(plain(before, 'ACCEL_SERVER_DROPPED_TOTAL')).toBe(0);
    expect(plain(before, 'ACCEL_SERVER_BACKLOG_BYTES')).toBe(0);
    const enodev = value(before, 'ACCEL_SERVER_ERRORS_TOTAL', { errno: 'ENODEV' }) ?? 0;
    await expect(admin.do(CMD.DEV_GET, { devIndex: 99 })).rejects.toMatchObject({ errno: 19 });
    const end = Date.now() + 5000;
    let after = before;
    while (value(after, 'ACCEL_SERVER_ERRORS_TOTAL', { errno: 'ENODEV' }) !== enodev + 1 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
      after = (await get(u)).body;
    }
    expect(value(after, 'ACCEL_SERVER_ERRORS_TOTAL', { errno: 'ENODEV' })).toBe(enodev + 1);
    expect(plain(after, 'ACCEL_SERVER_MESSAGES_TOTAL')).toBeGreaterThan(msgs);
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
