// RAS records for format tests: every block, severity, kind and action, and the edge values
// (u64 max, u32 max, zero, empty strings, empty and maximal syndromes).
import { ACTIONS, BLOCKS, EVENT_KINDS, SEVERITIES } from '../../device/enums';
import type { CountersRec, EventRec } from '../../device/formats';

export const U64_MAX = 0xffffffffffffffffn;
export const U32_MAX = 0xffffffff;
const syn = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
const SYN_LENS = [0, 256, 1, 3, 4, 5, 255, 8];
const U64S = [0n, 1n, 0xffffffffn, 0x100000000n, (1n << 53n) - 1n, 1n << 53n, (1n << 53n) + 1n, 1n << 63n, U64_MAX];
const U32S = [0, 1, 0x7fffffff, 0x80000000, U32_MAX];

/** One event per block x severity (44), cycling kinds, actions and edge values. */
export function edgeEvents(): EventRec[] {
  const out: EventRec[] = [];
  let i = 0;
  for (const block of BLOCKS) {
    for (const severity of SEVERITIES) {
      out.push({
        dev: U32S[i % U32S.length], seq: U64S[i % U64S.length], tsNs: U64S[(i + 3) % U64S.length],
        kind: EVENT_KINDS[i % EVENT_KINDS.length], block, severity, errorId: U32S[(i + 1) % U32S.length],
        errorName: i % 3 === 0 ? '' : block, count: U32S[(i + 2) % U32S.length], address: U64S[(i + 5) % U64S.length],
        syndrome: syn(SYN_LENS[i % SYN_LENS.length], i), action: ACTIONS[i % ACTIONS.length],
        folded: U32S[(i + 3) % U32S.length], firstTsNs: U64S[(i + 7) % U64S.length], lastTsNs: U64_MAX,
      });
      i++;
    }
  }
  return out;
}

/** A counter snapshot with every block x severity and edge counts. */
export function edgeCounters(): CountersRec {
  let i = 0;
  const counters = BLOCKS.flatMap((block) => SEVERITIES.map((severity) => {
    i++;
    return { block, severity, volatileCount: U64S[i % U64S.length], aggregateCount: U64S[(i + 4) % U64S.length] };
  }));
  return { dev: U32_MAX, tsNs: U64_MAX, cursor: U64_MAX, counters, rowsActive: U32_MAX, rowsPending: 0, rmaThreshold: 64, rma: true };
}

/** A typical event: an HBM correctable error with an 8-byte syndrome. */
export const typicalEvent = (): EventRec => ({
  dev: 0, seq: 1234n, tsNs: 1_767_225_600_123_456_789n, kind: 'error', block: 'hbm', severity: 'correctable', errorId: 1,
  errorName: 'hbm', count: 1, address: 0x3_2000_1040n, syndrome: Uint8Array.from([0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]),
  action: 'none', folded: 0, firstTsNs: 0n, lastTsNs: 0n,
});

/** KEY_VAL_32 carries counters as saturating u32s. */
export const saturated = (c: CountersRec): CountersRec => ({
  ...c, counters: c.counters.map((x) => ({
    ...x, volatileCount: x.volatileCount > 0xffffffffn ? 0xffffffffn : x.volatileCount,
    aggregateCount: x.aggregateCount > 0xffffffffn ? 0xffffffffn : x.aggregateCount,
  })),
});
