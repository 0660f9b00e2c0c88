// The normal form every independent decoder of a RAS payload is compared in: snake_case names,
// integers as decimal strings, enums as their numbers (strings), bytes as lowercase hex.
import { ACTIONS, BLOCKS, EVENT_KINDS, SEVERITIES } from '../../device/enums';
import type { Doc } from '../../device/formats';

export type N = Record<string, unknown>;
const d = (v: number | bigint): string => BigInt(v).toString();
const en = (list: readonly string[], v: string): string => String(list.indexOf(v));

export function normal(doc: Doc): N {
  if (doc.type === 'events') {
    return {
      events: doc.events.map((e) => ({
        dev: d(e.dev), seq: d(e.seq), ts_ns: d(e.tsNs), kind: en(EVENT_KINDS, e.kind), block: en(BLOCKS, e.block),
        severity: en(SEVERITIES, e.severity), error_id: d(e.errorId), error_name: e.errorName, count: d(e.count),
        address: d(e.address), syndrome: Buffer.from(e.syndrome).toString('hex'), action: en(ACTIONS, e.action),
        folded: d(e.folded), first_ts_ns: d(e.firstTsNs), last_ts_ns: d(e.lastTsNs),
      })),
    };
  }
  const c = doc.counters;
  return {
    counters: {
      dev: d(c.dev), ts_ns: d(c.tsNs), cursor: d(c.cursor),
      counters: c.counters.map((x) => ({ block: en(BLOCKS, x.block), severity: en(SEVERITIES, x.severity), volatile_count: d(x.volatileCount), aggregate_count: d(x.aggregateCount) })),
      rows_active: d(c.rowsActive), rows_pending: d(c.rowsPending), rma_threshold: d(c.rmaThreshold), rma: c.rma,
    },
  };
}
