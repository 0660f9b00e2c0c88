// accel ras: show (counters per block and severity, memory health), clear, inject, log.
import { BLOCKS, SEVERITIES } from '../device/enums';
import { type Accel, CMD, type Event, RAS_FORMAT_NAMES } from '../device/gen/accel';
import { type Args, UsageError, keyword, parseEnum, parseU32, parseUint } from './args';
import { type Ctx, type Obj, doOne, dumpAll } from './context';
import { needDev, optDev } from './handle';
import { dateTime, handleOf, num, pairs, toJson } from './output';
import { parseAttr, requestRange } from './policy';

const FORMATS = RAS_FORMAT_NAMES;

const USAGE = `Usage: accel ras show [ DEV ] [ format FORMAT ]
       accel ras clear DEV [ aggregate ]
       accel ras inject DEV block BLOCK severity SEVERITY [ sub_block N ] [ address ADDR ]
                        [ count N ] [ syndrome HEX ]
       accel ras log DEV [ from SEQ ] [ limit N ] [ format FORMAT ]
where  BLOCK := { ${BLOCKS.join(' | ')} }
       SEVERITY := { ${SEVERITIES.join(' | ')} }
       FORMAT := { ${FORMATS.join(' | ')} }  (where the daemon serves payload formats)
`;

const isZero = (v: number | bigint | undefined): boolean => v === undefined || v === 0 || v === 0n;

function memory(r: Accel, withPages: boolean): Record<string, unknown> {
  const m = r.memory ?? {};
  return {
    rows_active: m.rowsActive, rows_pending: m.rowsPending, bad_pages: m.badPage?.length ?? 0,
    ...(withPages ? { bad_page: (m.badPage ?? []).map((p) => `0x${p.toString(16)}`) } : {}),
    rma_threshold: m.rmaThreshold, rma: m.rma === undefined ? undefined : !!m.rma, next_seq: num(r.cursor),
  };
}

function rasJson(r: Accel): Record<string, unknown> {
  const counters: Record<string, Record<string, { volatile: unknown; aggregate: unknown }>> = {};
  for (const c of r.counter ?? []) {
    (counters[String(c.block)] ??= {})[String(c.severity)] = { volatile: c.volatile ?? 0, aggregate: c.aggregate ?? 0 };
  }
  return { name: r.devName, ...memory(r, true), counters };
}

function rasText(r: Accel, all: boolean): string {
  const lines = [`${handleOf(r)}:`, `  ${pairs({ name: r.devName, ...memory(r, false) })}`];
  const pages = r.memory?.badPage ?? [];
  if (all && pages.length) lines.push(`  bad_page ${pages.map((p) => `0x${p.toString(16)}`).join(',')}`);
  for (const c of r.counter ?? []) {
    if (!all && isZero(c.volatile) && isZero(c.aggregate)) continue;
    lines.push(`  ${pairs({ block: c.block, severity: c.severity, volatile: c.volatile ?? 0, aggregate: c.aggregate ?? 0 })}`);
  }
  return lines.join('\n') + '\n';
}

/** An optional "format FORMAT" (the daemon then answers with an opaque payload in that format). */
function optFormat(a: Args, w: string): Accel['format'] | undefined {
  return keyword(w, ['format']) ? parseEnum(a.value(w, 'a format'), FORMATS, 'format') as Accel['format'] : undefined;
}

/** Payloads: JSON ones as JSON (text mode: as sent), others as hex. */
function printPayloads(ctx: Ctx, section: string, rows: { h: string; format: unknown; payload?: Uint8Array }[]): void {
  const asText = (r: typeof rows[number]): string => Buffer.from(r.payload ?? []).toString(r.format === 'json' ? 'utf8' : 'hex');
  if (ctx.o.json) {
    const o: Record<string, unknown[]> = {};
    for (const r of rows) (o[r.h] ??= []).push({ format: r.format, payload: r.format === 'json' ? JSON.parse(asText(r) || 'null') : asText(r) });
    ctx.out(toJson({ [section]: o }, ctx.o.pretty) + '\n');
  } else for (const r of rows) ctx.out(`${r.h}:\n  format ${r.format} payload ${asText(r)}\n`);
}

async function show(ctx: Ctx, a: Args): Promise<void> {
  const h = a.peek() !== undefined && keyword(a.peek()!, ['format']) ? undefined : optDev(a);
  let format: Accel['format'] | undefined;
  if (a.more) {
    const w = a.next()!;
    format = optFormat(a, w);
    if (format === undefined) throw new UsageError(`Unknown option "${w}".\n${USAGE}`);
  }
  if (a.more) throw new UsageError(`Unknown option "${a.peek()}".\n${USAGE}`);
  const rs = h ? await doOne(ctx, CMD.RAS_GET, { ...h, format }) : await dumpAll(ctx, CMD.RAS_GET, { format });
  if (format !== undefined) {
    const devs = new Map((await dumpAll(ctx, CMD.DEV_GET)).map((d) => [d.devIndex, handleOf(d)]));
    printPayloads(ctx, 'ras', rs.map((r) => ({ h: devs.get(r.devIndex) ?? handleOf(r), format: r.format, payload: r.payload })));
    return;
  }
  if (ctx.o.json) ctx.out(toJson({ ras: Object.fromEntries(rs.map((r) => [handleOf(r), rasJson(r)])) }, ctx.o.pretty) + '\n');
  else for (const r of rs) ctx.out(rasText(r, ctx.o.stats));
}

async function clear(ctx: Ctx, a: Args): Promise<void> {
  const h = needDev(a, USAGE);
  let aggregate = false;
  if (a.more) {
    const w = a.next()!;
    if (!keyword(w, ['aggregate'])) throw new UsageError(`Unknown option "${w}".\n${USAGE}`);
    aggregate = true;
  }
  a.end();
  await doOne(ctx, CMD.RAS_CLEAR, { ...h, aggregate });
}

/** One RAS log record as JSON (also used by monitor). */
export function eventJson(e: Event): Record<string, unknown> {
  return {
    seq: e.seq, ts_ns: e.tsNs, kind: e.kind, block: e.block, severity: e.severity, error_id: e.errorId,
    error_name: e.errorName, count: e.count, address: e.address === undefined ? undefined : `0x${e.address.toString(16)}`,
    syndrome: e.syndrome?.length ? e.syndrome : undefined, action: e.action,
    folded: e.folded, first_ts_ns: e.firstTsNs, last_ts_ns: e.lastTsNs,
  };
}

/** One RAS log record as a text line of pairs, with a local date and time. */
export function eventText(e: Event): string {
  const j = eventJson(e);
  const when = e.tsNs === undefined ? {} : dateTime(e.tsNs);
  const { seq, ts_ns: _ts, ...rest } = j;
  return pairs({ seq, ...when, ...rest });
}

/**
 * A record the daemon answers an injection with that is not in the log (no seq): the storm
 * limiter folded the injection into its window's storm-overflow record, logged when the window
 * closes; the daemon sends that record as it stands.
 */
const foldedNow = (e: Event): boolean => e.seq === undefined && e.kind === 'storm-overflow';

function printEvents(ctx: Ctx, section: string, h: Accel, events: Event[], extra: Record<string, unknown> = {}): void {
  if (ctx.o.json) {
    ctx.out(toJson({ [section]: { [handleOf(h)]: events.map(eventJson) }, ...extra }, ctx.o.pretty) + '\n');
    return;
  }
  const lines = [`${handleOf(h)}:`];
  if (extra.lost) lines.push(`  lost ${extra.lost}`);
  for (const e of events) {
    if (foldedNow(e)) lines.push('  folded into the storm window (its storm-overflow record is logged when the window closes):');
    lines.push(`  ${eventText(e)}`);
  }
  ctx.out(lines.join('\n') + '\n');
}

/** The device's handle attributes (bus name and address) for printing, from a do on dev-get. */
async function handleFor(ctx: Ctx, h: Accel): Promise<Accel> {
  const [d] = await doOne(ctx, CMD.DEV_GET, h);
  return d;
}

async function inject(ctx: Ctx, a: Args): Promise<void> {
  const h = needDev(a, USAGE);
  const req: Accel = { ...h };
  while (a.more) {
    const w = a.next()!;
    switch (keyword(w, ['block', 'severity', 'sub_block', 'address', 'count', 'syndrome'])) {
      case 'block': req.block = parseEnum(a.value(w, 'a block'), BLOCKS, 'block') as Accel['block']; break;
      case 'severity': req.severity = parseEnum(a.value(w, 'a severity'), SEVERITIES, 'severity') as Accel['severity']; break;
      case 'sub_block': req.subBlock = parseU32(a.value(w, 'a number'), 'sub_block'); break;
      case 'address': req.address = parseUint(a.value(w, 'an address'), 'address'); break;
      case 'count': req.count = parseAttr(a.value(w, 'a number'), 'count', 'ras-inject', 'count') as number; break;
      case 'syndrome': {
        const v = a.value(w, 'hex bytes').replace(/^0x/i, '');
        if (!/^([0-9a-f]{2})+$/i.test(v)) throw new UsageError(`Invalid syndrome "${v}": expected hex bytes.`);
        const max = requestRange('ras-inject', 'syndrome').max;
        if (v.length / 2 > max) throw new UsageError(`Invalid syndrome: ${v.length / 2} bytes, at most ${max}.`);
        req.syndrome = new Uint8Array(Buffer.from(v, 'hex'));
        break;
      }
      default: throw new UsageError(`Unknown option "${w}".\n${USAGE}`);
    }
  }
  if (req.block === undefined || req.severity === undefined) {
    throw new UsageError(`Command line is not complete: block and severity are needed.\n${USAGE}`);
  }
  const [r] = await doOne(ctx, CMD.RAS_INJECT, req);
  printEvents(ctx, 'inject', await handleFor(ctx, { devIndex: r.devIndex }), r.event ?? []);
}

async function log(ctx: Ctx, a: Args): Promise<void> {
  const h = needDev(a, USAGE);
  const req: Accel = { ...h };
  while (a.more) {
    const w = a.next()!;
    switch (keyword(w, ['from', 'limit', 'format'])) {
      case 'from': req.cursor = parseUint(a.value(w, 'a sequence number'), 'from'); break;
      case 'limit': req.limit = parseU32(a.value(w, 'a number'), 'limit'); break;
      case 'format': req.format = optFormat(a, w); break;
      default: throw new UsageError(`Unknown option "${w}".\n${USAGE}`);
    }
  }
  const dev = await handleFor(ctx, h);
  const msgs = await dumpAll(ctx, CMD.RAS_LOG_GET, req);
  if (req.format !== undefined) {
    printPayloads(ctx, 'log', msgs.filter((m) => m.payload).map((m) => ({ h: handleOf(dev), format: m.format, payload: m.payload })));
    return;
  }
  let lost: number | bigint = 0;
  const events: Event[] = [];
  for (const m of msgs) {
    if (m.lost !== undefined) lost = num(m.lost)!;
    events.push(...(m.event ?? []));
  }
  printEvents(ctx, 'log', dev, events, isZero(lost) ? {} : { lost });
}

export const rasObject: Obj = {
  name: 'ras', usage: USAGE, default: 'show',
  commands: [['show', show], ['clear', clear], ['inject', inject], ['log', log]],
};
