// Request values checked against the daemon's own policy: the range of an attribute comes from
// the policy the daemon validates with (derived from the generated accel spec, as the daemon
// derives it), so the CLI and the daemon accept the same numbers and the CLI never repeats one.
import { entryRange } from '../attrs/validate';
import { findOp, getSet } from '../genl/ynl/model';
import { opPolicies } from '../genl/ynl/policy';
import { spec } from '../device/gen/accel';
import { parseInteger } from './args';

/** The [min, max] the daemon accepts for attribute `attr` of op `op`'s do request. */
export function requestRange(op: string, attr: string): { min: bigint; max: bigint } {
  const half = opPolicies(spec, op).do;
  const set = findOp(spec, op)?.attributeSet;
  const a = set === undefined ? undefined : getSet(spec, set).attributes.find((x) => x.name === attr);
  const pt = a && half?.policy.entries[a.value];
  if (!pt) throw new Error(`accel spec: ${op} takes no attribute "${attr}"`);
  const r = entryRange(pt);
  return { min: BigInt(r.min), max: BigInt(r.max) };
}

/**
 * A number (decimal or 0x-hex) for attribute `attr` of `op`, within the daemon's range; `what` is
 * the word the command line uses for it. A number when safe, else a bigint.
 */
export function parseAttr(s: string, what: string, op: string, attr: string): number | bigint {
  const { min, max } = requestRange(op, attr);
  return parseInteger(s, what, min, max);
}
