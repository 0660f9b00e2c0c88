// End-to-end cost of a GEMM job over netlink against a direct call to the compute engine:
// n^3 f32, BOs uploaded in chunks, job submitted, completion waited for, result read back.
// The overhead that matters is submit -> completion beyond the direct call (upload and read-back
// are reported on their own: they move the data, which a direct call does not). Uploads are
// measured both ways: bo-write requests, and writing A and B into BOs mapped with bo-map (once a
// client holds its mappings, an upload is a memcpy into them; the first fill of a mapped BO pays
// its page faults, reported apart).
import { createPool } from '../compute';
import { boWrites } from '../device/bo-write';
import { mapBo } from '../device/bomap-client';
import { connectAccel } from '../device/client';
import { CMD } from '../device/gen/accel';
import { startChild } from './_daemon';
import { fmt, quick, smoke, report, stats, table } from './_lib';

const F32 = Float32Array.BYTES_PER_ELEMENT;


async function main(): Promise<void> {
  const n = smoke ? 64 : quick ? 256 : 512;
  // JOB_ROUNDS=N: more rounds, for a steadier median.
  const rounds = Number(process.env.JOB_ROUNDS) || (smoke ? 1 : quick ? 5 : 15);
  const port = 0x41490000 + (process.pid & 0xffff);
  const child = await startChild(port);
  const c = await connectAccel({ serverPort: port, rcvbuf: 8 << 20 });
  const pool = createPool();
  try {
    // On SharedArrayBuffer, like the daemon's BOs: the direct call then computes in place too (with
    // ordinary arrays the pool would copy A and B in and C out, and the job would look cheaper).
    const shared = (f: (i: number) => number) => {
      const x = new Float32Array(new SharedArrayBuffer(n * n * F32));
      for (let i = 0; i < x.length; i++) x[i] = f(i);
      return x;
    };
    const a = shared((i) => ((i * 31) % 7) - 3);
    const b = shared((i) => ((i * 17) % 5) - 2);
    const bytes = n * n * F32;
    const bo = async () => (await c.do(CMD.BO_CREATE, { devIndex: 0, boSize: bytes }))[0].boHandle!;
    const upload = async (h: number, x: Float32Array) => {
      const u8 = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
      await Promise.all(boWrites(h, u8).map((w) => c.do(CMD.BO_WRITE, w)));
    };
    // Mapped BOs, held for the whole run as a client would hold its buffers.
    const [hma, hmb] = [await bo(), await bo()];
    const [ma, mb] = [new Float32Array((await mapBo(c, hma)).buffer), new Float32Array((await mapBo(c, hmb)).buffer)];
    // Both pools compile their kernels before the rounds: the daemon's started at its first BO
    // (above), this one's now; neither then runs beside the rounds (docs/compute.md, warm-up).
    await pool.warm();
    /** bo-map of two new BOs and their first fill with A and B, then freed. */
    const mapFresh = async (): Promise<number> => {
      const [h1, h2] = [await bo(), await bo()];
      const t = performance.now();
      new Float32Array((await mapBo(c, h1)).buffer).set(a);
      new Float32Array((await mapBo(c, h2)).buffer).set(b);
      const took = performance.now() - t;
      for (const h of [h1, h2]) await c.do(CMD.BO_DESTROY, { boHandle: h });
      return took;
    };
    const results = [];
    // Warm-up rounds, not counted: the first rounds measure V8 compiling the daemon's bo-write and
    // job paths, and the first-touch faults of BO memory the daemon then keeps (docs/daemon.md).
    const warm = smoke ? 0 : 2;
    for (let r = 0; r < warm + rounds; r++) {
      const [ha, hb, hc] = [await bo(), await bo(), await bo()];
      const t0 = performance.now();
      await upload(ha, a);
      await upload(hb, b);
      const t1 = performance.now();
      const [s] = await c.do(CMD.JOB_SUBMIT, { devIndex: 0, gemm: { m: n, n, k: n, dtype: 'f32', aHandle: ha, bHandle: hb, cHandle: hc } });
      const [w] = await c.do(CMD.JOB_WAIT, { jobId: s.jobId, timeoutMs: 60000 });
      const t2 = performance.now();
      let got = 0;
      for (const m of await c.dump(CMD.BO_READ, { boHandle: hc, boSize: bytes })) got += m.data!.length;
      const t3 = performance.now();
      if (w.job![0].status !== 'done' || got !== bytes) throw new Error(`job ${w.job![0].status}, read ${got} bytes`);
      // The direct call: same engine, same thread count, data already in place.
      const cc = new Float32Array(new SharedArrayBuffer(n * n * F32));
      const d0 = performance.now();
      await pool.gemm({ dtype: 'f32', m: n, n, k: n, a, b, c: cc });
      const direct = performance.now() - d0;
      // The same upload into the held mappings, and into fresh ones.
      const m0 = performance.now();
      ma.set(a);
      mb.set(b);
      const mapped = performance.now() - m0;
      const fresh = await mapFresh();
      if (r >= warm) results.push({ upload: t1 - t0, mapped, fresh, job: t2 - t1, read: t3 - t2, direct, engineMs: Number(w.job![0].durationNs) / 1e6 });
      for (const h of [ha, hb, hc]) await c.do(CMD.BO_DESTROY, { boHandle: h });
    }
    // Medians and spreads, never best-of; the overhead also paired per round (job and direct call
    // measured back to back, so a neighbour's load hits both).
    const st = {
      upload: stats(results.map((r) => r.upload)), job: stats(results.map((r) => r.job)), engine: stats(results.map((r) => r.engineMs)),
      direct: stats(results.map((r) => r.direct)), read: stats(results.map((r) => r.read)),
      mapped: stats(results.map((r) => r.mapped)), fresh: stats(results.map((r) => r.fresh)),
      overhead: stats(results.map((r) => (r.job - r.direct) / r.direct)),
    };
    const overhead = (st.job.median - st.direct.median) / st.direct.median;
    const mbps = (ms: number) => (2 * n * n * F32) / ms / 1e3;
    const sp = (x: { median: number; min: number; max: number }, d = 1) => `${fmt(x.median, d)} (${fmt(x.min, d)}-${fmt(x.max, d)})`;
    table(`GEMM job over netlink, ${n}^3 f32${quick ? ' (quick)' : ''}: median (min-max) of ${rounds} rounds`, [{
      'upload A+B (ms)': sp(st.upload), 'upload MB/s (median)': fmt(mbps(st.upload.median), 0),
      'mapped upload (ms)': sp(st.mapped, 2), 'mapped MB/s': fmt(mbps(st.mapped.median), 0), 'map + first fill (ms)': sp(st.fresh), 'map + first fill MB/s': fmt(mbps(st.fresh.median), 0),
      'submit->done (ms)': sp(st.job), 'engine time (ms)': sp(st.engine),
      'direct call (ms)': sp(st.direct), 'read C (ms)': sp(st.read),
      'overhead (medians)': `${fmt(overhead * 100, 1)}%`,
      'overhead per round: median (min-max)': `${fmt(st.overhead.median * 100, 1)}% (${fmt(st.overhead.min * 100, 1)}-${fmt(st.overhead.max * 100, 1)}%)`,
    }]);
    report('job', { n, rounds: results, stats: st, overhead, overheadPaired: st.overhead.median, uploadMBps: mbps(st.upload.median),
      mappedMBps: mbps(st.mapped.median), freshMappedMBps: mbps(st.fresh.median) });
  } finally {
    await pool.close();
    c.close();
    await child.stop();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
