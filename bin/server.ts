// accel server show: the daemon's netlink server, as stats-get reports it: what it has received,
// answered and dropped since it started, and the dumps, queues and subscriptions it holds now.
import { CMD, type Server } from '../device/gen/accel';
import type { Args } from './args';
import { type Ctx, type Obj, doOne, requireOp } from './context';
import { pairs, toJson } from './output';

const USAGE = `Usage: accel server show
`;

/** Counters and gauges in snake_case, rejected as errno name → count. */
function serverJson(s: Server): Record<string, unknown> {
  const n = (x: number | bigint | undefined): number | bigint => x ?? 0;
  // The total is the sum of its causes: the daemon's own `errors` counter leaves out errors that
  // end a dump or an asynchronous request (job wait), which `rejected` counts.
  const errors = (s.rejected ?? []).reduce((t, r) => t + BigInt(r.count ?? 0), 0n);
  return {
    datagrams: n(s.datagrams), messages: n(s.messages), errors: errors <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(errors) : errors, truncated: n(s.truncated),
    malformed: n(s.malformed), dumps: n(s.dumps), dumps_running: n(s.dumpsRunning), send_failures: n(s.sendFailures),
    dropped: n(s.dropped), overruns: n(s.overruns), stalled: n(s.stalled), backlog_ports: n(s.backlogPorts),
    backlog_datagrams: n(s.backlogDatagrams), backlog_bytes: n(s.backlogBytes), subscriptions: n(s.subscriptions),
    raced_sends: n(s.racedSends), unproven_sends: n(s.unprovenSends),
    busy_poll_us: n(s.busyPollUs), busy_polled: n(s.busyPolled),
    rejected: Object.fromEntries((s.rejected ?? []).map((r) => [r.errnoName ?? '?', n(r.count)])),
  };
}

async function show(ctx: Ctx, a: Args): Promise<void> {
  a.end();
  await requireOp(ctx, CMD.STATS_GET, 'server show');
  const [r] = await doOne(ctx, CMD.STATS_GET);
  const j = serverJson(r.server ?? {});
  if (ctx.o.json) {
    ctx.out(toJson({ server: j }, ctx.o.pretty) + '\n');
    return;
  }
  const pick = (...keys: string[]): Record<string, unknown> => Object.fromEntries(keys.map((k) => [k, j[k]]));
  const rejected = Object.entries(j.rejected as Record<string, unknown>);
  ctx.out([
    `server: ${pairs(pick('datagrams', 'messages', 'errors', 'truncated', 'malformed'))}`,
    `  ${pairs(pick('dumps', 'dumps_running', 'send_failures', 'dropped', 'overruns', 'stalled'))}`,
    `  ${pairs(pick('backlog_ports', 'backlog_datagrams', 'backlog_bytes', 'subscriptions'))}`,
    `  ${pairs(pick('raced_sends', 'unproven_sends', 'busy_poll_us', 'busy_polled'))}`,
    `  rejected ${rejected.length ? rejected.map(([k, v]) => `${k} ${v}`).join(' ') : 'none'}`,
  ].join('\n') + '\n');
}

export const serverObject: Obj = { name: 'server', usage: USAGE, default: 'show', commands: [['show', show]] };
