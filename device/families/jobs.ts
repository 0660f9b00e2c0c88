// The accel family's command path: buffer objects and GEMM jobs (device/jobs.ts does the work).
import { payloadLen, setAttrMissing, setErrAttr, setErrMsg, walk } from '../../attrs';
import { EBUSY, EINVAL, ENOENT } from '../../attrs/errno';
import { type Credentials, type DoCtx, type DumpCtx, type Failed, type Family, type Result, GENL_HDRLEN, NLMSG_HDRLEN, done, fail, isAdmin, isFailed, more, onClientGone } from '../../genl';
import { type Handlers, notifyEvent, readRequest, writeAttrs } from '../../genl/ynl';
import { type Accel, ACCEL, GEMM, spec } from '../gen/accel';
import { type Engine, type GemmRequest, type Job, JobError, createBo, freeBo, inUse, lookupBo, submit, waitJob, writeBo } from '../jobs';
import { type BoMaps, offerMap } from '../bomap';
import { type Served, dumpByKey, targetDevice } from './common';

const HANDLE = { index: ACCEL.DEV_INDEX, name: ACCEL.DEV_NAME, addr: ACCEL.BUS_ADDR };
/** Bytes of BO data per bo-read message. */
export const READ_CHUNK = 32768;

export const jobAttrs = (j: Job): NonNullable<Accel['job']>[number] => ({
  id: j.id, devIndex: j.dev.index, status: j.status, error: j.error, durationNs: j.durationNs, flops: j.flops,
  ...(j.message ? { message: j.message } : {}), ...(j.uid >= 0 ? { uid: j.uid } : {}),
});

const f64 = (b: Uint8Array | undefined, dflt: number): number =>
  b ? new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true) : dflt;

/** Turn a JobError into errno + extack. */
function jobFailed(c: DoCtx | DumpCtx, err: unknown): Failed {
  if (err instanceof JobError) return fail(err.errno, c.ext, err.message.slice(0, 200));
  throw err;
}

export function jobHandlers(s: Served, eng: Engine, maps: BoMaps): Handlers {
  const { rt } = s;
  const req = (c: DoCtx | DumpCtx): Accel => readRequest<Accel>(c, spec, 'accel');
  /** The more-data part of a bo-write that crosses `size` (the BO's end), data ending at `end`. */
  const crossing = (c: DoCtx, end: number, size: number): number => {
    const v = c.req;
    let hit = -1;
    walk(v, c.at + NLMSG_HDRLEN + GENL_HDRLEN, c.at + v.dv.getUint32(c.at, true), (at, type) => {
      if (type !== ACCEL.MORE_DATA) return true;
      end += payloadLen(v, at);
      if (end <= size) return true;
      hit = at;
      return false;
    });
    return hit;
  };
  const need = (c: DoCtx, v: unknown, type: number): boolean => {
    if (v !== undefined) return true;
    setAttrMissing(c.ext, -1, type);
    return false;
  };
  // BOs and jobs belong to the client (socket) that made them, filed under its id (never reused),
  // not its port: a successor on a recycled port finds none of them. Handles are per client.
  const bo = (c: DoCtx | DumpCtx, handle: number) => {
    const b = lookupBo(eng, handle, c.owner().id);
    if (!b) setErrAttr(c.ext, c.attrs[ACCEL.BO_HANDLE], `no BO ${handle}`);
    return b;
  };
  /** The port each owner id stood for (for bo-get's owner). */
  const ownerPort = new Map<number, number>();
  onClientGone(s.srv, (cl) => ownerPort.delete(cl.id));
  const admin = (c: DoCtx | DumpCtx) => isAdmin(s.srv, c.sender);
  const visible = (c: DoCtx | DumpCtx, j: Job) => jobSeenBy(s.srv, c.sender, j);
  const job = (c: DoCtx, id: number) => {
    const j = eng.jobs.get(id);
    if (!j || !visible(c, j)) { setErrAttr(c.ext, c.attrs[ACCEL.JOB_ID], `no job ${id}`); return undefined; }
    return j;
  };
  const reply = (c: DoCtx, a: Accel): Result => { writeAttrs(c.reply(), spec, 'accel', a); c.end(); return done(); };

  return {
    'bo-create': {
      do: (c) => {
        const a = req(c);
        const d = targetDevice(rt, a, c.attrs, c.ext, HANDLE);
        if (isFailed(d)) return d;
        if (!need(c, a.boSize, ACCEL.BO_SIZE)) return fail(EINVAL);
        try {
          const me = c.owner();
          if (me.gone) return done(); // a closed socket's request: answered to nobody, holds nothing
          const b = createBo(eng, d, a.boSize!, me.id, admin(c) ? undefined : me.uid);
          ownerPort.set(me.id, me.port);
          return reply(c, { devIndex: d.index, boHandle: b.handle, boSize: b.size });
        } catch (e) { return jobFailed(c, e); }
      },
    },
    'bo-destroy': {
      do: (c) => {
        const a = req(c);
        if (!need(c, a.boHandle, ACCEL.BO_HANDLE)) return fail(EINVAL);
        const b = bo(c, a.boHandle!);
        if (!b) return fail(ENOENT);
        const j = inUse(eng, b);
        if (j) return fail(EBUSY, c.ext, `BO ${b.handle} is used by job ${j.id} (${j.status})`);
        freeBo(eng, b);
        return done();
      },
    },
    'bo-write': {
      do: (c) => {
        // Synchronous, so the data may stay a view into the receive buffer: it is copied once,
        // into the BO, before this returns (a copy first cost more than the write itself).
        const a = readRequest<Accel>(c, spec, 'accel', true);
        if (!need(c, a.boHandle, ACCEL.BO_HANDLE) || !need(c, a.data, ACCEL.DATA)) return fail(EINVAL);
        const b = bo(c, a.boHandle!);
        if (!b) return fail(ENOENT);
        const off = Number(a.boOffset ?? 0);
        const parts = a.moreData ? [a.data!, ...a.moreData] : [a.data!];
        let len = 0;
        for (const p of parts) len += p.length;
        if (off + len > b.size) {
          // The attribute that crosses the end: data, or the more-data part.
          const at = off + a.data!.length > b.size ? c.attrs[ACCEL.DATA] : crossing(c, off + a.data!.length, b.size);
          setErrAttr(c.ext, at, `write of ${len} bytes at offset ${off} exceeds BO ${b.handle}'s ${b.size} bytes`);
          return fail(EINVAL);
        }
        // All or nothing: checked before the first byte lands.
        writeBo(b, off, parts);
        return done();
      },
    },
    // Served only with the shm addon: without it the op is left out (device/daemon.ts), so nlctrl
    // does not list it, caps-get does not claim it, and a request gets EOPNOTSUPP.
    ...(eng.shm ? { 'bo-map': {
      do: (c: DoCtx) => {
        const a = req(c);
        if (!need(c, a.boHandle, ACCEL.BO_HANDLE)) return fail(EINVAL);
        const b = bo(c, a.boHandle!);
        if (!b) return fail(ENOENT);
        try {
          const o = offerMap(maps, b, c.owner().uid);
          return reply(c, { boHandle: b.handle, boSize: b.size, mapPath: o.path, mapToken: o.token });
        } catch (e) { return jobFailed(c, e); }
      },
    } } : {}),
    'bo-read': {
      dump: (c) => {
        const st = c.state as { handle?: number; off?: number; end?: number };
        if (st.handle === undefined) {
          const a = req(c);
          if (a.boHandle === undefined) { setAttrMissing(c.ext, -1, ACCEL.BO_HANDLE); return fail(EINVAL); }
          const b = bo(c, a.boHandle);
          if (!b) return fail(ENOENT);
          const off = Number(a.boOffset ?? 0);
          const end = a.boSize === undefined ? b.size : off + Number(a.boSize);
          if (off > b.size) {
            setErrAttr(c.ext, c.attrs[ACCEL.BO_OFFSET], `offset ${a.boOffset} is past the end of BO ${b.handle} (${b.size} bytes)`);
            return fail(EINVAL);
          }
          if (end > b.size) {
            setErrMsg(c.ext, `read of ${a.boSize} bytes at offset ${off} exceeds BO ${b.handle}'s ${b.size} bytes`);
            return fail(EINVAL);
          }
          Object.assign(st, { handle: b.handle, off, end });
        }
        const b = lookupBo(eng, st.handle!, c.owner().id);
        if (!b) return fail(ENOENT, c.ext, `BO ${st.handle} was destroyed during the read`);
        while (st.off! < st.end!) {
          const n = Math.min(READ_CHUNK, st.end! - st.off!);
          writeAttrs(c.start(), spec, 'accel', { boHandle: b.handle, boOffset: st.off, data: new Uint8Array(b.mem, st.off, n) });
          if (!c.end()) return more();
          st.off! += n;
        }
        return done();
      },
    },
    'bo-get': {
      // An admin sees every BO; anyone else only their own socket's. Resumed after the last BO id
      // sent: BOs freed between chunks must not shift the rest out of the dump (finding M6).
      dump: (c) => dumpByKey(c, [...eng.bos.values()].filter((b) => admin(c) || b.owner === c.owner().id).sort((x, y) => x.id - y.id), (b) => b.id, (w, b) =>
        writeAttrs(w, spec, 'accel', { bo: [{ handle: b.handle, size: b.size, devIndex: b.dev.index, owner: ownerPort.get(b.owner) ?? b.owner, ...(b.fd !== undefined ? { mapped: true } : {}) }] })),
    },
    'job-submit': {
      do: (c) => {
        const a = req(c);
        const d = targetDevice(rt, a, c.attrs, c.ext, HANDLE);
        if (isFailed(d)) return d;
        const g = a.gemm;
        if (!need(c, g, ACCEL.GEMM)) return fail(EINVAL);
        for (const [k, t] of [['m', GEMM.M], ['n', GEMM.N], ['k', GEMM.K], ['dtype', GEMM.DTYPE], ['aHandle', GEMM.A_HANDLE],
          ['bHandle', GEMM.B_HANDLE], ['cHandle', GEMM.C_HANDLE]] as const) {
          if (g![k] === undefined) { setAttrMissing(c.ext, c.attrs[ACCEL.GEMM], t); return fail(EINVAL); }
        }
        if (typeof g!.dtype !== 'string') return fail(EINVAL, c.ext, 'unknown dtype');
        const r: GemmRequest = {
          m: g!.m!, n: g!.n!, k: g!.k!, dtype: g!.dtype, transA: !!g!.transA, transB: !!g!.transB,
          alpha: f64(g!.alpha, 1), beta: f64(g!.beta, 0),
          // An ld defaults to its row width, and to 1 for a width of 0 (as BLAS wants ld >= max(1, width)).
          a: { handle: g!.aHandle!, offset: Number(g!.aOffset ?? 0), ld: g!.lda ?? Math.max(1, g!.transA ? g!.m! : g!.k!) },
          b: { handle: g!.bHandle!, offset: Number(g!.bOffset ?? 0), ld: g!.ldb ?? Math.max(1, g!.transB ? g!.k! : g!.n!) },
          c: { handle: g!.cHandle!, offset: Number(g!.cOffset ?? 0), ld: g!.ldc ?? Math.max(1, g!.n!) },
        };
        if (r.dtype === 'i8' && (!Number.isInteger(r.alpha) || !Number.isInteger(r.beta))) {
          setErrMsg(c.ext, 'i8 jobs need integer alpha and beta');
          return fail(EINVAL);
        }
        try {
          const me = c.owner();
          if (me.gone) return done();
          const j = submit(eng, d, r, me.id, a.timeoutMs ?? 10000, me.uid);
          return reply(c, { jobId: j.id });
        } catch (e) { return jobFailed(c, e); }
      },
    },
    'job-get': {
      do: (c) => {
        const a = req(c);
        if (!need(c, a.jobId, ACCEL.JOB_ID)) return fail(EINVAL);
        const j = job(c, a.jobId!);
        return j ? reply(c, { job: [jobAttrs(j)] }) : fail(ENOENT);
      },
      dump: (c) => dumpByKey(c, [...eng.jobs.values()].filter((j) => visible(c, j)).sort((x, y) => x.id - y.id), (j) => j.id,
        (w, j) => writeAttrs(w, spec, 'accel', { job: [jobAttrs(j)] })),
    },
    'job-wait': {
      do: async (c) => {
        const a = req(c);
        if (!need(c, a.jobId, ACCEL.JOB_ID)) return fail(EINVAL);
        const j = job(c, a.jobId!);
        if (!j) return fail(ENOENT);
        try {
          const done = await waitJob(j, a.timeoutMs ?? 0);
          return reply(c, { job: [jobAttrs(done)] });
        } catch (e) { return jobFailed(c, e); }
      },
    },
  };
}

/**
 * A job belongs to the socket that submitted it (its queued jobs are cancelled when that socket
 * goes), and is seen by the submitter's user (`job wait` from another process of theirs) and by
 * admins: job-get, job-wait, the job-get dump and the `jobs` group's events alike.
 */
function jobSeenBy(srv: Served['srv'], who: Credentials, j: Job): boolean {
  return isAdmin(srv, who) || (who.uid >= 0 && j.uid === who.uid);
}

/**
 * Job completions on the `jobs` group: to its multicast members (privileged) and to the unicast
 * subscribers who may see the job.
 */
export function wireJobEvents(s: Served, fam: Family, eng: Engine): void {
  eng.onDone.push((j) => notifyEvent(s.srv, fam, spec, 'job-ntf', { job: [jobAttrs(j)] }, (c) => jobSeenBy(s.srv, c, j)));
}
