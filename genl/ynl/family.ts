// A genl Family (genl/family.ts model) from a spec plus hand-written handlers, the way the kernel
// pairs a YNL-generated op table with its doit/dumpit functions.
import { type View, type Writer } from '../../attrs';
import { GENL_HDRLEN, GENL_OP, NLMSG_HDRLEN } from '../consts';
import type { DoCtx, DoHandler, DumpCtx, DumpHandler, DumpStart, Family, Op } from '../family';
import { type Server, notify } from '../server';
import type { SocketClient } from '../clients';
import { readAttrs, readAttrsInPlace, writeAttrs } from './codec';
import { type Spec, findOp, isAsync } from './model';
import { opPolicies } from './policy';

export interface OpHandlers {
  do?: DoHandler;
  dump?: DumpHandler;
  /** The dump's `start` (the spec's dump `pre` hook slot): runs before the first chunk. */
  start?: DumpStart;
}

/** Handlers keyed by the spec's op names (`get-error-counter`), not camelCased. */
export type Handlers<N extends string = string> = { [K in N]?: OpHandlers };

export interface FamilyOptions {
  /** A fixed family id (mirroring a kernel family); allocated by the registry otherwise. */
  id?: number;
  generation?: () => number;
  /**
   * Ops the family declares it leaves unimplemented (for a family served in stages): they are left
   * out (nlctrl does not list them, requests get EOPNOTSUPP as for an unknown command). Every other
   * declared do/dump must have its handler, and a listed op must have none.
   */
  unimplemented?: readonly string[];
}

const HANDLER_KEYS = new Set(['do', 'dump', 'start']);

/**
 * Build a Family: ops in spec order (events and notifications are not ops), permission flags,
 * per-half policies and strictness, mcast groups in spec order. Throws when a declared do/dump has
 * no handler (unless the op is listed in `unimplemented`) or a handler has nothing to serve.
 */
export function familyFromSpec<N extends string = string>(spec: Spec, handlers: Handlers<N>, opts: FamilyOptions = {}): Family {
  const hs = handlers as Record<string, OpHandlers | undefined>;
  for (const [name, h] of Object.entries(hs)) {
    const op = findOp(spec, name);
    if (!op) throw new Error(`${spec.name}: handlers given for "${name}", which the spec does not declare`);
    if (isAsync(op)) throw new Error(`${spec.name}: "${name}" is an event/notification, it takes no handlers`);
    for (const k of Object.keys(h ?? {})) {
      if (!HANDLER_KEYS.has(k)) throw new Error(`${spec.name}: ${name}.${k} is not a handler slot (do, dump, start)`);
    }
    if (h?.do && !op.do) throw new Error(`${spec.name}: ${name} declares no do`);
    if ((h?.dump || h?.start) && !op.dump) throw new Error(`${spec.name}: ${name} declares no dump`);
  }
  const left = new Set(opts.unimplemented ?? []);
  for (const name of left) {
    const op = findOp(spec, name);
    if (!op || isAsync(op)) throw new Error(`${spec.name}: "${name}" is declared unimplemented, but the spec declares no such do/dump op`);
    if (hs[name]) throw new Error(`${spec.name}: "${name}" is declared unimplemented, but has handlers`);
  }
  const ops: Op[] = [];
  for (const op of spec.operations) {
    if (isAsync(op) || left.has(op.name)) continue;
    const h = hs[op.name] ?? {};
    if (op.do && !h.do) throw new Error(`${spec.name}: no do handler for ${op.name}`);
    if (op.dump && !h.dump) throw new Error(`${spec.name}: no dump handler for ${op.name}`);
    const pols = opPolicies(spec, op.name);
    let perm = 0;
    if (op.flags.includes('admin-perm')) perm |= GENL_OP.ADMIN_PERM;
    if (op.flags.includes('uns-admin-perm')) perm |= GENL_OP.UNS_ADMIN_PERM;
    const o: Op = { cmd: op.value, name: op.name };
    if (perm) o.perm = perm;
    if (op.do) {
      o.do = { handler: h.do!, liberal: op.dontValidate.includes('strict') };
      if (pols.do) Object.assign(o.do, pols.do);
    }
    if (op.dump) {
      // dont-validate `dump` only skips genl_start's header length check for split ops: nothing to do here.
      o.dump = { handler: h.dump!, liberal: op.dontValidate.includes('dump-strict') };
      if (h.start) o.dump.start = h.start;
      if (pols.dump) Object.assign(o.dump, pols.dump);
    }
    ops.push(o);
  }
  const fam: Family = { name: spec.name, version: spec.version, hdrsize: 0, maxattr: 0, resvStartOp: 0, ops };
  if (spec.mcastGroups.length) fam.mcgrps = spec.mcastGroups.map((g) => ({ name: g.name }));
  if (opts.id !== undefined) fam.id = opts.id;
  if (opts.generation) fam.generation = opts.generation;
  return fam;
}

/**
 * Decode a request's attributes (do or dump) with the op's attribute set. `inPlace`: binaries are
 * views into the request (readAttrsInPlace), for a synchronous handler done with them on return.
 */
export function readRequest<T = Record<string, unknown>>(ctx: DoCtx | DumpCtx, spec: Spec, setName: string, inPlace = false): T {
  const v: View = ctx.req;
  const at = 'at' in ctx ? ctx.at : 0;
  const start = at + NLMSG_HDRLEN + GENL_HDRLEN + (((ctx.family.hdrsize ?? 0) + 3) & ~3);
  return (inPlace ? readAttrsInPlace<T> : readAttrs<T>)(v, start, at + v.dv.getUint32(at, true), spec, setName);
}

/**
 * Multicast an event/notification op: its cmd, its mcgrp, its attribute set's encoding of `obj`.
 * `audience` picks the unicast subscribers that may see it (genl/notify.ts); all when left out.
 */
export function notifyEvent(srv: Server, fam: Family, spec: Spec, opName: string, obj: object,
  audience?: (c: SocketClient) => boolean): void {
  const op = findOp(spec, opName);
  if (!op?.mcgrp || !op.attributeSet) throw new Error(`${spec.name}: "${opName}" is not an event with an mcgrp and attribute-set`);
  const set = op.attributeSet;
  notify(srv, fam, op.mcgrp, op.value, (w: Writer) => writeAttrs(w, spec, set, obj), undefined, audience);
}
