// The spec-driven codec (genl/ynl): a device as dev-get dumps it and a RAS event as ras-event-ntf
// multicasts it, written by the spec's writer (writeAttrs, what the daemon uses), by the generated
// typed writer (writeAccel: the same writer, its set bound) and read back. There is one writer
// per set since issue 13 (test/ynl.test.ts pins its bytes). `npm run bench -- ynl`.
import * as A from '../attrs';
import { type Accel, spec, writeAccel } from '../device/gen/accel';
import { readAttrs, writeAttrs } from '../genl/ynl/codec';
import { fmt, quick, rate, report, table } from './_lib';

const device: Accel = {
  devIndex: 3, devName: 'accel3', devPath: '/dev/accel/accel3', busName: 'pci', busAddr: '0000:03:00.0', driver: 'accelnl_emu',
  vendorId: 0x1ded, deviceId: 0xa100, serial: 'ACNL0000A1B2', state: 'operational', memTotal: 16 * 2 ** 30, memUsed: 123456789,
  computeUnits: 64, clockMhz: 1410, clockMaxMhz: 1980, tempMc: 61250, powerMw: 250000, powerLimitMw: 400000, utilPct: 37,
  throttle: 0x1, health: 'ok',
  version: [{ name: 'fw.mgmt', value: '1.2.3', kind: 'running' }, { name: 'board.id', value: 'A100-SXM', kind: 'fixed' }],
  counter: [{ block: 'hbm', severity: 'correctable', volatile: 12, aggregate: 40 }, { block: 'pcie', severity: 'deferred', volatile: 3, aggregate: 3 }],
};
const event: Accel = {
  devIndex: 3,
  event: [{ seq: 1234567, tsNs: 1733450000123456789n, block: 'hbm', severity: 'uncorrectable-nonfatal',
    address: 0x7f001000, count: 1, syndrome: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), action: 'reset-device', kind: 'error' }],
};

const w = A.newWriter(4096);
const enc = (f: typeof writeAttrs, o: Accel): number => { A.resetWriter(w); w.len = 20; f(w, spec, 'accel', o); return w.len; };
/** writeAccel in writeAttrs' shape, so that the same loop times both. */
const viaTyped: typeof writeAttrs = (x, _s, _n, y) => writeAccel(x, y as Accel);
const hex = (f: typeof writeAttrs, o: Accel): string => { enc(f, o); return Buffer.from(A.bytes(w)).toString('hex'); };
for (const o of [device, event]) {
  const typed = hex(viaTyped, o);
  if (typed !== hex(writeAttrs, o)) throw new Error('ynl benchmark setup: writeAccel and writeAttrs disagree');
}
const bytes = { device: A.bytes((enc(writeAttrs, device), w)), event: A.bytes((enc(writeAttrs, event), w)) };
console.log(`messages: device ${bytes.device.length} bytes, event ${bytes.event.length} bytes (with 20 header bytes)`);

let sink = 0;
const rows = [];
const data: Record<string, Record<string, number>> = {};
for (const [name, o] of [['device', device], ['event', event]] as const) {
  const compiled = rate((n) => { for (let i = 0; i < n; i++) sink += enc(writeAttrs, o); });
  const typed = rate((n) => { for (let i = 0; i < n; i++) sink += enc(viaTyped, o); });
  const b = bytes[name];
  const v = A.view(b);
  const read = rate((n) => { for (let i = 0; i < n; i++) sink += Object.keys(readAttrs(v, 20, b.length, spec, 'accel')).length; });
  data[name] = { compiled, typed, read };
  rows.push({
    message: name, 'write msg/s': fmt(compiled), 'writeAccel msg/s': fmt(typed), 'read msg/s': fmt(read),
  });
}
if (sink < 0) console.log(sink);
table(`ynl codec, accel set${quick ? ' (quick)' : ''}`, rows);
report('ynl', data);
