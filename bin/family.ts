// accel family: the nlctrl view of what the daemon serves, like `genl ctrl list` / `genl ctrl get`.
import { OP_NAMES as ACCEL_OPS } from '../device/gen/accel';
import {
  CTRL_ATTR, CTRL_CMD, CTRL_CMD_NAMES, type Client, type FamilyInfo, GENL_ID_CTRL, GENL_OP, NetlinkError, createClient, parseFamily,
} from '../genl';
import { putString, putU16 } from '../attrs';
import { ECONNREFUSED, ENOENT, ETIMEDOUT } from '../attrs/errno';
import { type Args, OpError, UsageError, keyword, parseU32 } from './args';
import { type Ctx, type Obj, connectError, describeNetlinkError } from './context';
import { toJson } from './output';

const USAGE = `Usage: accel family list
       accel family get { name NAME | id ID | NAME }
`;

// require(), not import: the devlink and drm-ras modules (their specs) are evaluated only when
// `family -s` names their ops, not at every start of the CLI.
declare const require: NodeJS.Require;

/** Op names by id: the generated tables of the families we have specs for, and nlctrl's. */
const OP_NAMES: Record<string, () => Readonly<Record<number, string>>> = {
  nlctrl: () => CTRL_CMD_NAMES, accel: () => ACCEL_OPS,
  'drm-ras': () => (require('../device/gen/drm-ras') as typeof import('../device/gen/drm-ras')).OP_NAMES,
  devlink: () => (require('../device/gen/devlink') as typeof import('../device/gen/devlink')).OP_NAMES,
};

function caps(flags: number): string[] {
  const c: string[] = [];
  if (flags & GENL_OP.ADMIN_PERM) c.push('requires admin permission');
  if (flags & GENL_OP.CAP_DO) c.push('can doit');
  if (flags & GENL_OP.CAP_DUMP) c.push('can dumpit');
  if (flags & GENL_OP.CAP_HASPOL) c.push('has policy');
  return c;
}

/** genl ctrl's layout (tabs, trailing spaces and all); -s adds op names and capabilities. */
function familyText(f: FamilyInfo, details: boolean): string {
  const hex = (n: number): string => `0x${n.toString(16)}`;
  let s = `Name: ${f.name}\n\tID: ${hex(f.id)}  Version: ${hex(f.version)}  header size: ${f.hdrsize}  max attribs: ${f.maxattr} \n`;
  if (f.ops.length) {
    s += '\tcommands supported: \n';
    f.ops.forEach((op, i) => {
      s += `\t\t#${i + 1}:  ID-${hex(op.id)} `;
      if (details) s += ` ${OP_NAMES[f.name]?.()[op.id] ?? ''}\n\t\t Capabilities (${hex(op.flags)}):\n\t\t ${caps(op.flags).join('; ')}`;
      s += '\n';
    });
    s += '\n';
  }
  if (f.groups.size) {
    s += '\tmulticast groups:\n';
    [...f.groups].forEach(([name, id], i) => { s += `\t\t#${i + 1}:  ID-${hex(id)}  name: ${name}\n`; });
    s += '\n';
  }
  return s;
}

const familyJson = (f: FamilyInfo): Record<string, unknown> => ({
  id: f.id, version: f.version, hdrsize: f.hdrsize, maxattr: f.maxattr,
  ops: f.ops.map((op) => ({ id: op.id, name: OP_NAMES[f.name]?.()[op.id], flags: op.flags })),
  mcast_groups: Object.fromEntries(f.groups),
});

async function withClient<T>(ctx: Ctx, f: (c: Client) => Promise<T>): Promise<T> {
  const c = createClient({ serverPort: ctx.port, timeoutMs: 3000 });
  try {
    return await f(c);
  } catch (e) {
    if (e instanceof NetlinkError && (e.errno === ECONNREFUSED || e.errno === ETIMEDOUT)) throw connectError(e, ctx.port);
    if (e instanceof NetlinkError) throw new OpError(describeNetlinkError(e));
    throw e;
  } finally {
    c.close();
  }
}

function print(ctx: Ctx, fams: FamilyInfo[]): void {
  if (ctx.o.json) ctx.out(toJson({ family: Object.fromEntries(fams.map((f) => [f.name, familyJson(f)])) }, ctx.o.pretty) + '\n');
  else for (const f of fams) ctx.out(familyText(f, ctx.o.stats));
}

async function list(ctx: Ctx, a: Args): Promise<void> {
  a.end();
  const fams = await withClient(ctx, async (c) => {
    const out: FamilyInfo[] = [];
    for await (const m of c.dump(GENL_ID_CTRL, CTRL_CMD.GETFAMILY)) out.push(parseFamily(m));
    return out;
  });
  print(ctx, fams);
}

async function get(ctx: Ctx, a: Args): Promise<void> {
  const w = a.next();
  if (w === undefined) throw new UsageError(`Command line is not complete: a family is needed.\n${USAGE}`);
  let byId: number | undefined;
  let name: string | undefined;
  const k = keyword(w, ['name', 'id']);
  if (k === 'id') byId = parseU32(a.value(w, 'an id'), 'id');
  else if (k === 'name' && a.more) name = a.next();
  else name = w;
  a.end();
  const f = await withClient(ctx, async (c) => {
    const [m] = await c.request(GENL_ID_CTRL, CTRL_CMD.GETFAMILY, {
      fill: (x) => (byId !== undefined ? putU16(x, CTRL_ATTR.FAMILY_ID, byId) : putString(x, CTRL_ATTR.FAMILY_NAME, name!)),
    }).catch((e: unknown) => {
      // nlctrl answers an unknown family with a bare ENOENT, as the kernel's does: name what was asked.
      if (e instanceof NetlinkError && e.errno === ENOENT && !e.extack.msg) e.extack.msg = byId !== undefined ? `no family with id ${byId}` : `no family "${name}"`;
      throw e;
    });
    return parseFamily(m);
  });
  print(ctx, [f]);
}

export const familyObject: Obj = { name: 'family', usage: USAGE, default: 'list', commands: [['list', list], ['get', get], ['show', list]] };
