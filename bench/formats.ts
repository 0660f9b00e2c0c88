// RAS payload formats: encode throughput and payload size for a typical event (an HBM correctable
// error with an 8-byte syndrome), for a 256-record log batch, and for a counter snapshot; plus
// decode throughput of the event. Every format goes through the same record model and the daemon's
// own encoders (device/formats), so the numbers are what a ras-event-ntf, ras-log-get or ras-get costs.
import { CODECS, type Doc, FORMATS } from '../device/formats';
import { BLOCKS, SEVERITIES } from '../device/enums';
import { fmt, quick, rate, report, table } from './_lib';

const event = {
  dev: 0, seq: 1234n, tsNs: 1_767_225_600_123_456_789n, kind: 'error' as const, block: 'hbm' as const,
  severity: 'correctable' as const, errorId: 1, errorName: 'hbm', count: 1, address: 0x3_2000_1040n,
  syndrome: Uint8Array.from([0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]), action: 'none' as const, folded: 0, firstTsNs: 0n, lastTsNs: 0n,
};
const one: Doc = { type: 'events', events: [event] };
const batch: Doc = { type: 'events', events: Array.from({ length: 256 }, (_, i) => ({ ...event, seq: 1234n + BigInt(i), tsNs: event.tsNs + BigInt(i) * 1000n })) };
const counters: Doc = {
  type: 'counters',
  counters: {
    dev: 0, tsNs: event.tsNs, cursor: 1490n, rowsActive: 2, rowsPending: 1, rmaThreshold: 64, rma: false,
    counters: BLOCKS.flatMap((block, b) => SEVERITIES.map((severity, s) => ({ block, severity, volatileCount: BigInt(b * s * 3), aggregateCount: BigInt(b * s * 7) }))),
  },
};

const rows = [];
for (const f of FORMATS) {
  const c = CODECS[f];
  const bytes = c.encode(one);
  const enc = rate((n) => { for (let i = 0; i < n; i++) c.encode(one); });
  const dec = rate((n) => { for (let i = 0; i < n; i++) c.decode(bytes, 'events'); });
  const encBatch = rate((n) => { for (let i = 0; i < n; i++) c.encode(batch); }, quick ? 100 : 500, quick ? 3 : 5);
  const encCounters = rate((n) => { for (let i = 0; i < n; i++) c.encode(counters); }, quick ? 100 : 500, quick ? 3 : 5);
  rows.push({
    format: f, 'event bytes': bytes.length, 'encode event/s': fmt(enc), 'decode event/s': fmt(dec),
    'batch bytes': c.encode(batch).length, 'batch events/s': fmt(encBatch * 256),
    'counters bytes': c.encode(counters).length, 'counters/s': fmt(encCounters),
  });
}
table('RAS payload formats: one typical event, a 256-event log batch, a counter snapshot (44 counters)', rows);
report('formats', { node: process.version, rows });
