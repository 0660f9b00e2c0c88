// accel health: devlink health's commands and output, for the devices' reporters.
import { REPORTERS } from '../device/enums';
import { fmsgValue } from '../device/fmsg';
import { type Accel, CMD, type Kv, type Reporter } from '../device/gen/accel';
import { type Args, UsageError, keyword, parseBool } from './args';
import { parseAttr } from './policy';
import { type Ctx, type Obj, doOne, dumpAll } from './context';
import { type DevHandle, needDev, optDev } from './handle';
import { dateTime, handleOf, num, toJson } from './output';

const USAGE = `Usage: accel health show [ DEV [ reporter NAME ] ]
       accel health set DEV reporter NAME [ grace_period MSEC ] [ auto_recover { true | false } ]
                        [ auto_dump { true | false } ]
       accel health recover DEV reporter NAME
       accel health diagnose DEV reporter NAME
       accel health dump { show | clear } DEV reporter NAME
       accel health test DEV reporter NAME
where  NAME := { ${REPORTERS.join(' | ')} }
`;

const U64_MAX = 0xffffffffffffffffn;

/** The reporter's fields in pr_out_health's order, as JSON values. */
export function reporterJson(r: Reporter): Record<string, unknown> {
  const o: Record<string, unknown> = {
    reporter: r.name, state: r.state, error: num(r.errCount) ?? 0, recover: num(r.recoverCount) ?? 0,
  };
  if (r.dumpTsNs !== undefined && BigInt(r.dumpTsNs) !== 0n) {
    const { date, time } = dateTime(r.dumpTsNs);
    o.last_dump_date = date;
    o.last_dump_time = time.slice(0, 8);
  }
  if (r.gracePeriodMs !== undefined) o.grace_period = BigInt(r.gracePeriodMs) === U64_MAX ? 'unlimited' : num(r.gracePeriodMs);
  if (r.autoRecover !== undefined) o.auto_recover = !!r.autoRecover;
  if (r.autoDump !== undefined) o.auto_dump = !!r.autoDump;
  return o;
}

/** devlink health show's lines for one handle's reporters. */
export function healthText(h: Accel, reporters: Reporter[]): string {
  const lines = [`${handleOf(h)}:`];
  for (const r of reporters) {
    const { reporter, ...rest } = reporterJson(r);
    lines.push(`  reporter ${reporter}`, `    ${Object.entries(rest).map(([k, v]) => `${k} ${v}`).join(' ')}`);
  }
  return lines.join('\n') + '\n';
}

export const healthJson = (r: Reporter[]): Record<string, unknown>[] => r.map(reporterJson);

/** "DEV reporter NAME", as every command but show needs. */
/** A reporter name, abbreviations allowed like every keyword; an unknown one goes to the daemon to judge. */
function reporterArg(a: Args, w: string): string {
  const v = a.value(w, 'a reporter name');
  return keyword(v, REPORTERS) ?? v;
}

function devReporter(a: Args): DevHandle & { reporterName: string } {
  const h = needDev(a, USAGE);
  const w = a.next();
  if (w === undefined || !keyword(w, ['reporter'])) {
    throw new UsageError(`Command line is not complete: "reporter NAME" is needed.\n${USAGE}`);
  }
  return { ...h, reporterName: reporterArg(a, w) };
}

async function show(ctx: Ctx, a: Args): Promise<void> {
  const h = optDev(a);
  let req: Accel | undefined = h;
  if (h && a.more) {
    const w = a.next()!;
    if (!keyword(w, ['reporter'])) throw new UsageError(`Unknown option "${w}".\n${USAGE}`);
    req = { ...h, reporterName: reporterArg(a, w) };
  }
  a.end();
  const rs = req ? await doOne(ctx, CMD.HEALTH_GET, req) : await dumpAll(ctx, CMD.HEALTH_GET);
  if (ctx.o.json) {
    ctx.out(toJson({ health: Object.fromEntries(rs.map((r) => [handleOf(r), healthJson(r.reporter ?? [])])) }, ctx.o.pretty) + '\n');
  } else for (const r of rs) ctx.out(healthText(r, r.reporter ?? []));
}

async function set(ctx: Ctx, a: Args): Promise<void> {
  const req: Accel = devReporter(a);
  let any = false;
  while (a.more) {
    const w = a.next()!;
    switch (keyword(w, ['grace_period', 'auto_recover', 'auto_dump'])) {
      case 'grace_period': req.gracePeriodMs = parseAttr(a.value(w, 'milliseconds'), 'grace_period', 'health-set', 'grace-period-ms'); break;
      case 'auto_recover': req.autoRecover = parseBool(a.value(w, 'true or false'), 'auto_recover') ? 1 : 0; break;
      case 'auto_dump': req.autoDump = parseBool(a.value(w, 'true or false'), 'auto_dump') ? 1 : 0; break;
      default: throw new UsageError(`Unknown option "${w}".\n${USAGE}`);
    }
    any = true;
  }
  if (!any) throw new UsageError(`Command line is not complete: nothing to set.\n${USAGE}`);
  await doOne(ctx, CMD.HEALTH_SET, req);
}

const simple = (cmd: number) => async (ctx: Ctx, a: Args): Promise<void> => {
  const req = devReporter(a);
  a.end();
  await doOne(ctx, cmd, req);
};

/**
 * A diagnose or dump value as JSON, typed as the devlink view of the same reporter types it in its
 * fmsg (device/families/devlink.ts, putValue), so that `accel -j` and `devlink -j` agree: decimal
 * numbers are numbers (a string above 2^53, as everywhere in `accel -j`), true and false are
 * booleans, anything else stays a string.
 */
export function jsonValue(s: string): unknown {
  const v = fmsgValue(s);
  return typeof v === 'bigint' ? num(v) : v;
}

/** Key/value pairs (diagnose, dump) under the handle and reporter, one pair a line. */
async function printKv(ctx: Ctx, section: string, req: DevHandle & { reporterName: string }, all: Kv[]): Promise<void> {
  const { reporterName: _r, ...h } = req;
  // The daemon's dump names its reporter among the pairs; it is already the heading.
  const kv = all.filter((p) => p.key !== 'reporter');
  const [d] = await doOne(ctx, CMD.DEV_GET, h);
  if (ctx.o.json) {
    const o = Object.fromEntries(kv.map((p) => [p.key ?? '', jsonValue(p.value ?? '')]));
    ctx.out(toJson({ [section]: { [handleOf(d)]: { [req.reporterName]: o } } }, ctx.o.pretty) + '\n');
    return;
  }
  const lines = [`${handleOf(d)}:`, `  reporter ${req.reporterName}`, ...kv.map((p) => `    ${p.key} ${p.value}`)];
  ctx.out(lines.join('\n') + '\n');
}

async function diagnose(ctx: Ctx, a: Args): Promise<void> {
  const req = devReporter(a);
  a.end();
  const [r] = await doOne(ctx, CMD.HEALTH_DIAGNOSE, req);
  await printKv(ctx, 'diagnose', req, r.kv ?? []);
}

async function dump(ctx: Ctx, a: Args): Promise<void> {
  const w = a.next();
  const sub = w === undefined ? undefined : keyword(w, ['show', 'clear']);
  if (!sub) throw new UsageError(`${w === undefined ? 'Command line is not complete' : `Unknown dump command "${w}"`}: expected show or clear.\n${USAGE}`);
  const req = devReporter(a);
  a.end();
  if (sub === 'clear') { await doOne(ctx, CMD.HEALTH_DUMP, { ...req, aggregate: true }); return; }
  const [r] = await doOne(ctx, CMD.HEALTH_DUMP, req);
  await printKv(ctx, 'dump', req, r.kv ?? []);
}

export const healthObject: Obj = {
  name: 'health', usage: USAGE, default: 'show',
  commands: [['show', show], ['set', set], ['recover', simple(CMD.HEALTH_RECOVER)], ['diagnose', diagnose],
    ['dump', dump], ['test', simple(CMD.HEALTH_TEST)]],
};
