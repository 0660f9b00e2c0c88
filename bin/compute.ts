// accel bo and accel job: buffer objects and GEMM jobs, where the daemon serves them (the ops
// are checked in the resolved family first, so an older daemon gets a clear message).
import { type Accel, CMD, DTYPE_NAMES, type Dtype } from '../device/gen/accel';
import { boWrites } from '../device/bo-write';
import { mapBo, shmStatus } from '../device/bomap-client';
import { type DType, elementSizes } from '../compute/dtypes';
import * as fs from 'fs';
import { type Args, OpError, UsageError, keyword, parseBytes, parseEnum, parseInteger, parseSize, parseU32 } from './args';
import { type Ctx, type Obj, call, doOne, dumpAll, requireOp, serves } from './context';
import { needDev } from './handle';
import { lastJob, lastJobFile, rememberJob } from './last-job';
import { num, pairs, plural, toJson } from './output';

const BO_USAGE = `Usage: accel bo show
       accel bo create DEV size SIZE
       accel bo destroy HANDLE
       accel bo write HANDLE file FILE [ offset BYTES ]
       accel bo read HANDLE file FILE [ offset BYTES ] [ size BYTES ]
Buffer objects belong to the connection that created them: write, read and a job that uses
them go in one batch file (accel -b FILE), or use "accel job run".
`;

const GEMM_ARGS = `m M n N k K [ dtype { f32 | f64 | i8 } ] [ alpha X ] [ beta Y ] [ trans_a ] [ trans_b ]
                  [ lda N ] [ ldb N ] [ ldc N ]`;

const JOB_USAGE = `Usage: accel job show [ ID | last ]
       accel job wait { ID | last } [ timeout MSEC ]
       accel job submit DEV ${GEMM_ARGS}
                  a HANDLE b HANDLE c HANDLE [ timeout MSEC ]
       accel job run DEV ${GEMM_ARGS}
                  a FILE b FILE [ c FILE ] out FILE [ timeout MSEC ]
"run" uploads A and B (and C, for beta != 0) into new buffer objects, runs the job, waits,
writes C to "out" and frees the buffers: raw little-endian row-major elements.
"last" is the last job this user submitted to this daemon (submit or run), from any accel process.
`;


function print(ctx: Ctx, section: string, key: string, rows: Record<string, unknown>[]): void {
  if (ctx.o.json) {
    ctx.out(toJson({ [section]: Object.fromEntries(rows.map(({ [key]: k, ...r }) => [String(k), r])) }, ctx.o.pretty) + '\n');
    return;
  }
  for (const { [key]: k, ...r } of rows) ctx.out(`${section} ${k}:\n  ${pairs(r)}\n`);
}

/** Handles are per port (as GEM handles per open file), so a BO is named by owner/handle. */
const boRows = (ms: Accel[]): Record<string, unknown>[] => ms.flatMap((m) => m.bo ?? []).map((b) =>
  ({ name: `${b.owner}/${b.handle}`, handle: b.handle, dev: b.devIndex, size: num(b.size), owner: b.owner, mapped: b.mapped || undefined }));

async function boShow(ctx: Ctx, a: Args): Promise<void> {
  a.end();
  await requireOp(ctx, CMD.BO_GET, 'bo show');
  print(ctx, 'bo', 'name', boRows(await dumpAll(ctx, CMD.BO_GET)));
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

function fileArg(a: Args, usage: string): string {
  const w = a.next();
  if (w === undefined || !keyword(w, ['file'])) throw new UsageError(`Command line is not complete: "file FILE" is needed.\n${usage}`);
  return a.value(w, 'a file name');
}

/**
 * Writes `data` in bo-write requests (up to 195,000 bytes each), the one that reaches furthest
 * first: a write past the BO's end, or to a missing BO, then fails before any byte lands, instead
 * of after the requests before it. Empty data is a zero-length write, which the daemon checks
 * the same way.
 */
async function upload(ctx: Ctx, handle: number, data: Uint8Array, offset = 0): Promise<void> {
  const ws = boWrites(handle, data, offset);
  await doOne(ctx, CMD.BO_WRITE, ws.pop() ?? { boHandle: handle, boOffset: offset, data: new Uint8Array(0) });
  await Promise.all(ws.map((w) => doOne(ctx, CMD.BO_WRITE, w)));
}

/**
 * The BO's bytes, mapped (bo-map), or undefined where they cannot be: a daemon that does not serve
 * bo-map, no shm addon in this process, a refused bo-map (EMFILE: the user's mapped BOs at their
 * limit, ENOMEM, ...) or a failed fetch. The caller then uses bo-write and bo-read, which work
 * whenever the BO does: a missing BO fails there, with its own message.
 */
async function tryMap(ctx: Ctx, handle: number): Promise<Uint8Array | undefined> {
  const c = await ctx.accel();
  if (!shmStatus().loaded || !serves(c, CMD.BO_MAP)) return undefined;
  try {
    return await mapBo(c, handle);
  } catch {
    return undefined;
  }
}

async function download(ctx: Ctx, handle: number, offset: number, size?: number): Promise<Uint8Array> {
  const parts = await dumpAll(ctx, CMD.BO_READ, { boHandle: handle, boOffset: offset, ...(size === undefined ? {} : { boSize: size }) });
  const total = parts.reduce((n, m) => n + (m.data?.length ?? 0), 0);
  const out = new Uint8Array(total);
  for (const m of parts) out.set(m.data!, Number(m.boOffset) - offset);
  return out;
}

function readFile(file: string): Uint8Array {
  try { return new Uint8Array(fs.readFileSync(file)); } catch (e) { throw new OpError(`cannot read ${file}: ${(e as Error).message}`); }
}

function writeFile(file: string, data: Uint8Array): void {
  try { fs.writeFileSync(file, data); } catch (e) { throw new OpError(`cannot write ${file}: ${(e as Error).message}`); }
}

/**
 * An output file opened before any work is sent, so that a path that cannot be written fails the
 * command at once (nothing submitted): opened for writing without truncating, truncated and
 * written only when the result is there; a file that did not exist before is removed if no result
 * comes. The open itself is the check (access() says yes to root on a read-only mount).
 */
interface OutFile { write(data: Uint8Array): void; abandon(): void }

function openOut(file: string): OutFile {
  const existed = fs.existsSync(file);
  let fd: number;
  try { fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o666); } catch (e) {
    throw new OpError(`cannot write ${file}: ${(e as Error).message}`);
  }
  const close = (): void => { try { fs.closeSync(fd); } catch { /* closed */ } };
  return {
    write(data) {
      try {
        if (fs.fstatSync(fd).isFile()) fs.ftruncateSync(fd, 0);
        for (let off = 0; off < data.length;) off += fs.writeSync(fd, data, off, data.length - off, null);
      } catch (e) {
        throw new OpError(`cannot write ${file}: ${(e as Error).message}`);
      } finally { close(); }
    },
    abandon() {
      close();
      if (!existed) fs.rmSync(file, { force: true });
    },
  };
}

/** HANDLE file FILE: what bo write and bo read start with. */
function handleAndFile(a: Args): { boHandle: number; file: string } {
  const w = a.next();
  if (w === undefined) throw new UsageError(`Command line is not complete: a handle is needed.\n${BO_USAGE}`);
  const boHandle = parseU32(w, 'handle');
  return { boHandle, file: fileArg(a, BO_USAGE) };
}

async function boWrite(ctx: Ctx, a: Args): Promise<void> {
  const { boHandle, file } = handleAndFile(a);
  let offset = 0;
  if (a.more) {
    const k = a.next()!;
    if (!keyword(k, ['offset'])) throw new UsageError(`Unknown option "${k}".\n${BO_USAGE}`);
    offset = parseBytes(a.value(k, 'bytes'), 'offset');
  }
  a.end();
  await requireOp(ctx, CMD.BO_WRITE, 'bo write');
  await upload(ctx, boHandle, readFile(file), offset);
}

async function boRead(ctx: Ctx, a: Args): Promise<void> {
  const { boHandle, file } = handleAndFile(a);
  let offset = 0;
  let size: number | undefined;
  while (a.more) {
    const k = a.next()!;
    const kw = keyword(k, ['offset', 'size']);
    if (kw === 'offset') offset = parseBytes(a.value(k, 'bytes'), 'offset');
    else if (kw === 'size') size = parseBytes(a.value(k, 'bytes'), 'size');
    else throw new UsageError(`Unknown option "${k}".\n${BO_USAGE}`);
  }
  await requireOp(ctx, CMD.BO_READ, 'bo read');
  writeFile(file, await download(ctx, boHandle, offset, size));
}

interface GemmArgs { gemm: NonNullable<Accel['gemm']>; files: Record<string, string>; handles: Record<string, number>; timeoutMs?: number }

const f64 = (x: number): Uint8Array => { const b = new Uint8Array(8); new DataView(b.buffer).setFloat64(0, x, true); return b; };

/** The GEMM words shared by submit and run; operands are handles (submit) or files (run). */
function parseGemm(a: Args, operands: 'handles' | 'files', usage: string): GemmArgs {
  const g: NonNullable<Accel['gemm']> = {};
  const r: GemmArgs = { gemm: g, files: {}, handles: {} };
  const words = ['m', 'n', 'k', 'dtype', 'alpha', 'beta', 'trans_a', 'trans_b', 'lda', 'ldb', 'ldc', 'a', 'b', 'c', 'out', 'timeout'];
  while (a.more) {
    const w = a.next()!;
    const kw = words.includes(w) ? w : keyword(w, words);
    switch (kw) {
      case 'm': case 'n': case 'k': case 'lda': case 'ldb': case 'ldc': {
        // A dimension may be 0, as in BLAS (nothing to compute; k = 0 gives C = beta * C); a
        // leading dimension is at least 1.
        const t = a.value(w, 'a number');
        g[kw] = parseInteger(t, kw, kw.startsWith('ld') ? 1n : 0n, 0xffffffffn) as number;
        break;
      }
      case 'dtype': g.dtype = parseEnum(a.value(w, 'a type'), DTYPE_NAMES, 'dtype') as Dtype; break;
      case 'alpha': case 'beta': {
        const t = a.value(w, 'a number');
        const v = t.trim() === '' ? NaN : Number(t); // Number('') is 0
        if (!Number.isFinite(v)) throw new UsageError(`Invalid ${kw} "${t}": expected a number.`);
        g[kw] = f64(v);
        break;
      }
      case 'trans_a': g.transA = 1; break;
      case 'trans_b': g.transB = 1; break;
      case 'timeout': r.timeoutMs = parseU32(a.value(w, 'milliseconds'), 'timeout'); break;
      case 'a': case 'b': case 'c': case 'out':
        if (operands === 'files') r.files[kw] = a.value(w, 'a file name');
        else if (kw === 'out') throw new UsageError(`Unknown option "${w}".\n${usage}`);
        else r.handles[kw] = parseU32(a.value(w, 'a handle'), kw);
        break;
      default: throw new UsageError(`Unknown option "${w}".\n${usage}`);
    }
  }
  for (const d of ['m', 'n', 'k'] as const) if (g[d] === undefined) throw new UsageError(`Command line is not complete: "${d}" is needed.\n${usage}`);
  const need = operands === 'files' ? ['a', 'b', 'out'] : ['a', 'b', 'c'];
  const have = operands === 'files' ? r.files : r.handles;
  for (const x of need) if (have[x] === undefined) throw new UsageError(`Command line is not complete: "${x}" is needed.\n${usage}`);
  g.dtype ??= 'f32';
  if (operands === 'files' && g.beta && new DataView(g.beta.buffer, g.beta.byteOffset, 8).getFloat64(0, true) !== 0 && r.files.c === undefined) {
    throw new UsageError(`Command line is not complete: beta is not 0, so "c FILE" is needed (C = alpha * A * B + beta * C).\n${usage}`);
  }
  return r;
}

/**
 * Each file against its operand's shape: row-major, `rows` rows of `ld` elements (the last row
 * may stop at `cols`). A file of another size is another shape or another dtype: refused.
 */
function checkSizes(g: NonNullable<Accel['gemm']>, inputs: Record<string, Uint8Array | undefined>, files: Record<string, string>): void {
  const { input: ines, output: oes } = elementSizes(g.dtype as DType);
  const ops = {
    a: { rows: g.transA ? g.k! : g.m!, cols: g.transA ? g.m! : g.k!, ld: g.lda, es: ines, name: 'A', ldName: 'lda' },
    b: { rows: g.transB ? g.n! : g.k!, cols: g.transB ? g.k! : g.n!, ld: g.ldb, es: ines, name: 'B', ldName: 'ldb' },
    c: { rows: g.m!, cols: g.n!, ld: g.ldc, es: oes, name: 'C', ldName: 'ldc' },
  };
  for (const [x, o] of Object.entries(ops)) {
    const data = inputs[x];
    if (!data) continue;
    const ld = o.ld ?? o.cols;
    if (ld < o.cols) throw new UsageError(`Invalid ${o.ldName} ${ld}: ${o.name} has ${o.cols} columns, so ${o.ldName} is at least ${o.cols}.`);
    const big = (x: number): bigint => BigInt(x); // exact: shapes can reach 2^32 x 2^32
    const empty = o.rows === 0 || o.cols === 0; // no elements: an empty file
    const tight = empty ? 0n : ((big(o.rows) - 1n) * big(ld) + big(o.cols)) * big(o.es), full = empty ? 0n : big(o.rows) * big(ld) * big(o.es);
    if (big(data.length) === tight || big(data.length) === full) continue;
    const type = x === 'c' && g.dtype === 'i8' ? 'i32' : g.dtype;
    throw new UsageError(`Invalid ${x} "${files[x]}": ${plural(data.length, 'byte')}, but ${o.name} as ${o.rows}x${o.cols} ${type}` +
      `${o.ld !== undefined ? ` with ${o.ldName} ${ld}` : ''} takes ${tight === full ? plural(tight, 'byte') : `${tight} or ${full} bytes`}.`);
  }
}

async function jobSubmit(ctx: Ctx, a: Args): Promise<void> {
  const dev = needDev(a, JOB_USAGE);
  const r = parseGemm(a, 'handles', JOB_USAGE);
  Object.assign(r.gemm, { aHandle: r.handles.a, bHandle: r.handles.b, cHandle: r.handles.c });
  await requireOp(ctx, CMD.JOB_SUBMIT, 'job submit');
  const [s] = await doOne(ctx, CMD.JOB_SUBMIT, { ...dev, gemm: r.gemm, timeoutMs: r.timeoutMs });
  rememberJob(ctx.port, s.jobId!);
  print(ctx, 'job', 'id', [{ id: s.jobId, status: 'queued' }]);
}

async function jobRun(ctx: Ctx, a: Args): Promise<void> {
  const dev = needDev(a, JOB_USAGE);
  const r = parseGemm(a, 'files', JOB_USAGE);
  const g = r.gemm;
  await requireOp(ctx, CMD.JOB_SUBMIT, 'job run');
  const ces = elementSizes(g.dtype as DType).output;
  const cBytes = g.m! * (g.ldc ?? g.n!) * ces;
  const inputs = { a: readFile(r.files.a), b: readFile(r.files.b), c: r.files.c ? readFile(r.files.c) : undefined };
  checkSizes(g, inputs, r.files);
  const out = openOut(r.files.out);
  let written = false;
  const handles: number[] = [];
  const create = async (size: number): Promise<number> => {
    const [x] = await doOne(ctx, CMD.BO_CREATE, { ...dev, boSize: Math.max(1, size) });
    handles.push(x.boHandle!);
    return x.boHandle!;
  };
  try {
    const ha = await create(inputs.a.length);
    const hb = await create(inputs.b.length);
    const hc = await create(Math.max(cBytes, inputs.c?.length ?? 0));
    // Mapped where it can be: A and B are copied into the BOs and C read out of its mapping,
    // with no bo-write or bo-read.
    const mapA = await tryMap(ctx, ha);
    const maps = mapA ? [mapA, await tryMap(ctx, hb), await tryMap(ctx, hc)] : [];
    const put = async (h: number, i: number, data: Uint8Array) => { if (maps[i]) maps[i]!.set(data); else await upload(ctx, h, data); };
    await put(ha, 0, inputs.a);
    await put(hb, 1, inputs.b);
    if (inputs.c) await put(hc, 2, inputs.c);
    const [s] = await doOne(ctx, CMD.JOB_SUBMIT, { ...dev, gemm: { ...g, aHandle: ha, bHandle: hb, cHandle: hc }, timeoutMs: r.timeoutMs });
    rememberJob(ctx.port, s.jobId!);
    const done = await waitJob(ctx, s.jobId!);
    const rows = jobRows([done]);
    if (done.job?.[0]?.status === 'done') { out.write(maps[2]?.subarray(0, cBytes) ?? await download(ctx, hc, 0, cBytes)); written = true; }
    print(ctx, 'job', 'id', rows);
    if (done.job?.[0]?.status !== 'done') throw new OpError(`job ${s.jobId} ${done.job?.[0]?.status}: ${done.job?.[0]?.message ?? ''}`);
  } finally {
    if (!written) out.abandon();
    for (const h of handles) await doOne(ctx, CMD.BO_DESTROY, { boHandle: h }).catch(() => undefined);
  }
}

const jobRows = (ms: Accel[]): Record<string, unknown>[] => ms.flatMap((m) => m.job ?? []).map((j) => ({
  id: j.id, dev: j.devIndex, uid: j.uid, status: j.status, error: j.error || undefined, duration_ns: num(j.durationNs),
  flops: num(j.flops), message: j.message,
}));

/** A job id, or `last`: the last job this user submitted to this daemon (bin/last-job.ts). */
function jobId(ctx: Ctx, w: string): number {
  if (w !== 'last') return parseU32(w, 'job id');
  const id = lastJob(ctx.port);
  if (id === undefined) throw new OpError(`Error: no job submitted to the daemon at port 0x${ctx.port.toString(16)} by this user yet (none recorded in ${lastJobFile(ctx.port)}).`);
  return id;
}

async function jobShow(ctx: Ctx, a: Args): Promise<void> {
  const id = a.more ? jobId(ctx, a.next()!) : undefined;
  a.end();
  await requireOp(ctx, CMD.JOB_GET, 'job show');
  print(ctx, 'job', 'id', jobRows(id === undefined ? await dumpAll(ctx, CMD.JOB_GET) : await doOne(ctx, CMD.JOB_GET, { jobId: id })));
}

async function jobWait(ctx: Ctx, a: Args): Promise<void> {
  const w = a.next();
  if (w === undefined) throw new UsageError(`Command line is not complete: a job id is needed.\n${JOB_USAGE}`);
  const req: Accel = { jobId: jobId(ctx, w) };
  if (a.more) {
    const k = a.next()!;
    if (!keyword(k, ['timeout'])) throw new UsageError(`Unknown option "${k}".\n${JOB_USAGE}`);
    req.timeoutMs = parseU32(a.value(k, 'milliseconds'), 'timeout');
  }
  a.end();
  await requireOp(ctx, CMD.JOB_WAIT, 'job wait');
  print(ctx, 'job', 'id', jobRows([await waitJob(ctx, req.jobId!, req.timeoutMs)]));
}

/** Wait for a job however long it runs (or `timeoutMs`): the typed client's job-wait (in slices). */
async function waitJob(ctx: Ctx, jobId: number, timeoutMs?: number): Promise<Accel> {
  return call(ctx, async (c) => (await c.do(CMD.JOB_WAIT, { jobId, timeoutMs }))[0]);
}

export const boObject: Obj = {
  name: 'bo', usage: BO_USAGE, default: 'show',
  commands: [['show', boShow], ['create', boCreate], ['destroy', boDestroy], ['write', boWrite], ['read', boRead]],
};

export const jobObject: Obj = {
  name: 'job', usage: JOB_USAGE, default: 'show',
  commands: [['show', jobShow], ['wait', jobWait], ['submit', jobSubmit], ['run', jobRun]],
};
