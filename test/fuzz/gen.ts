// Valid attributes from a policy table: what a well-behaved client would send for any op. The
// corpus (corpus.ts) is built from these, and the mutator (mutate.ts) breaks them.
import * as A from '../../attrs';
import { NLA, VALIDATE } from '../../attrs';
import { prng } from '../../device/clock';

export interface Rng {
  next(): number;
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
  chance(p: number): boolean;
}

export function rng(seed: number): Rng {
  const next = prng(seed);
  const int = (n: number): number => Math.floor(next() * n);
  return { next, int, pick: (xs) => xs[int(xs.length)], chance: (p) => next() < p };
}

/** Strings a request to these families plausibly carries (device handles, family and group names). */
export const HINTS = ['accel0', 'accel1', '0000:03:00.0', '0000:04:00.0', 'pci/0000:03:00.0', 'nlctrl', 'accel',
  'drm-ras', 'ras', 'config', 'jobs', 'hbm', 'thermal', 'x'];

/** An integer inside [min, max], biased to small values and the bounds. */
function intIn(r: Rng, min: bigint, max: bigint): bigint {
  const span = max - min;
  switch (r.int(6)) {
    case 0: return min;
    case 1: return max;
    case 2: case 3: { const v = min + BigInt(r.int(3)); return v > max ? max : v; }
    default: return min + (span > 0n ? BigInt(Math.floor(r.next() * Number(span))) % (span + 1n) : 0n);
  }
}

function bytes(r: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = r.int(256);
  return b;
}

/** A string of byte length [lo, hi] (without NUL), from the hints when one fits. */
function str(r: Rng, lo: number, hi: number): string {
  const fit = HINTS.filter((h) => h.length >= lo && h.length <= hi);
  if (fit.length && r.chance(0.8)) return r.pick(fit);
  const n = lo + r.int(Math.max(1, Math.min(hi, lo + 12) - lo + 1));
  return 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(Math.ceil(n / 36) + 1).slice(0, n);
}

/**
 * Append one attribute of `type` that passes `pt` under strict validation; false when the entry
 * cannot be satisfied (REJECT, UNSPEC, a function, a bitfield with no valid bits).
 */
export function putValid(w: A.Writer, r: Rng, type: number, pt: A.PolicyEntry | undefined, depth = 0): boolean {
  if (!pt) return false;
  const v = pt.validation ?? VALIDATE.NONE;
  if (v === VALIDATE.FUNCTION) return false;
  switch (pt.type) {
    case NLA.U8: case NLA.U16: case NLA.U32: case NLA.U64: case NLA.S8: case NLA.S16: case NLA.S32: case NLA.S64:
    case NLA.UINT: case NLA.SINT: case NLA.BE16: case NLA.BE32: case NLA.MSECS: {
      const { min, max } = A.entryRange(pt);
      let x = intIn(r, BigInt(min), BigInt(max));
      if (v === VALIDATE.MASK) x = BigInt(pt.mask ?? 0) & (r.chance(0.5) ? x : BigInt(pt.mask ?? 0));
      switch (pt.type) {
        case NLA.U8: case NLA.S8: A.putU8(w, type, Number(BigInt.asUintN(8, x))); break;
        case NLA.U16: A.putU16(w, type, Number(x)); break;
        case NLA.S16: A.putS16(w, type, Number(x)); break;
        case NLA.U32: A.putU32(w, type, Number(x)); break;
        case NLA.S32: A.putS32(w, type, Number(x)); break;
        case NLA.BE16: A.putBe16(w, type, Number(x)); break;
        case NLA.BE32: A.putBe32(w, type, Number(x)); break;
        case NLA.U64: case NLA.MSECS: A.putU64(w, type, x); break;
        case NLA.S64: A.putS64(w, type, x); break;
        case NLA.UINT: A.putUint(w, type, x); break;
        case NLA.SINT: A.putSint(w, type, x); break;
      }
      return true;
    }
    case NLA.FLAG: A.putFlag(w, type); return true;
    case NLA.STRING: case NLA.NUL_STRING: {
      const s = str(r, 0, pt.len || 24);
      if (pt.type === NLA.STRING && r.chance(0.2) && s.length) A.putStringNoNul(w, type, s);
      else A.putString(w, type, s);
      return true;
    }
    case NLA.BINARY: {
      let lo = 0, hi = pt.len || 16;
      if (v === VALIDATE.RANGE || v === VALIDATE.RANGE_PTR) { lo = Number(pt.min ?? 0); hi = Number(pt.max ?? hi); }
      else if (v === VALIDATE.MIN) { lo = Number(pt.min ?? 0); hi = Math.max(lo, hi); }
      else if (v === VALIDATE.MAX) hi = Number(pt.max ?? hi);
      hi = Math.min(hi, lo + 64);
      A.putBytes(w, type, bytes(r, lo + r.int(hi - lo + 1)));
      return true;
    }
    case NLA.BITFIELD32: {
      const valid = Number(pt.mask ?? 0) >>> 0;
      if (!valid) return false;
      const sel = (valid & (r.int(0x7fffffff) | (r.int(0x7fffffff) << 1))) >>> 0;
      A.putBitfield32(w, type, (sel & r.int(0x7fffffff)) >>> 0, sel);
      return true;
    }
    case NLA.NESTED: {
      const at = A.nestStart(w, type);
      if (pt.nested && depth < 4) putValidSet(w, r, pt.nested, pt.len ?? pt.nested.maxtype, depth + 1);
      A.nestEnd(w, at);
      return true;
    }
    case NLA.NESTED_ARRAY: {
      const at = A.nestStart(w, type);
      if (pt.nested && depth < 4) {
        for (let i = 1, n = r.int(3); i <= n; i++) {
          const e = A.nestStart(w, i);
          putValidSet(w, r, pt.nested, pt.len ?? pt.nested.maxtype, depth + 1);
          A.nestEnd(w, e);
        }
      }
      A.nestEnd(w, at);
      return true;
    }
    default: return false;
  }
}

/** A few valid attributes of `pol` (types 1..maxattr), each at most once, in random order. */
export function putValidSet(w: A.Writer, r: Rng, pol: A.Policy, maxattr = pol.maxtype, depth = 0, want = 1 + r.int(4)): void {
  const types: number[] = [];
  for (let t = 1; t <= Math.min(maxattr, pol.maxtype); t++) if (pol.entries[t]) types.push(t);
  for (let k = 0; k < want && types.length; k++) {
    const t = types.splice(r.int(types.length), 1)[0];
    putValid(w, r, t, pol.entries[t], depth);
  }
}
