// The nlctrl controller family (id 0x10): GETFAMILY do/dump, GETPOLICY dump and the "notify"
// group's NEWFAMILY/DELFAMILY/NEWMCAST_GRP/DELMCAST_GRP events, byte for byte as the kernel sends them.
import {
  type Policy, type Writer, getString, getU16, getU32, nestEnd, nestStart, nestStartNoflag, newPolicyDumpState,
  addPolicy, newWriter, policyIndex, pol, policy, putRaw, putString, putU16, putU32, setBadAttr, writePolicyAttr, type PolicyDumpState,
  isAdvertised,
} from '../attrs';
import { EINVAL, ENODATA, ENOENT } from '../attrs/errno';
import {
  CTRL_ATTR, CTRL_ATTR_MCAST_GRP, CTRL_ATTR_OP, CTRL_ATTR_POLICY, CTRL_CMD, GENL_ID_CTRL, GENL_NAMSIZ, NLM_F,
} from './consts';
import { type DoCtx, type DumpCtx, type Family, type McGroup, opFlags, reportedPolicy } from './family';
import { type DumpResult, type Result, done, fail, more } from './result';
import { type Server, notify, registryOf } from './server';
import { familiesIn, familyById, familyByName, familyCount } from './registry';

/** ctrl_policy_family and ctrl_policy_policy. */
export const CTRL_POLICY_FAMILY: Policy = policy({
  [CTRL_ATTR.FAMILY_ID]: pol.u16(), [CTRL_ATTR.FAMILY_NAME]: pol.nulString(GENL_NAMSIZ - 1),
}, undefined, 'ctrl-family');
export const CTRL_POLICY_POLICY: Policy = policy({
  [CTRL_ATTR.FAMILY_ID]: pol.u16(), [CTRL_ATTR.FAMILY_NAME]: pol.nulString(GENL_NAMSIZ - 1),
  [CTRL_ATTR.OP]: pol.u32(),
}, undefined, 'ctrl-policy');

/**
 * A family's ctrl_fill_info() attributes, encoded once: every client's first request is a
 * GETFAMILY, and encoding the ops and groups was a third of the daemon's JavaScript for one. Kept
 * per family object with the ids registration gives it (family and groups), so the same object
 * registered again, or in another server, is encoded again. A registered family is not changed
 * otherwise (as in the kernel, where it is const).
 */
interface EncodedInfo { id: number; groups: number[]; bytes: Uint8Array }
const infoCache = new WeakMap<Family, EncodedInfo>();
const infoScratch = newWriter(1024);

function sameIds(e: EncodedInfo, fam: Family): boolean {
  const groups = fam.mcgrps ?? [];
  if (e.id !== fam.id || e.groups.length !== groups.length) return false;
  for (let i = 0; i < groups.length; i++) if (e.groups[i] !== groups[i].id) return false;
  return true;
}

/** ctrl_fill_info(): name, id, version, hdrsize, maxattr, then OPS and MCAST_GROUPS as _noflag nests. */
export function writeFamilyInfo(w: Writer, fam: Family): void {
  let e = infoCache.get(fam);
  if (!e || !sameIds(e, fam)) {
    infoScratch.len = 0;
    encodeFamilyInfo(infoScratch, fam);
    e = { id: fam.id!, groups: (fam.mcgrps ?? []).map((g) => g.id!), bytes: infoScratch.buf.slice(0, infoScratch.len) };
    infoCache.set(fam, e);
  }
  putRaw(w, e.bytes);
}

function encodeFamilyInfo(w: Writer, fam: Family): void {
  putString(w, CTRL_ATTR.FAMILY_NAME, fam.name);
  putU16(w, CTRL_ATTR.FAMILY_ID, fam.id!);
  putU32(w, CTRL_ATTR.VERSION, fam.version);
  putU32(w, CTRL_ATTR.HDRSIZE, fam.hdrsize ?? 0);
  putU32(w, CTRL_ATTR.MAXATTR, fam.maxattr ?? 0);
  if (fam.ops.length) {
    const ops = nestStartNoflag(w, CTRL_ATTR.OPS);
    fam.ops.forEach((op, i) => {
      const e = nestStartNoflag(w, i + 1);
      putU32(w, CTRL_ATTR_OP.ID, op.cmd);
      putU32(w, CTRL_ATTR_OP.FLAGS, opFlags(op));
      nestEnd(w, e);
    });
    nestEnd(w, ops);
  }
  const groups = fam.mcgrps ?? [];
  if (groups.length) {
    const gs = nestStartNoflag(w, CTRL_ATTR.MCAST_GROUPS);
    groups.forEach((g, i) => writeGroup(w, g, i + 1));
    nestEnd(w, gs);
  }
}

function writeGroup(w: Writer, g: McGroup, index: number): void {
  const e = nestStartNoflag(w, index);
  putU32(w, CTRL_ATTR_MCAST_GRP.ID, g.id!);
  putString(w, CTRL_ATTR_MCAST_GRP.NAME, g.name);
  nestEnd(w, e);
}

/** ctrl_fill_mcgrp_info(): family name and id, and the one group. */
function writeGroupInfo(w: Writer, fam: Family, g: McGroup): void {
  putString(w, CTRL_ATTR.FAMILY_NAME, fam.name);
  putU16(w, CTRL_ATTR.FAMILY_ID, fam.id!);
  const gs = nestStartNoflag(w, CTRL_ATTR.MCAST_GROUPS);
  writeGroup(w, g, 1);
  nestEnd(w, gs);
}

function lookup(srv: Server, ctx: DoCtx | DumpCtx): Family | Result {
  const id = ctx.attrs[CTRL_ATTR.FAMILY_ID];
  const name = ctx.attrs[CTRL_ATTR.FAMILY_NAME];
  let fam: Family | undefined;
  let err = EINVAL;
  if (id >= 0) { fam = familyById(registryOf(srv), getU16(ctx.req, id)); err = ENOENT; }
  if (name >= 0) { fam = familyByName(registryOf(srv), getString(ctx.req, name)); err = ENOENT; }
  return fam ?? fail(err);
}

function getFamily(srv: Server, ctx: DoCtx): Result {
  const fam = lookup(srv, ctx);
  if ('kind' in fam) return fam;
  writeFamilyInfo(ctx.reply(CTRL_CMD.NEWFAMILY), fam);
  ctx.end();
  return done();
}

/** ctrl_dumpfamily(): one NEWFAMILY per family in id order; done once all fit (DONE may share the datagram). */
function dumpFamilies(srv: Server, ctx: DumpCtx): DumpResult {
  const fams = familiesIn(registryOf(srv));
  let n = (ctx.state.skip as number) ?? 0;
  for (; n < fams.length; n++) {
    writeFamilyInfo(ctx.start(CTRL_CMD.NEWFAMILY, NLM_F.MULTI), fams[n]);
    if (!ctx.end()) break;
  }
  ctx.state.skip = n;
  return n < fams.length ? more() : done();
}

interface PolicyDump {
  fam: Family;
  st: PolicyDumpState;
  /** Ops still to announce (indices into fam.ops), or the single op. */
  ops: number[];
  single: boolean;
  pIdx: number;
  attr: number;
}

/** ctrl_dumppolicy_start(): find the family (id wins over name) and collect the policies. */
function policyStart(srv: Server, ctx: DumpCtx): Result {
  const idAt = ctx.attrs[CTRL_ATTR.FAMILY_ID];
  const nameAt = ctx.attrs[CTRL_ATTR.FAMILY_NAME];
  if (idAt < 0 && nameAt < 0) return fail(EINVAL);
  let id: number;
  if (idAt >= 0) id = getU16(ctx.req, idAt);
  else {
    const f = familyByName(registryOf(srv), getString(ctx.req, nameAt));
    if (!f) return fail(ENOENT);
    id = f.id!;
  }
  const fam = familyById(registryOf(srv), id);
  if (!fam) return fail(ENOENT);
  const st = newPolicyDumpState();
  const opAt = ctx.attrs[CTRL_ATTR.OP];
  const pd: PolicyDump = { fam, st, ops: [], single: false, pIdx: 0, attr: 0 };
  if (opAt >= 0) {
    const cmd = getU32(ctx.req, opAt);
    const i = fam.ops.findIndex((o) => o.cmd === cmd);
    if (i < 0) {
      setBadAttr(ctx.ext, opAt);
      return fail(ENOENT);
    }
    // A single op is looked up as dispatched: no reject-all fill-in (6.18).
    const op = fam.ops[i];
    for (const h of [op.do, op.dump]) if (h?.policy) addPolicy(st, h.policy, h.maxattr ?? h.policy.maxtype);
    pd.ops = [i];
    pd.single = true;
  } else {
    fam.ops.forEach((op, i) => {
      for (const h of [op.do, op.dump]) {
        const r = reportedPolicy(h);
        if (r.policy) addPolicy(st, r.policy, r.maxattr);
      }
      pd.ops.push(i);
    });
  }
  if (!st.policies.length) return fail(ENODATA);
  ctx.state.pd = pd;
  return done();
}

/** ctrl_dumppolicy(): op → policy index map, then one message per advertised attribute. */
function dumpPolicy(ctx: DumpCtx): DumpResult {
  const pd = ctx.state.pd as PolicyDump;
  const { fam, st } = pd;
  let wrote = false;
  const prep = (): Writer => {
    const w = ctx.start(CTRL_CMD.GETPOLICY, NLM_F.MULTI);
    putU16(w, CTRL_ATTR.FAMILY_ID, fam.id!);
    return w;
  };
  while (pd.ops.length) {
    const op = fam.ops[pd.ops[0]];
    const doH = pd.single ? { policy: op.do?.policy, maxattr: op.do?.maxattr ?? op.do?.policy?.maxtype ?? 0 } : reportedPolicy(op.do);
    const dumpH = pd.single ? { policy: op.dump?.policy, maxattr: op.dump?.maxattr ?? op.dump?.policy?.maxtype ?? 0 } : reportedPolicy(op.dump);
    if (doH.policy || dumpH.policy) {
      const w = prep();
      const outer = nestStart(w, CTRL_ATTR.OP_POLICY);
      const inner = nestStart(w, op.do ? op.cmd : 0); // the kernel uses doit->cmd: 0 for dump-only ops
      if (doH.policy) putU32(w, CTRL_ATTR_POLICY.DO, Math.max(0, policyIndex(st, doH.policy, doH.maxattr)));
      if (dumpH.policy) putU32(w, CTRL_ATTR_POLICY.DUMP, Math.max(0, policyIndex(st, dumpH.policy, dumpH.maxattr)));
      nestEnd(w, inner);
      nestEnd(w, outer);
      if (!ctx.end()) return more();
      wrote = true;
    }
    pd.ops.shift();
  }
  while (pd.pIdx < st.policies.length) {
    const { policy: p, maxtype } = st.policies[pd.pIdx];
    for (; pd.attr <= maxtype; pd.attr++) {
      if (!isAdvertised(p.entries[pd.attr])) continue;
      const w = prep();
      const outer = nestStart(w, CTRL_ATTR.POLICY);
      const idx = nestStart(w, pd.pIdx);
      writePolicyAttr(w, p.entries[pd.attr], pd.attr, st);
      nestEnd(w, idx);
      nestEnd(w, outer);
      if (!ctx.end()) return more();
      wrote = true;
    }
    pd.attr = 0;
    pd.pIdx++;
  }
  return wrote ? more() : done(); // ctrl_dumppolicy returns skb->len: DONE always travels alone
}

export function nlctrlFamily(srv: Server): Family {
  return {
    name: 'nlctrl', id: GENL_ID_CTRL, version: 2, hdrsize: 0, maxattr: 0, resvStartOp: CTRL_CMD.GETPOLICY + 1,
    mcgrps: [{ name: 'notify', id: GENL_ID_CTRL }],
    generation: () => familyCount(registryOf(srv)),
    ops: [
      {
        cmd: CTRL_CMD.GETFAMILY, name: 'getfamily',
        do: { policy: CTRL_POLICY_FAMILY, maxattr: 2, liberal: true, handler: (c) => getFamily(srv, c) },
        dump: { policy: CTRL_POLICY_FAMILY, maxattr: 2, handler: (c) => dumpFamilies(srv, c) },
      },
      {
        cmd: CTRL_CMD.GETPOLICY, name: 'getpolicy',
        dump: { policy: CTRL_POLICY_POLICY, maxattr: 10, start: (c) => policyStart(srv, c), handler: dumpPolicy },
      },
    ],
  };
}

/** Multicast the kernel's register/unregister events on nlctrl's "notify" group. */
export function ctrlNotifier(srv: Server, ctrl: Family): (fam: Family, added: boolean) => void {
  return (fam, added) => {
    if (fam === ctrl) return;
    const groups = fam.mcgrps ?? [];
    if (added) {
      notify(srv, ctrl, 'notify', CTRL_CMD.NEWFAMILY, (w) => writeFamilyInfo(w, fam));
      for (const g of groups) notify(srv, ctrl, 'notify', CTRL_CMD.NEWMCAST_GRP, (w) => writeGroupInfo(w, fam, g));
    } else {
      for (const g of groups) notify(srv, ctrl, 'notify', CTRL_CMD.DELMCAST_GRP, (w) => writeGroupInfo(w, fam, g));
      notify(srv, ctrl, 'notify', CTRL_CMD.DELFAMILY, (w) => writeFamilyInfo(w, fam));
    }
  };
}
