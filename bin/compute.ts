// accel bo and accel job: buffer objects and GEMM jobs, where the daemon serves them (the ops
// are checked in the resolved family first, so an older daemon gets a clear message).
import { type Accel, CMD } from '../device/gen/accel';
import { type Args, UsageError, keyword, parseSize, parseU32 } from './args';
import { type Ctx, type Obj, doOne, dumpAll, requireOp } from './context';
import { needDev } from './handle';
import { num, pairs, toJson } from './output';

const BO_USAGE = `Usage: accel bo show
       accel bo create DEV size SIZE
       accel bo destroy HANDLE
`;

const JOB_USAGE = `Usage: accel job show [ ID ]
       accel job wait ID [ timeout MSEC ]
`;

function print(ctx: Ctx, section: string, key: string, rows: Record<string, unknown>[]): void {
  if (ctx.o.json) {
    ctx.out(toJson({ [section]: Object.fromEntries(rows.map(({ [key]: k, ...r }) => [String(k), r])) }, ctx.o.pretty) + '\n');
    return;
  }
  for (const { [key]: k, ...r } of rows) ctx.out(`${section} ${k}:\n  ${pairs(r)}\n`);
}

const boRows = (ms: Accel[]): Record<string, unknown>[] =>
  ms.flatMap((m) => m.bo ?? []).map((b) => ({ handle: b.handle, dev: b.devIndex, size: num(b.size), owner: b.owner }));

async function boShow(ctx: Ctx, a: Args): Promise<void> {
  a.end();
  await requireOp(ctx, CMD.BO_GET, 'bo show');
  print(ctx, 'bo', 'handle', boRows(await dumpAll(ctx, CMD.BO_GET)));
}

async function boCreate(ctx: Ctx, a: Args): Promise<void> {
  const h = needDev(a, BO_USAGE);
  const w = a.next();
  if (w === undefined || !keyword(w, ['size'])) throw new UsageError(`Command line is not complete: "size SIZE" is needed.\n${BO_USAGE}`);
  const size = parseSize(a.value(w, 'a size'), 'size');
  a.end();
  await requireOp(ctx, CMD.BO_CREATE, 'bo create');
  const [r] = await doOne(ctx, CMD.BO_CREATE, { ...h, boSize: size });
  print(ctx, 'bo', 'handle', [{ handle: r.boHandle, dev: r.devIndex, size: num(r.boSize) }]);
}

async function boDestroy(ctx: Ctx, a: Args): Promise<void> {
  const w = a.next();
  if (w === undefined) throw new UsageError(`Command line is not complete: a handle is needed.\n${BO_USAGE}`);
  const boHandle = parseU32(w, 'handle');
  a.end();
  await requireOp(ctx, CMD.BO_DESTROY, 'bo destroy');
  await doOne(ctx, CMD.BO_DESTROY, { boHandle });
}

const jobRows = (ms: Accel[]): Record<string, unknown>[] => ms.flatMap((m) => m.job ?? []).map((j) => ({
  id: j.id, dev: j.devIndex, status: j.status, error: j.error || undefined, duration_ns: num(j.durationNs),
  flops: num(j.flops), message: j.message,
}));

async function jobShow(ctx: Ctx, a: Args): Promise<void> {
  const id = a.more ? parseU32(a.next()!, 'job id') : undefined;
  a.end();
  await requireOp(ctx, CMD.JOB_GET, 'job show');
  print(ctx, 'job', 'id', jobRows(id === undefined ? await dumpAll(ctx, CMD.JOB_GET) : await doOne(ctx, CMD.JOB_GET, { jobId: id })));
}

async function jobWait(ctx: Ctx, a: Args): Promise<void> {
  const w = a.next();
  if (w === undefined) throw new UsageError(`Command line is not complete: a job id is needed.\n${JOB_USAGE}`);
  const req: Accel = { jobId: parseU32(w, 'job id') };
  if (a.more) {
    const k = a.next()!;
    if (!keyword(k, ['timeout'])) throw new UsageError(`Unknown option "${k}".\n${JOB_USAGE}`);
    req.timeoutMs = parseU32(a.value(k, 'milliseconds'), 'timeout');
  }
  a.end();
  await requireOp(ctx, CMD.JOB_WAIT, 'job wait');
  print(ctx, 'job', 'id', jobRows(await doOne(ctx, CMD.JOB_WAIT, req)));
}

export const boObject: Obj = {
  name: 'bo', usage: BO_USAGE, default: 'show',
  commands: [['show', boShow], ['create', boCreate], ['destroy', boDestroy]],
};

export const jobObject: Obj = {
  name: 'job', usage: JOB_USAGE, default: 'show',
  commands: [['show', jobShow], ['wait', jobWait]],
};
