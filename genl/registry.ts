// Family registry: ids allocated as the kernel allocates them (idr_alloc_cyclic from 0x13, nlctrl
// at 0x10), multicast group ids first-fit and contiguous within USERSOCK's 32 groups.
import { EEXIST, EINVAL, ENOSPC } from '../attrs/errno';
import { GENL_ID_CTRL, GENL_ID_PMCRAID, GENL_ID_VFS_DQUOT, GENL_MAX_ID, GENL_NAMSIZ, GENL_START_ALLOC } from './consts';
import type { Family } from './family';

declare const REGISTRY: unique symbol;
/** A family registry. Opaque: read and changed only through this module's functions. */
export interface Registry { readonly [REGISTRY]: true }

interface State {
  byId: Map<number, Family>;
  byName: Map<string, Family>;
  /** Group ids in use; 0 and 1 and the three fixed families' ids are reserved, as in the kernel. */
  groups: Set<number>;
  /** idr_alloc_cyclic's cursor. */
  nextId: number;
  /** The highest group id the transport can carry (32 on USERSOCK). */
  maxGroup: number;
  /** Called after register (true) and before unregister (false): nlctrl's notifications. */
  listeners: ((fam: Family, added: boolean) => void)[];
}

const state = (reg: Registry): State => reg as unknown as State;

export function newRegistry(maxGroup = 32): Registry {
  const s: State = {
    byId: new Map(), byName: new Map(), nextId: GENL_START_ALLOC, maxGroup, listeners: [],
    groups: new Set([0, 1, GENL_ID_CTRL, GENL_ID_VFS_DQUOT, GENL_ID_PMCRAID]),
  };
  return s as unknown as Registry;
}

export const familyById = (reg: Registry, id: number): Family | undefined => state(reg).byId.get(id);
export const familyByName = (reg: Registry, name: string): Family | undefined => state(reg).byName.get(name);
/** Every registered family, by id. */
export const familiesIn = (reg: Registry): Family[] => [...state(reg).byId.values()].sort((x, y) => x.id! - y.id!);
export const familyCount = (reg: Registry): number => state(reg).byId.size;
/** Whether a group id is taken (by a family, or reserved). */
export const groupTaken = (reg: Registry, group: number): boolean => state(reg).groups.has(group);
/** Call `fn` after every register (true) and before every unregister (false); returns its undo. */
export function onFamilyChange(reg: Registry, fn: (fam: Family, added: boolean) => void): () => void {
  const ls = state(reg).listeners;
  ls.push(fn);
  return () => { const i = ls.indexOf(fn); if (i >= 0) ls.splice(i, 1); };
}

export class RegistryError extends Error {
  constructor(public errno: number, message: string) { super(message); }
}

/**
 * The reserved group ids belong to the families they were reserved for (genl_validate_assign_mc_groups):
 * nlctrl, VFS_DQUOT and PMCRAID get group id = family id (VFS_DQUOT's "events" is 17), NET_DM gets 1.
 */
function ownReserved(fam: Family, group: number): boolean {
  if (group === 1) return fam.name === 'NET_DM';
  return group === fam.id && (group === GENL_ID_CTRL || group === GENL_ID_VFS_DQUOT || group === GENL_ID_PMCRAID);
}

function allocId(reg: State): number {
  for (let i = 0; i <= GENL_MAX_ID - GENL_START_ALLOC; i++) {
    const id = GENL_START_ALLOC + ((reg.nextId - GENL_START_ALLOC + i) % (GENL_MAX_ID - GENL_START_ALLOC + 1));
    if (!reg.byId.has(id)) {
      reg.nextId = id + 1 > GENL_MAX_ID ? GENL_START_ALLOC : id + 1;
      return id;
    }
  }
  throw new RegistryError(ENOSPC, 'no free generic netlink family id');
}

function allocGroups(reg: State, n: number): number {
  for (let first = 2; first + n - 1 <= reg.maxGroup; first++) {
    let fits = true;
    for (let g = first; g < first + n; g++) if (reg.groups.has(g)) { fits = false; break; }
    if (fits) return first;
  }
  throw new RegistryError(ENOSPC, `no room for ${n} multicast groups (at most ${reg.maxGroup})`);
}

/**
 * Register a family. Fixed ids (fam.id, group ids) are honoured, which is how kernel families are
 * mirrored under their kernel ids; otherwise ids are allocated. Throws RegistryError on a clash.
 */
export function register(handle: Registry, fam: Family): Family {
  const reg = state(handle);
  if (!fam.name || fam.name.length >= GENL_NAMSIZ) throw new RegistryError(EINVAL, `bad family name "${fam.name}"`);
  if (reg.byName.has(fam.name)) throw new RegistryError(EEXIST, `family ${fam.name} already registered`);
  if (fam.id !== undefined && reg.byId.has(fam.id)) throw new RegistryError(EEXIST, `family id ${fam.id} in use`);
  const groups = fam.mcgrps ?? [];
  const fixed = groups.length > 0 && groups.every((g) => g.id !== undefined);
  if (fixed) {
    for (const g of groups) {
      if (reg.groups.has(g.id!) && !ownReserved(fam, g.id!)) throw new RegistryError(EEXIST, `group id ${g.id} in use`);
    }
  } else if (groups.length) {
    const first = allocGroups(reg, groups.length);
    groups.forEach((g, i) => { g.id = first + i; });
  }
  for (const g of groups) reg.groups.add(g.id!);
  if (fam.id === undefined) fam.id = allocId(reg);
  reg.byId.set(fam.id, fam);
  reg.byName.set(fam.name, fam);
  for (const l of reg.listeners) l(fam, true);
  return fam;
}

export function unregister(handle: Registry, fam: Family): void {
  const reg = state(handle);
  if (reg.byName.get(fam.name) !== fam) return;
  for (const l of reg.listeners) l(fam, false);
  reg.byName.delete(fam.name);
  reg.byId.delete(fam.id!);
  for (const g of fam.mcgrps ?? []) if (!ownReserved(fam, g.id!)) reg.groups.delete(g.id!);
}
