// accel caps show: RAS payload formats (with schema versions and endpoints) and family features
// per device, where the daemon serves caps-get.
import { type Accel, CMD, FEATURE_NAMES, FEATURE_VALUES, RAS_FORMAT_NAMES, RAS_FORMAT_VALUES } from '../device/gen/accel';
import type { Args } from './args';
import { type Ctx, type Obj, doOne, dumpAll, requireOp } from './context';
import { optDev } from './handle';
import { handleOf, pairs, toJson } from './output';

const USAGE = `Usage: accel caps show [ DEV ]
The grpc format (capability bit 4) is offered only while the daemon runs its gRPC endpoint, which
is off by default: start it with accel daemon --grpc ADDR.
`;

// Why a device lacks the grpc bit, printed with it: the endpoint is off unless the daemon was started
// with --grpc, so on a default daemon bit 4 is always clear and that is not a fault.
const GRPC_NOTE = 'grpc not offered: capability bit 4 is set only while the daemon runs its gRPC endpoint '
  + '(off by default; accel daemon --grpc ADDR) and the device\'s formats include grpc';

function capsJson(c: Accel): Record<string, unknown> {
  // formats: bit n = ras-format value n; features: a flags definition, so the values are the bits.
  const formats = RAS_FORMAT_NAMES.filter((f) => ((c.formats ?? 0) >>> RAS_FORMAT_VALUES[f]) & 1);
  const features = Array.isArray(c.features) ? c.features
    : FEATURE_NAMES.filter((f) => ((c.features as number ?? 0) & FEATURE_VALUES[f]) !== 0);
  const info = (c.formatInfo ?? []).map((f) => ({ format: f.format, schema_version: f.schemaVersion, endpoint: f.endpoint }));
  return { formats, features, format_info: info, ...(formats.includes('grpc') ? {} : { note: GRPC_NOTE }) };
}

async function show(ctx: Ctx, a: Args): Promise<void> {
  const h = optDev(a);
  a.end();
  await requireOp(ctx, CMD.CAPS_GET, 'caps show');
  const cs = h ? await doOne(ctx, CMD.CAPS_GET, h) : await dumpAll(ctx, CMD.CAPS_GET);
  const devs = new Map((await dumpAll(ctx, CMD.DEV_GET)).map((d) => [d.devIndex, d]));
  const handle = (c: Accel): string => handleOf(devs.get(c.devIndex) ?? c);
  if (ctx.o.json) {
    ctx.out(toJson({ caps: Object.fromEntries(cs.map((c) => [handle(c), capsJson(c)])) }, ctx.o.pretty) + '\n');
    return;
  }
  for (const c of cs) {
    const j = capsJson(c);
    const lines = [`${handle(c)}:`, `  formats ${(j.formats as string[]).join(' ') || 'none'}`,
      `  features ${(j.features as string[]).join(' ') || 'none'}`];
    for (const f of j.format_info as Record<string, unknown>[]) lines.push(`  ${pairs(f)}`);
    if (j.note) lines.push(`  ${j.note}`);
    ctx.out(lines.join('\n') + '\n');
  }
}

export const capsObject: Obj = { name: 'caps', usage: USAGE, default: 'show', commands: [['show', show]] };
