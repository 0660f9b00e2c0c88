// accel monitor: stream events until interrupted, devlink mon style ([obj,cmd] headers; -j keeps
// one {"mon":[...]} document that is closed on SIGINT). RAS events missed in a sequence gap or an
// overrun are read back from the device's log by the client library and printed marked recovered.
import type { AccelEvent } from '../device/client';
import { type Accel, CMD } from '../device/gen/accel';
import { type Args, OpError, UsageError, keyword, parseU32 } from './args';
import type { ConnectionEvent } from '../device/client';
import { type Ctx, dumpAll, hexPort } from './context';
import { devJson, devText } from './dev';
import { healthJson, healthText } from './health';
import { capturingOpen, openPcap, type Pcap } from './pcap';
import { handleOf, isoNs, pairs, plural, timestampLine, toJson } from './output';
import { eventJson, eventText } from './ras';

const OBJECTS = ['all', 'dev', 'ras', 'health', 'job'] as const;
type MonObj = Exclude<typeof OBJECTS[number], 'all'>;
const GROUP_OF: Record<MonObj, string> = { dev: 'config', health: 'config', ras: 'ras', job: 'jobs' };
const OBJ_OF: Record<string, [MonObj, string]> = {
  'dev-add-ntf': ['dev', 'new'], 'dev-del-ntf': ['dev', 'del'], 'dev-state-ntf': ['dev', 'state'],
  'health-ntf': ['health', 'status'], 'ras-event-ntf': ['ras', 'event'], 'job-ntf': ['job', 'status'],
};

interface Printed { obj: MonObj; cmd: string; text: string; json: Record<string, unknown> }

function render(e: AccelEvent, handle: (a: Accel) => string): Printed | undefined {
  const m = OBJ_OF[e.cmd];
  if (!m) return undefined;
  const [obj, cmd] = m;
  const a = e.attrs;
  const h = handle(a);
  switch (e.cmd) {
    case 'dev-add-ntf': return { obj, cmd, text: devText(a, false), json: { dev: { [h]: devJson(a, false) } } };
    case 'dev-del-ntf': return { obj, cmd, text: `${h}: name ${a.devName}\n`, json: { dev: { [h]: { name: a.devName } } } };
    case 'dev-state-ntf': {
      const o = { name: a.devName, state: a.state, health: a.health };
      return { obj, cmd, text: `${h}:\n  ${pairs(o)}\n`, json: { dev: { [h]: o } } };
    }
    case 'health-ntf': return { obj, cmd, text: healthText({ ...a, busName: 'pci' }, a.reporter ?? []), json: { health: { [h]: healthJson(a.reporter ?? []) } } };
    case 'ras-event-ntf': {
      const ev = a.event ?? [];
      const rec = e.recovered ? { recovered: true } : {};
      return {
        obj, cmd, text: `${h}:\n${ev.map((x) => `  ${eventText(x)}${e.recovered ? ' recovered true' : ''}\n`).join('')}`,
        json: { ras: { [h]: ev.map((x) => ({ ...eventJson(x), ...rec })) } },
      };
    }
    case 'job-ntf': {
      const rows = (a.job ?? []).map((j) => ({ id: j.id, dev: j.devIndex, uid: j.uid, status: j.status, error: j.error || undefined, message: j.message }));
      return { obj, cmd, text: rows.map((r) => `job ${r.id}:\n  ${pairs({ ...r, id: undefined })}\n`).join(''), json: { job: rows } };
    }
  }
  return undefined;
}

/** How long the daemon may stay away before the monitor gives up, by default. */
export const DEFAULT_AWAY_MS = 60000;

function parse(a: Args): { objs: Set<MonObj>; pcap?: string; timeoutMs: number } {
  const objs = new Set<MonObj>();
  let pcap: string | undefined;
  let timeoutMs = DEFAULT_AWAY_MS;
  while (a.more) {
    const w = a.next()!;
    if (w === '--pcap' || w === '-pcap' || w === 'pcap') { pcap = a.value(w, 'a file name'); continue; }
    if (w === '--timeout' || w === '-timeout' || w === 'timeout') { timeoutMs = parseU32(a.value(w, 'milliseconds'), 'timeout'); continue; }
    const k = keyword(w, OBJECTS);
    if (!k) throw new UsageError(`Unknown monitor object "${w}": expected all, dev, ras, health or job.`);
    if (k === 'all') for (const o of OBJECTS.slice(1)) objs.add(o as MonObj);
    else objs.add(k as MonObj);
  }
  if (!objs.size) for (const o of OBJECTS.slice(1)) objs.add(o as MonObj);
  return { objs, pcap, timeoutMs };
}

export async function runMonitor(ctx: Ctx, a: Args): Promise<void> {
  const { objs, pcap: file, timeoutMs } = parse(a);
  let pcap: Pcap | undefined;
  if (file) {
    try { pcap = openPcap(file); } catch (e) { throw new OpError(`Cannot write capture "${file}": ${(e as Error).message}`); }
  }
  const c = await ctx.accel(pcap ? { open: capturingOpen(pcap, ctx.port) } : {});
  // The config group always: its dev-add-ntf gives the handle of a device added later, which RAS
  // and job events (that carry only an index) are printed under; what was not asked is not printed.
  const asked = [...new Set([...objs].map((o) => GROUP_OF[o]))].filter((g) => c.family.groups.has(g));
  const groups = c.family.groups.has(GROUP_OF.dev) && !asked.includes(GROUP_OF.dev) ? [...asked, GROUP_OF.dev] : asked;
  // Handles for events that carry only a device index (RAS records).
  const handles = new Map<number, string>();
  for (const d of await dumpAll({ ...ctx, accel: async () => c }, CMD.DEV_GET)) handles.set(d.devIndex!, handleOf(d));
  const handle = (x: Accel): string => (x.busAddr ? handleOf({ busName: 'pci', ...x }) : handles.get(x.devIndex!) ?? handleOf(x));
  const { o, out } = ctx;
  let first = true;
  if (o.json) out(o.pretty ? '{\n  "mon": [' : '{"mon":[');
  const onEvent = (e: AccelEvent): void => {
    if (e.cmd === 'dev-add-ntf' && e.attrs.devIndex !== undefined) handles.set(e.attrs.devIndex, handle(e.attrs));
    const p = render(e, handle);
    if (!p || !objs.has(p.obj)) return;
    if (o.json) {
      const el = { command: p.cmd, ...(o.timestamp ? { timestamp: isoNs() } : {}), ...p.json };
      const s = toJson(el, o.pretty);
      out(`${first ? '' : ','}${o.pretty ? '\n' + s.replace(/^/gm, '    ') : s}`);
      first = false;
    } else {
      out(`${o.timestamp ? timestampLine() + '\n' : ''}[${p.obj},${p.cmd}] ${p.text}`);
    }
  };
  // The daemon may go away and come back (a restart): the subscription follows it and reads the
  // gap back from the RAS log. Away longer than --timeout, the monitor says so and fails.
  let gaveUp: (() => void) | undefined;
  let away: NodeJS.Timeout | undefined;
  const onConnection = (e: ConnectionEvent): void => {
    if (e.state === 'down') {
      process.stderr.write(`accel monitor: lost the daemon at netlink port ${hexPort(ctx.port)} (${e.reason}); ` +
        `${timeoutMs ? `waiting up to ${timeoutMs} ms for it` : 'waiting for it'}\n`);
      clearTimeout(away);
      if (timeoutMs) away = setTimeout(() => gaveUp?.(), timeoutMs);
    } else {
      clearTimeout(away);
      // Only RAS events are read back (jobs and devices have no log): said when they are followed.
      process.stderr.write(`accel monitor: the daemon is back${e.restarted ? ' (restarted)' : ''}` +
        `${objs.has('ras') ? `; ${plural(e.recovered, 'event')} read back from the RAS log` : ''}\n`);
    }
  };
  const sub = await c.subscribe(groups, onEvent, { reconnect: true, onConnection });
  process.stderr.write(`accel monitor: listening to ${asked.join(', ')} (${sub.mode === 'multicast' ? 'multicast' : 'unicast via the subscribe op'}); Ctrl-C to stop\n`);
  const failed = await new Promise<boolean>((resolve) => {
    const stop = (): void => resolve(false);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    gaveUp = () => resolve(true);
  });
  clearTimeout(away);
  if (o.json) out(o.pretty ? '\n  ]\n}\n' : ']}\n');
  await sub.close().catch(() => undefined);
  c.close();
  pcap?.close();
  if (failed) {
    throw new OpError(`accel monitor: the daemon at netlink port ${hexPort(ctx.port)} stayed away for ${timeoutMs} ms; giving up.`);
  }
}
