// What an extended ACK points at, named from the family's spec: the attribute at the error's offset
// (`gemm.m`, nests included) and a missing attribute (`dev-index`, or `gemm.k` inside a nest), so
// that a client's error says which field to fix instead of attribute numbers.
import { NetlinkError, withNames } from '../client';
import type { Attr, Spec } from './model';

function attrIn(spec: Spec, set: string | undefined, type: number): Attr | undefined {
  return spec.attributeSets.find((s) => s.name === set)?.attributes.find((a) => a.value === type);
}

/**
 * The spec names along an attribute path from `set` down (`count`, `gemm.m`, `events[2].seq` for an
 * indexed array), and the set the last one nests (undefined for a leaf). An unknown type is written
 * as its number; undefined when not even the first is known.
 */
export function resolvePath(spec: Spec, set: string, path: readonly number[]): { name: string; set?: string } | undefined {
  const names: string[] = [];
  let cur: string | undefined = set;
  for (let i = 0; i < path.length; i++) {
    const a = attrIn(spec, cur, path[i]);
    if (!a) {
      if (!names.length) return undefined;
      names.push(String(path[i]));
      return { name: names.join('.') };
    }
    // An indexed array's next level is the entry's index, not an attribute of the nested set.
    names.push(a.type === 'indexed-array' && i + 1 < path.length ? `${a.name}[${path[++i]}]` : a.name);
    cur = a.nestedAttributes;
    if (cur === undefined) break;
  }
  return { name: names.join('.'), set: cur };
}

/**
 * A NetlinkError answered to a request of `cmd`, with the attribute its offset points at and the
 * attribute it reports missing named from the spec (message included); any other value as it was.
 */
export function nameError(spec: Spec, cmd: number, e: unknown): unknown {
  if (!(e instanceof NetlinkError) || e.local) return e;
  const set = spec.operations.find((o) => o.value === cmd)?.attributeSet;
  if (set === undefined) return e;
  const x = e.extack;
  const attrName = x.attrPath ? resolvePath(spec, set, x.attrPath)?.name : undefined;
  let missName: string | undefined;
  if (x.missType) {
    const nest = x.missNest === undefined ? { name: '', set } : x.missNestPath ? resolvePath(spec, set, x.missNestPath) : undefined;
    const a = nest?.set === undefined ? undefined : attrIn(spec, nest.set, x.missType);
    if (nest && a) missName = nest.name ? `${nest.name}.${a.name}` : a.name;
  }
  return attrName === undefined && missName === undefined ? e : withNames(e, attrName, missName);
}
