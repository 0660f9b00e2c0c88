// gemm-job: a GEMM job on the accel daemon, with accelnl's TypeScript client, checked against the
// same product computed in this process by the engine the daemon runs.
//
// A buffer object (BO) belongs to the socket that created it. boWrites() cuts an upload into
// bo-write requests of up to 195,000 bytes (one datagram each); job-wait answers when the job ends,
// however long it runs (the client asks in slices shorter than its own timeout); bo-read is a dump.
//
// In a project with accelnl installed (see README.md there):
//   npx tsc --module nodenext --target es2022 --strict gemm-job.ts && node gemm-job.js [N]
// From a clone of the repository, on its sources:
//   npx esbuild --bundle --platform=node docs/examples/gemm-job.ts --alias:accelnl=./index.ts \
//     --outfile=/tmp/gemm-job.js --external:netlink && node /tmp/gemm-job.js [N]
import { accel, boWrites, connectAccel, gemm } from 'accelnl';

const { CMD } = accel;

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 256);
  const a = Float32Array.from({ length: n * n }, (_, i) => (i % 7) - 3);
  const b = Float32Array.from({ length: n * n }, (_, i) => (i % 5) - 2);
  const bytes = n * n * 4;
  const c = await connectAccel();
  const bo = async (size: number): Promise<number> => (await c.do(CMD.BO_CREATE, { devIndex: 0, boSize: size }))[0].boHandle!;
  const [ha, hb, hc] = [await bo(bytes), await bo(bytes), await bo(bytes)];
  try {
    for (const [h, x] of [[ha, a], [hb, b]] as const) {
      await Promise.all(boWrites(h, new Uint8Array(x.buffer)).map((w) => c.do(CMD.BO_WRITE, w)));
    }
    const [s] = await c.do(CMD.JOB_SUBMIT, {
      devIndex: 0, timeoutMs: 60000, gemm: { m: n, n, k: n, dtype: 'f32', aHandle: ha, bHandle: hb, cHandle: hc },
    });
    const job = (await c.do(CMD.JOB_WAIT, { jobId: s.jobId }))[0].job![0];
    // Copied out: a small Buffer is a view into a shared pool, so its .buffer is not C alone.
    const got = new Float32Array(n * n);
    new Uint8Array(got.buffer).set(Buffer.concat((await c.dump(CMD.BO_READ, { boHandle: hc, boSize: bytes })).map((m) => m.data!)));
    const want = gemm({ dtype: 'f32', m: n, n, k: n, a, b, c: new Float32Array(n * n) });
    const same = got.length === want.length && got.every((v, i) => v === want[i]);
    console.log(`job ${s.jobId} on accel${job.devIndex}: ${job.status}, ${n}x${n}x${n} f32 in ${(Number(job.durationNs) / 1e6).toFixed(1)} ms, ` +
      `${same ? 'the same bits as' : 'NOT the same as'} the engine in this process`);
    if (!same) process.exitCode = 1;
  } finally {
    for (const boHandle of [ha, hb, hc]) await c.do(CMD.BO_DESTROY, { boHandle });
    c.close();
  }
}

main().catch((e: unknown) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
