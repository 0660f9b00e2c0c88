// accel dev: show, info (devlink dev info), set (reset/offline/online), add and del (hot-plug).
import { type Accel, CMD, THROTTLE_REASON_NAMES, THROTTLE_REASON_VALUES, type Version } from '../device/gen/accel';
import { type Args, UsageError, keyword, parseSize, parseU32 } from './args';
import { type Ctx, type Obj, doOne, dumpAll } from './context';
import { type DevHandle, needDev, optDev, parseDev } from './handle';
import { handleOf, num, pairs, toJson } from './output';

const USAGE = `Usage: accel dev show [ DEV ]
       accel dev info [ DEV ]
       accel dev set DEV [ action ] { reset | offline | online }
       accel dev add [ index N ] [ bus BUS_ADDR ] [ memory SIZE ] [ compute_units N ]
       accel dev del DEV
where  DEV := { accelN | INDEX | pci/BUS_ADDR | BUS_ADDR }
`;

/** Names of the throttle reason bits that are set. */
export function throttleNames(v: Accel['throttle']): string[] {
  if (Array.isArray(v)) return v;
  return THROTTLE_REASON_NAMES.filter((n) => ((v ?? 0) & THROTTLE_REASON_VALUES[n]) !== 0);
}

function identity(d: Accel): Record<string, unknown> {
  return {
    name: d.devName, index: d.devIndex, state: d.state, health: d.health, driver: d.driver,
    vendor_id: d.vendorId, device_id: d.deviceId, path: d.devPath,
    mem_total: num(d.memTotal), mem_used: num(d.memUsed), compute_units: d.computeUnits,
  };
}

function stats(d: Accel): Record<string, unknown> {
  const m = d.memory ?? {};
  return {
    clock_mhz: d.clockMhz, clock_max_mhz: d.clockMaxMhz, mem_clock_mhz: d.memClockMhz, temp_mc: d.tempMc,
    util_pct: d.utilPct, power_mw: d.powerMw, power_limit_mw: d.powerLimitMw, energy_mj: num(d.energyMj),
    resets: d.resets, throttle: throttleNames(d.throttle),
    rows_active: m.rowsActive, rows_pending: m.rowsPending, bad_pages: m.badPage?.length ?? 0,
    rma_threshold: m.rmaThreshold, rma: m.rma === undefined ? undefined : !!m.rma,
  };
}

const hex4 = (n: number | undefined): string | undefined => (n === undefined ? undefined : `0x${n.toString(16).padStart(4, '0')}`);

/** Text lines of one device, as dev show prints them. */
export function devText(d: Accel, withStats: boolean): string {
  const id = identity(d);
  const s = stats(d);
  const lines = [
    `${handleOf(d)}:`,
    `  ${pairs({ name: id.name, index: id.index, state: id.state, health: id.health })}`,
    `  ${pairs({ driver: id.driver, vendor_id: hex4(d.vendorId), device_id: hex4(d.deviceId), path: id.path })}`,
    `  ${pairs({ mem_total: id.mem_total, mem_used: id.mem_used, compute_units: id.compute_units })}`,
  ];
  if (withStats) {
    const throttle = (s.throttle as string[]).join(',') || 'none';
    lines.push('  stats:',
      `    ${pairs({ clock_mhz: s.clock_mhz, clock_max_mhz: s.clock_max_mhz, mem_clock_mhz: s.mem_clock_mhz, temp_mc: s.temp_mc, util_pct: s.util_pct })}`,
      `    ${pairs({ power_mw: s.power_mw, power_limit_mw: s.power_limit_mw, energy_mj: s.energy_mj, resets: s.resets, throttle })}`,
      `    ${pairs({ rows_active: s.rows_active, rows_pending: s.rows_pending, bad_pages: s.bad_pages, rma_threshold: s.rma_threshold, rma: s.rma })}`);
  }
  return lines.join('\n') + '\n';
}

export const devJson = (d: Accel, withStats: boolean): Record<string, unknown> =>
  ({ ...identity(d), ...(withStats ? { stats: stats(d) } : {}) });

const getDevs = (ctx: Ctx, h: DevHandle | undefined): Promise<Accel[]> =>
  (h ? doOne(ctx, CMD.DEV_GET, h) : dumpAll(ctx, CMD.DEV_GET));

function printDevs(ctx: Ctx, devs: Accel[]): void {
  if (ctx.o.json) ctx.out(toJson({ dev: Object.fromEntries(devs.map((d) => [handleOf(d), devJson(d, ctx.o.stats)])) }, ctx.o.pretty) + '\n');
  else for (const d of devs) ctx.out(devText(d, ctx.o.stats));
}

async function show(ctx: Ctx, a: Args): Promise<void> {
  const h = optDev(a);
  a.end();
  printDevs(ctx, await getDevs(ctx, h));
}

function versions(list: Version[] | undefined): Record<string, Record<string, string>> {
  const g: Record<string, Record<string, string>> = {};
  for (const v of list ?? []) ((g[String(v.kind)] ??= {})[v.name ?? ''] = v.value ?? '');
  return g;
}

async function info(ctx: Ctx, a: Args): Promise<void> {
  const h = optDev(a);
  a.end();
  const devs = await getDevs(ctx, h);
  if (ctx.o.json) {
    const o = Object.fromEntries(devs.map((d) => [handleOf(d), {
      'driver': d.driver, 'serial_number': d.serial, 'board.serial_number': d.boardSerial, 'versions': versions(d.version),
    }]));
    ctx.out(toJson({ info: o }, ctx.o.pretty) + '\n');
    return;
  }
  for (const d of devs) {
    const lines = [`${handleOf(d)}:`, `  driver ${d.driver}`, `  serial_number ${d.serial}`, `  board.serial_number ${d.boardSerial}`, '  versions:'];
    for (const [kind, vs] of Object.entries(versions(d.version))) {
      lines.push(`      ${kind}:`);
      for (const [n, v] of Object.entries(vs)) lines.push(`        ${n} ${v}`);
    }
    ctx.out(lines.join('\n') + '\n');
  }
}

const ACTIONS = ['reset', 'offline', 'online'] as const;

async function set(ctx: Ctx, a: Args): Promise<void> {
  const h = needDev(a, USAGE);
  let w = a.next();
  if (w !== undefined && keyword(w, ['action'])) w = a.value('action', 'reset, offline or online');
  const action = w === undefined ? undefined : keyword(w, ACTIONS);
  if (!action) throw new UsageError(w === undefined ? `Command line is not complete: an action is needed.\n${USAGE}` : `Invalid action "${w}": expected reset, offline or online.`);
  a.end();
  await doOne(ctx, CMD.DEV_SET, { ...h, action: action as typeof ACTIONS[number] });
}

async function add(ctx: Ctx, a: Args): Promise<void> {
  const req: Accel = {};
  while (a.more) {
    const w = a.next()!;
    switch (keyword(w, ['index', 'bus', 'memory', 'compute_units'])) {
      case 'index': req.devIndex = parseU32(a.value(w, 'an index'), 'index'); break;
      case 'bus': {
        const h = parseDev(a.value(w, 'a bus address'));
        if (!h.busAddr) throw new UsageError('Invalid bus address: expected one like 0000:0b:00.0.');
        req.busAddr = h.busAddr;
        break;
      }
      case 'memory': req.memTotal = parseSize(a.value(w, 'a size'), 'memory'); break;
      case 'compute_units': req.computeUnits = parseU32(a.value(w, 'a number'), 'compute_units'); break;
      default: throw new UsageError(`Unknown option "${w}".\n${USAGE}`);
    }
  }
  printDevs(ctx, await doOne(ctx, CMD.DEV_NEW, req));
}

async function del(ctx: Ctx, a: Args): Promise<void> {
  const h = needDev(a, USAGE);
  a.end();
  await doOne(ctx, CMD.DEV_DEL, h);
}

export const devObject: Obj = {
  name: 'dev', usage: USAGE, default: 'show',
  commands: [['show', show], ['set', set], ['info', info], ['add', add], ['del', del], ['list', show]],
};
