// Mirroring kernel families: a family's GETFAMILY reply and GETPOLICY dump, fetched over
// NETLINK_GENERIC, decoded back into our Family model so that our nlctrl answers the same questions
// with the same bytes. Used by the golden and differential tests (docs/wire-format.md).
//
// What the dump cannot tell, and what we assume instead:
//  - a top-level policy's maxtype: the highest advertised attribute (a nested policy's comes with
//    POLICY_MAXTYPE); a policy with nothing advertised is the 6.18 reject-all {1: REJECT}, maxtype 1;
//  - UNSPEC, REJECT, BE16, BE32 entries are never dumped, MSECS is dumped as UINT;
//  - resv_start_op, GENL_DONT_VALIDATE_* (liberal parsing) and handlers: mirrored ops are strict,
//    check the genl header for every cmd, and their handlers are stubs (only nlctrl is asked).
import { type DumpedEntry, NLA, type Policy, type PolicyEntry, type View, getU32, payload, readPolicyAttr, putString, putU32, view, walk } from '../../attrs';
import { ENODATA, EOPNOTSUPP } from '../../attrs/errno';
import { type Client, type Message, NetlinkError, createClient, parseFamily } from '../../genl/client';
import { CTRL_ATTR, CTRL_ATTR_POLICY, CTRL_CMD, GENL_ID_CTRL, GENL_OP, NETLINK_GENERIC } from '../../genl/consts';
import type { DoHalf, DumpHalf, Family, Op, OpHalf } from '../../genl/family';
import { done, fail } from '../../genl/result';

/** What the kernel said about one family: its GETFAMILY reply and GETPOLICY dump messages. */
export interface KernelFamily {
  info: Message;
  /** GETPOLICY dump messages; empty when the kernel answered ENODATA (no policy at all). */
  policy: Message[];
  /** Single-op GETPOLICY answers (the dispatch view), for the ops that needed one: cmd → halves with a policy. */
  dispatch: Map<number, { do: boolean; dump: boolean }>;
}

interface OpPolicy { nestType: number; do?: number; dump?: number }

interface PolicyDump {
  /** OP_POLICY messages in order (one per op that has a policy). */
  ops: OpPolicy[];
  /** POLICY messages: index → attribute type → entry. */
  attrs: Map<number, Map<number, DumpedEntry>>;
}

const len16 = (v: View, at: number): number => v.dv.getUint16(at, true);

/** Split a GETPOLICY dump into its op → policy map and its per-index attribute entries. */
export function parsePolicyDump(msgs: Message[]): PolicyDump {
  const d: PolicyDump = { ops: [], attrs: new Map() };
  for (const m of msgs) {
    const v = m.v;
    walk(v, m.attrs, m.end, (at, t) => {
      if (t === CTRL_ATTR.OP_POLICY) {
        walk(v, payload(at), at + len16(v, at), (o, cmd) => {
          const e: OpPolicy = { nestType: cmd };
          walk(v, payload(o), o + len16(v, o), (x, k) => {
            if (k === CTRL_ATTR_POLICY.DO) e.do = getU32(v, x);
            else if (k === CTRL_ATTR_POLICY.DUMP) e.dump = getU32(v, x);
          });
          d.ops.push(e);
        });
      } else if (t === CTRL_ATTR.POLICY) {
        walk(v, payload(at), at + len16(v, at), (p, idx) => {
          walk(v, payload(p), p + len16(v, p), (a, type) => {
            const e = readPolicyAttr(v, payload(a), a + len16(v, a));
            if (!e) throw new Error(`policy ${idx} attr ${type}: unknown NL_ATTR_TYPE`);
            let byType = d.attrs.get(idx);
            if (!byType) d.attrs.set(idx, (byType = new Map()));
            byType.set(type, e);
          });
        });
      }
    });
  }
  return d;
}

/** Policy objects for every index, created first and then linked through their nestedIdx. */
function buildPolicies(d: PolicyDump, name: string): Policy[] {
  let count = 0;
  const refMax = new Map<number, number>();
  for (const o of d.ops) count = Math.max(count, (o.do ?? -1) + 1, (o.dump ?? -1) + 1);
  for (const [idx, byType] of d.attrs) {
    count = Math.max(count, idx + 1);
    for (const e of byType.values()) {
      if (e.nestedIdx === undefined) continue;
      count = Math.max(count, e.nestedIdx + 1);
      refMax.set(e.nestedIdx, e.len ?? 0);
    }
  }
  const entries: (PolicyEntry | undefined)[][] = [];
  const pols: Policy[] = [];
  for (let i = 0; i < count; i++) {
    const types = [...(d.attrs.get(i)?.keys() ?? [])];
    const nothing = !types.length && !refMax.has(i);
    // Maxtype: a nest says it; otherwise the highest advertised type is the best the dump tells.
    const maxtype = refMax.get(i) ?? (types.length ? Math.max(...types) : 1);
    const arr: (PolicyEntry | undefined)[] = new Array(maxtype + 1).fill(undefined);
    if (nothing) arr[1] = { type: NLA.REJECT }; // genl_policy_reject_all
    entries.push(arr);
    pols.push({ maxtype, entries: arr, name: `${name}/${i}` });
  }
  for (const [idx, byType] of d.attrs) {
    for (const [type, e] of byType) {
      const { nestedIdx, ...pe } = e;
      if (nestedIdx !== undefined) (pe as PolicyEntry).nested = pols[nestedIdx];
      entries[idx][type] = pe;
    }
  }
  return pols;
}

/** Indices that advertise nothing: reject-all fill-ins, which split ops do not use on dispatch. */
function emptyIndices(d: PolicyDump): Set<number> {
  const s = new Set<number>();
  for (const o of d.ops) for (const i of [o.do, o.dump]) if (i !== undefined && !d.attrs.has(i)) s.add(i);
  return s;
}

const stubDo = () => fail(EOPNOTSUPP);
const stubDump = () => done();

/** Decode what the kernel said into a Family with its id, ops (exact OP_FLAGS), policies and groups. */
export function decodeFamily(k: KernelFamily): Family {
  const info = parseFamily(k.info);
  const d = parsePolicyDump(k.policy);
  const pols = buildPolicies(d, info.name);
  let next = 0;
  const ops: Op[] = info.ops.map(({ id: cmd, flags }) => {
    const map = flags & GENL_OP.CAP_HASPOL ? d.ops[next++] : undefined;
    if (flags & GENL_OP.CAP_HASPOL) {
      const want = flags & GENL_OP.CAP_DO ? cmd : 0; // the kernel's nest type is doit.cmd
      if (!map || map.nestType !== want) throw new Error(`${info.name}: op ${cmd} does not match the policy dump's op map`);
    }
    const seen = k.dispatch.get(cmd);
    const half = (idx: number | undefined, dispatched: boolean | undefined): OpHalf => {
      if (idx === undefined) return { reportPolicy: null };
      const p = pols[idx];
      return dispatched === false ? { reportPolicy: p, reportMaxattr: p.maxtype } : { policy: p, maxattr: p.maxtype };
    };
    const op: Op = { cmd, reportFlags: flags, perm: flags & (GENL_OP.ADMIN_PERM | GENL_OP.UNS_ADMIN_PERM) };
    if (flags & GENL_OP.CAP_DO) op.do = { ...half(map?.do, seen?.do), handler: stubDo } as DoHalf;
    if (flags & GENL_OP.CAP_DUMP) op.dump = { ...half(map?.dump, seen?.dump), handler: stubDump } as DumpHalf;
    return op;
  });
  if (next !== d.ops.length) throw new Error(`${info.name}: policy dump has ${d.ops.length} op entries, family ${next}`);
  return {
    name: info.name, id: info.id, version: info.version, hdrsize: info.hdrsize, maxattr: info.maxattr, ops,
    mcgrps: [...info.groups].map(([name, id]) => ({ name, id })),
  };
}

/** Split a datagram into Messages (for decoding raw captures). */
export function messagesOf(data: Uint8Array, port = 0): Message[] {
  const v = view(data);
  const out: Message[] = [];
  let at = 0;
  while (data.length - at >= 16) {
    const len = v.dv.getUint32(at, true);
    if (len < 16 || len > data.length - at) break;
    out.push({
      v, at, len, type: v.dv.getUint16(at + 4, true), flags: v.dv.getUint16(at + 6, true), seq: v.dv.getUint32(at + 8, true),
      cmd: data[at + 16] ?? 0, version: data[at + 17] ?? 0, attrs: at + 20, end: at + len, port, groups: 0,
    });
    at += (len + 3) & ~3;
  }
  return out;
}

async function dumpPolicy(c: Client, name: string, op?: number): Promise<Message[]> {
  const out: Message[] = [];
  try {
    for await (const m of c.dump(GENL_ID_CTRL, CTRL_CMD.GETPOLICY, {
      fill: (w) => { putString(w, CTRL_ATTR.FAMILY_NAME, name); if (op !== undefined) putU32(w, CTRL_ATTR.OP, op); },
    })) out.push(m);
  } catch (e) {
    if (e instanceof NetlinkError && e.errno === ENODATA) return [];
    throw e;
  }
  return out;
}

/**
 * Fetch one family from nlctrl: GETFAMILY, the family-wide GETPOLICY dump and, for ops whose
 * policy advertises nothing, a single-op GETPOLICY (the dispatch view) to tell the split-op
 * reject-all fill-in (reported, not used on dispatch) from a legacy op's real reject-all.
 */
export async function fetchFamily(c: Client, name: string): Promise<KernelFamily> {
  const [info] = await c.request(GENL_ID_CTRL, CTRL_CMD.GETFAMILY, { fill: (w) => putString(w, CTRL_ATTR.FAMILY_NAME, name) });
  const policy = await dumpPolicy(c, name);
  const d = parsePolicyDump(policy);
  const empty = emptyIndices(d);
  const dispatch = new Map<number, { do: boolean; dump: boolean }>();
  let next = 0;
  for (const { id: cmd, flags } of parseFamily(info).ops) {
    if (!(flags & GENL_OP.CAP_HASPOL)) continue;
    const o = d.ops[next++];
    if (!o || !((o.do !== undefined && empty.has(o.do)) || (o.dump !== undefined && empty.has(o.dump)))) continue;
    const one = parsePolicyDump(await dumpPolicy(c, name, cmd)).ops[0];
    dispatch.set(cmd, { do: one?.do !== undefined, dump: one?.dump !== undefined });
  }
  return { info, policy, dispatch };
}

/** Names of all families the peer's nlctrl lists (a GETFAMILY dump), in id order. */
export async function listFamilies(c: Client): Promise<string[]> {
  const names: string[] = [];
  for await (const m of c.dump(GENL_ID_CTRL, CTRL_CMD.GETFAMILY)) names.push(parseFamily(m).name);
  return names;
}

/** Mirror every family the running kernel registers (nlctrl included). */
export async function mirrorKernel(): Promise<Family[]> {
  const c = createClient({ protocol: NETLINK_GENERIC, serverPort: 0 });
  try {
    const out: Family[] = [];
    for (const name of await listFamilies(c)) out.push(decodeFamily(await fetchFamily(c, name)));
    return out;
  } finally {
    c.close();
  }
}

/** Give `target`'s ops (real handlers) the policies of the same ops in `source` (a mirror). */
export function adoptPolicies(target: Family, source: Family): Family {
  for (const op of target.ops) {
    const src = source.ops.find((o) => o.cmd === op.cmd);
    for (const k of ['do', 'dump'] as const) {
      const h = op[k], s = src?.[k];
      if (!h) continue;
      h.policy = s?.policy; h.maxattr = s?.maxattr; h.reportPolicy = s?.reportPolicy; h.reportMaxattr = s?.reportMaxattr;
    }
  }
  return target;
}
