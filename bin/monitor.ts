// accel monitor: stream events until interrupted, devlink mon style ([obj,cmd] headers; -j keeps
// one {"mon":[...]} document that is closed on SIGINT). RAS events missed in a sequence gap or an
// overrun are read back from the device's log by the client library and printed marked recovered.
import type { AccelEvent } from '../device/client';
import { type Accel, CMD } from '../device/gen/accel';
import { type Args, OpError, UsageError, keyword } from './args';
import { type Ctx, dumpAll } from './context';
import { devJson, devText } from './dev';
import { healthJson, healthText } from './health';
import { capturingOpen, openPcap, type Pcap } from './pcap';
import { handleOf, isoNs, pairs, timestampLine, toJson } from './output';
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
      const rows = (a.job ?? []).map((j) => ({ id: j.id, dev: j.devIndex, status: j.status, error: j.error || undefined, message: j.message }));
      return { obj, cmd, text: rows.map((r) => `job ${r.id}:\n  ${pairs({ ...r, id: undefined })}\n`).join(''), json: { job: rows } };
    }
  }
  return undefined;
}

function parse(a: Args): { objs: Set<MonObj>; pcap?: string } {
  const objs = new Set<MonObj>();
  let pcap: string | undefined;
  while (a.more) {
    const w = a.next()!;
    if (w === '--pcap' || w === '-pcap' || w === 'pcap') { pcap = a.value(w, 'a file name'); continue; }
    const k = keyword(w, OBJECTS);
    if (!k) throw new UsageError(`Unknown monitor object "${w}": expected all, dev, ras, health or job.`);
    if (k === 'all') for (const o of OBJECTS.slice(1)) objs.add(o as MonObj);
    else objs.add(k as MonObj);
  }
  if (!objs.size) for (const o of OBJECTS.slice(1)) objs.add(o as MonObj);
  return { objs, pcap };
}

export async function runMonitor(ctx: Ctx, a: Args): Promise<void> {
  const { objs, pcap: file } = parse(a);
  let pcap: Pcap | undefined;
  if (file) {
    try { pcap = openPcap(file); } catch (e) { throw new OpError(`Cannot write capture "${file}": ${(e as Error).message}`); }
  }
  const c = await ctx.accel(pcap ? { open: capturingOpen(pcap, ctx.port) } : {});
  const groups = [...new Set([...objs].map((o) => GROUP_OF[o]))].filter((g) => c.family.groups.has(g));
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
  const sub = await c.subscribe(groups, onEvent);
  process.stderr.write(`accel monitor: listening to ${groups.join(', ')} (${sub.mode === 'multicast' ? 'multicast' : 'unicast via the subscribe op'}); Ctrl-C to stop\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  if (o.json) out(o.pretty ? '\n  ]\n}\n' : ']}\n');
  await sub.close().catch(() => undefined);
  c.close();
  pcap?.close();
}
