// Time and randomness, injectable so that tests and seeded demos are deterministic.

export interface Clock {
  /** Wall-clock nanoseconds since the epoch. */
  nowNs(): bigint;
  /** Monotonic milliseconds, for rate limits and grace periods. */
  nowMs(): number;
}

const base = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
export const realClock: Clock = {
  nowNs: () => base + process.hrtime.bigint(),
  nowMs: () => Number(process.hrtime.bigint() / 1_000_000n),
};

/** A clock that moves only when told: for tests. */
export function manualClock(startMs = 1_700_000_000_000): Clock & { advance(ms: number): void } {
  let ms = startMs;
  return {
    nowNs: () => BigInt(Math.floor(ms)) * 1_000_000n + BigInt(Math.round((ms % 1) * 1e6)),
    nowMs: () => ms,
    advance(d: number) { ms += d; },
  };
}

/** mulberry32: a small, fast, seedable PRNG; returns floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
