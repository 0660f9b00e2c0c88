// GEMM: our f32 / f64 / i8 kernels (single thread and the worker pool) side by side with the CPU
// backend of @tensorflow/tfjs-core and ml-matrix's mmul, square n x n x n. Reports GFLOP/s
// (2*n^3 / time; GOP/s for i8) as the median of interleaved reps with their spread (never best-of),
// plus ratios of medians; the pool's scaling also as the median of per-rep paired ratios.
// Pool rows use inputs already on SharedArrayBuffer; "pool, copy" rows pass ordinary arrays, so
// they include copying A, B and C into shared memory and C back.
import { cpus, availableParallelism, loadavg } from 'os';
import { Worker } from 'worker_threads';
import * as tf from '@tensorflow/tfjs-core';
// Used below: a bare side-effect import is dropped by esbuild (the package's sideEffects list omits
// its node entry), and then the 'cpu' backend never registers.
import { version_cpu as tfjsCpuVersion } from '@tensorflow/tfjs-backend-cpu';
import { Matrix } from 'ml-matrix';
import { runInThisContext } from 'vm';
import { DEFAULT_JOIN_FLOPS, DEFAULT_MIN_FLOPS, blocking, createPool, gemm } from '../compute';
import { kernelText } from '../compute/kernel-text';
import { dot3x2, installScratch } from '../compute/kernels';
import type { GemmDesc, Pool } from '../compute';
import { type Stats, fmt, quick, report, stats, table } from './_lib';

const SIZES = quick ? [128, 256] : [256, 512, 1024];
// Reps per size (after warmup); the slow libraries get fewer at n = 1024 to keep the run short.
const REPS = (n: number, slow: boolean): number => (quick ? (slow ? 3 : 9) : n >= 1024 ? (slow ? 3 : 7) : n >= 512 ? (slow ? 4 : 9) : 15);
const WARMUP = quick ? 1 : 2;

interface Case { name: string; kind: string; slow?: boolean; run: () => void | Promise<void> }
interface Result { impl: string; n: number; ms: Stats; median: number; q1: number; q3: number; times: number[]; cpuMedian: number; busy: number }

/**
 * The anchor for the one-thread rows: the core's scalar multiply-add rate from JS, measured in the
 * same interleaved rounds. Six independent chains of c += a * x on values in registers, so no
 * loads: one vmulsd and one vaddsd per multiply-add, and no kernel with loads can beat it (JS has
 * no SIMD and V8 emits no FMA). Returns the sum so the loop is not dropped.
 */
function scalarPeak(flops: number, x: number): number {
  let c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0;
  const a0 = x * 1.1, a1 = x * 1.2, a2 = x * 1.3, a3 = x * 1.4, a4 = x * 1.5, a5 = x * 1.6;
  for (let i = 0, n = Math.ceil(flops / 12); i < n; i++) {
    c0 += a0 * x; c1 += a1 * x; c2 += a2 * x; c3 += a3 * x; c4 += a4 * x; c5 += a5 * x;
  }
  return c0 + c1 + c2 + c3 + c4 + c5;
}
let sink = 0;

/**
 * The GEMM's own micro-kernel alone: compute/kernels.ts's dot3x2, evaluated from the kernel text as
 * the engine does, on this thread's packed globals (whatever they hold), over 4 row panels x 4
 * column pairs at kc = 128: 20 KiB, so every load hits L1. What its loop gets from this core with
 * no cache misses, beside the register-only anchor: if the whole GEMM runs near this, the blocking
 * and packing cost little and the gap to the anchor is the loop's own instructions.
 */
const dotL1 = runInThisContext(`(function () {\n${kernelText()}\n${installScratch.name}(null);\nreturn ${dot3x2.name};\n})()`) as typeof dot3x2;
const dotOut = new Float64Array(6);
function microL1(flops: number): void {
  const KC = 128;
  for (let done = 0; done < flops; done += 16 * 12 * KC) {
    for (let q = 0; q < 4; q++) for (let jj = 0; jj < 4; jj++) dotL1(KC, q * KC, jj * KC, dotOut);
  }
  sink += dotOut[0];
}

/**
 * The anchor for the pool rows: the same register-only loop on `threads` threads at once, on
 * workers of the bench's own (not the pool's), started by a message and claiming equal chunks from
 * a shared counter, the two ways the pool runs a call:
 * - joined (calls below DEFAULT_JOIN_FLOPS): this thread and threads - 1 workers, this thread
 *   waiting (Atomics) for those still inside a chunk;
 * - asynchronous: `threads` workers while this thread waits in the event loop.
 * Its time against the one-thread anchor's, in the same rounds, is how far this machine let that
 * many threads scale at that moment, wake-ups and their placement included. On this VM it is
 * often well short of 2: its kernel packs woken threads onto the waker's vCPU (the boot parameter
 * sched_vcpu_pack; docs/compute.md), which the guest cannot see in /proc/stat.
 */
function peakThreads(threads: number): { run: (flops: number, joined: boolean) => Promise<void>; close: () => Promise<void> } {
  const CHUNKS = 64;
  const claimLoop = (ctl: Int32Array, per: number, chunks: number): number => {
    let s = 0;
    for (let i = Atomics.add(ctl, 0, 1); i < chunks; i = Atomics.add(ctl, 0, 1)) s += scalarPeak(per, 1 + s * 1e-300);
    return s;
  };
  // The worker runs these two functions' own text: scalarPeak under the name claimLoop's text
  // calls it by (a bundler may have renamed it), and everything else comes in as arguments.
  const src = [
    '"use strict";',
    "const { parentPort } = require('node:worker_threads');",
    `const ${scalarPeak.name} = (${scalarPeak.toString()});`,
    `const claimLoop = (${claimLoop.toString()});`,
    'let sink = 0;',
    // ctl: [0] chunks claimed, [1] workers started, [2] workers done
    'parentPort.on("message", ({ ctl, per, chunks, reply }) => { Atomics.add(ctl, 1, 1); sink += claimLoop(ctl, per, chunks); Atomics.add(ctl, 2, 1); Atomics.notify(ctl, 2); if (reply) parentPort.postMessage(0); });',
  ].join('\n');
  const workers = Array.from({ length: threads }, () => new Worker(src, { eval: true }));
  return {
    run: async (flops: number, joined: boolean) => {
      const ctl = new Int32Array(new SharedArrayBuffer(12)), per = flops / CHUNKS;
      if (!joined) {
        const replies = workers.map((w) => new Promise((resolve) => w.once('message', resolve)));
        for (const w of workers) w.postMessage({ ctl, per, chunks: CHUNKS, reply: true });
        await Promise.all(replies);
        return;
      }
      for (const w of workers.slice(1)) w.postMessage({ ctl, per, chunks: CHUNKS, reply: false });
      sink += claimLoop(ctl, per, CHUNKS);
      // Done before started: a worker that starts after this read finds nothing left to claim.
      for (let done = Atomics.load(ctl, 2); done < Atomics.load(ctl, 1); done = Atomics.load(ctl, 2)) Atomics.wait(ctl, 2, done);
    },
    close: async () => { await Promise.all(workers.map((w) => w.terminate())); },
  };
}

/**
 * CPU time of the process in ms (all threads: pool workers and V8's GC threads count too). A
 * per-thread clock would be better; /proc/thread-self/schedstat is not (it lags by up to a
 * scheduler tick, which made 2 ms reps read as 80 GOP/s).
 */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
}

function arrays(n: number, shared: boolean) {
  const r = rand(n);
  const mk = <T>(Ctor: { new (b: ArrayBufferLike): T; BYTES_PER_ELEMENT: number }, len: number): T =>
    new Ctor(shared ? new SharedArrayBuffer(len * Ctor.BYTES_PER_ELEMENT) : new ArrayBuffer(len * Ctor.BYTES_PER_ELEMENT));
  const len = n * n;
  const a32 = mk(Float32Array, len), b32 = mk(Float32Array, len), a64 = mk(Float64Array, len), b64 = mk(Float64Array, len);
  const a8 = mk(Int8Array, len), b8 = mk(Int8Array, len);
  for (let i = 0; i < len; i++) {
    a64[i] = a32[i] = r() * 2 - 1; b64[i] = b32[i] = r() * 2 - 1;
    a8[i] = Math.floor(r() * 256) - 128; b8[i] = Math.floor(r() * 256) - 128;
  }
  return {
    f32: { dtype: 'f32', m: n, n, k: n, a: a32, b: b32, c: mk(Float32Array, len) } as GemmDesc,
    f64: { dtype: 'f64', m: n, n, k: n, a: a64, b: b64, c: mk(Float64Array, len) } as GemmDesc,
    i8: { dtype: 'i8', m: n, n, k: n, a: a8, b: b8, c: mk(Int32Array, len) } as GemmDesc,
  };
}

function cases(n: number, pool: Pool, peak2: ReturnType<typeof peakThreads>): Case[] {
  const plain = arrays(n, false), shared = arrays(n, true);
  const ta = tf.tensor2d(plain.f32.a as Float32Array, [n, n]), tb = tf.tensor2d(plain.f32.b as Float32Array, [n, n]);
  const toRows = (x: Float64Array) => Array.from({ length: n }, (_, i) => Array.from(x.subarray(i * n, (i + 1) * n)));
  const ma = new Matrix(toRows(plain.f64.a as Float64Array)), mb = new Matrix(toRows(plain.f64.b as Float64Array));
  return [
    { name: 'scalar peak (anchor)', kind: 'peak', run: () => { sink += scalarPeak(2 * n ** 3, 1 + sink * 1e-300); } },
    // Below DEFAULT_MIN_FLOPS the pool runs a call on the calling thread alone, and so does its anchor.
    { name: `scalar peak, ${pool.threads} threads (pool anchor)`, kind: 'peak', run: () => (2 * n ** 3 < DEFAULT_MIN_FLOPS
      ? void (sink += scalarPeak(2 * n ** 3, 1 + sink * 1e-300))
      : peak2.run(2 * n ** 3, pool.threads > 1 && 2 * n ** 3 < DEFAULT_JOIN_FLOPS)) },
    { name: 'micro-kernel alone, in L1', kind: 'peak', run: () => microL1(2 * n ** 3) },
    { name: 'tfjs-cpu f32', kind: 'tfjs', slow: true, run: () => { const c = tf.matMul(ta, tb); c.dataSync(); c.dispose(); } },
    { name: 'ml-matrix f64', kind: 'ml', slow: true, run: () => { ma.mmul(mb); } },
    { name: 'ours f32', kind: 'f32', run: () => { gemm(plain.f32); } },
    { name: 'ours f64', kind: 'f64', run: () => { gemm(plain.f64); } },
    { name: 'ours i8', kind: 'i8', run: () => { gemm(plain.i8); } },
    { name: 'ours f32 pool', kind: 'f32', run: () => pool.gemm(shared.f32).then(() => {}) },
    { name: 'ours f64 pool', kind: 'f64', run: () => pool.gemm(shared.f64).then(() => {}) },
    { name: 'ours i8 pool', kind: 'i8', run: () => pool.gemm(shared.i8).then(() => {}) },
    { name: 'ours f32 pool, copy', kind: 'f32', run: () => pool.gemm(plain.f32).then(() => {}) },
  ];
}

async function measure(n: number, list: Case[]): Promise<Result[]> {
  for (const c of list) for (let i = 0; i < WARMUP; i++) await c.run();
  const times = new Map<Case, number[]>(list.map((c) => [c, []]));
  // Process CPU time per rep too: for one-thread rows it is mostly the kernel's own time, which being
  // descheduled by a neighbour (a shared machine) does not inflate (the process's other threads,
  // pool workers warming up and V8's concurrent GC after the tfjs rows, still count).
  const cpu = new Map<Case, number[]>(list.map((c) => [c, []]));
  // Interleave the reps so drift and neighbours' load hit every implementation alike.
  const maxReps = Math.max(...list.map((c) => REPS(n, !!c.slow)));
  for (let r = 0; r < maxReps; r++) {
    for (const c of list) {
      if (r >= REPS(n, !!c.slow)) continue;
      // A full collection before each timed rep (run.js passes --expose-gc): the tfjs rows leave
      // garbage whose incremental marking would otherwise run inside the next row's call. Then a
      // pause (GEMM_SETTLE_MS, default 5): a call started at once shares the cores with what the
      // collection left running (V8's sweeper threads) and with the pool's workers winding down
      // after the previous row. Measured on a 256^3 f32 call: 12 GFLOP/s alone,
      // 8-8.5 right after gc(), 10.6-11.5 after gc() and one turn; 6.6 right after a pool call,
      // 10.0 five ms later (docs/performance.md, fourth round).
      (globalThis as { gc?: () => void }).gc?.();
      await new Promise((r) => setTimeout(r, Number(process.env.GEMM_SETTLE_MS ?? 5)));
      const u0 = cpuMs();
      const t0 = performance.now();
      await c.run();
      (times.get(c) as number[]).push(performance.now() - t0);
      (cpu.get(c) as number[]).push(cpuMs() - u0);
    }
  }
  const flop = 2 * n ** 3;
  return list.map((c) => {
    const t = times.get(c) as number[], u = cpu.get(c) as number[];
    const ms = stats(t);
    // Rate quartiles from time quartiles (a longer time is a lower rate).
    return { impl: c.name, n, ms, median: flop / ms.median / 1e6, q1: flop / ms.q3 / 1e6, q3: flop / ms.q1 / 1e6, times: t,
      cpuMedian: flop / stats(u).median / 1e6, busy: stats(u.map((x, i) => x / t[i])).median };
  });
}

async function main(): Promise<void> {
  const warn = console.warn;
  console.warn = () => {}; // the cpu backend prints a "use tfjs-node" banner on its first tensor
  await tf.setBackend('cpu');
  await tf.ready();
  tf.scalar(0).dispose();
  console.warn = warn;
  const threads = availableParallelism();
  const pool = createPool({ threads });
  // Every thread compiles its kernels before the first rep (timed here): without it the pool's first
  // call starts the workers, and the first reps of every row ran beside their warm-up, some hundreds
  // of ms of both cores (docs/performance.md, fourteenth round).
  const w0 = performance.now();
  await pool.warm();
  const warmMs = performance.now() - w0;
  console.log(`pool.warm(): ${fmt(warmMs, 0)} ms (${threads} workers and this thread compile their kernels)`);
  const peak2 = peakThreads(threads);
  const all: Result[] = [];
  const ratios: Record<string, Record<string, number>> = {};
  const loads: Record<string, number[]> = {}; // 1-minute load average before and after each size
  try {
    for (const n of SIZES) {
      const load0 = loadavg()[0];
      const res = await measure(n, cases(n, pool, peak2));
      const load = [+load0.toFixed(2), +loadavg()[0].toFixed(2)];
      loads[`n=${n}`] = load;
      all.push(...res);
      const by = (name: string) => res.find((r) => r.impl === name) as Result;
      const tfjs = by('tfjs-cpu f32'), peak = by('scalar peak (anchor)');
      const peakN = by(`scalar peak, ${threads} threads (pool anchor)`);
      const anchorScaling = peakN.median / peak.median;
      // The one-thread row a many-thread row is compared with.
      const single = (name: string) => (name === peakN.impl ? peak : by(name.replace(' pool, copy', '').replace(' pool', '')));
      // Per rep: the single-thread time over the pool time of the same round (reps are interleaved).
      const paired = (name: string) => {
        const p = by(name).times, s1 = single(name).times;
        return stats(p.map((t, i) => s1[i] / t));
      };
      const r2 = (x: number) => +x.toFixed(2);
      ratios[`n=${n}`] = {
        'f32 vs tfjs': r2(by('ours f32').median / tfjs.median),
        'f32 vs scalar peak (CPU time)': r2(by('ours f32').cpuMedian / peak.cpuMedian),
        'f64 vs scalar peak (CPU time)': r2(by('ours f64').cpuMedian / peak.cpuMedian),
        'micro-kernel in L1 vs scalar peak (CPU time)': r2(by('micro-kernel alone, in L1').cpuMedian / peak.cpuMedian),
        'f32 vs micro-kernel in L1 (CPU time)': r2(by('ours f32').cpuMedian / by('micro-kernel alone, in L1').cpuMedian),
        'f64 vs tfjs': r2(by('ours f64').median / tfjs.median),
        'i8 vs tfjs': r2(by('ours i8').median / tfjs.median),
        'f32 vs ml-matrix': r2(by('ours f32').median / by('ml-matrix f64').median),
        'i8 vs f32': r2(by('ours i8').median / by('ours f32').median),
        'i8 vs f32 (CPU time)': r2(by('ours i8').cpuMedian / by('ours f32').cpuMedian),
        'f32 pool/single': r2(by('ours f32 pool').median / by('ours f32').median),
        'f64 pool/single': r2(by('ours f64 pool').median / by('ours f64').median),
        'i8 pool/single': r2(by('ours i8 pool').median / by('ours i8').median),
        'f32 pool/single paired median': r2(paired('ours f32 pool').median),
        [`scalar peak ${threads} threads/1 thread`]: r2(anchorScaling),
        [`scalar peak ${threads} threads/1 thread paired median`]: r2(paired(peakN.impl).median),
        'f32 pool/single vs the anchor\'s scaling': r2(by('ours f32 pool').median / by('ours f32').median / anchorScaling),
        'f32 pool CPU/wall': r2(by('ours f32 pool').busy),
      };
      table(`GEMM n=${n}${quick ? ' (quick)' : ''}: GFLOP/s (GOP/s for i8), ${threads}-thread pool; medians of ${by('ours f32').ms.n} interleaved reps, (min-max) and [quartiles]; load average ${load[0]} -> ${load[1]} on ${cpus().length} CPUs`, res.map((r) => {
        const pair = r.impl.includes('pool') ? paired(r.impl) : undefined;
        return {
          impl: r.impl,
          'median ms (min-max)': `${fmt(r.ms.median, 1)} (${fmt(r.ms.min, 1)}-${fmt(r.ms.max, 1)})`,
          'G/s median [q1-q3]': `${fmt(r.median, 2)} [${fmt(r.q1, 2)}-${fmt(r.q3, 2)}]`,
          'x tfjs': fmt(r.median / tfjs.median, 1),
          'G/s per CPU time (1 thread)': r.impl.includes('pool') ? '' : fmt(r.cpuMedian, 2),
          'x peak (CPU time)': r.impl.includes('pool') || r.impl.startsWith('scalar') ? '' : fmt(r.cpuMedian / peak.cpuMedian, 2),
          'pool/single (medians)': r.impl.includes('pool') ? fmt(r.median / single(r.impl).median, 2) : '',
          'paired per rep: median [q1-q3]': pair ? `${fmt(pair.median, 2)} [${fmt(pair.q1, 2)}-${fmt(pair.q3, 2)}]` : '',
          'CPU/wall': r.impl.includes('pool') ? fmt(r.busy, 2) : '',
        };
      }));
    }
  } finally {
    // Both close even if one fails, so no worker keeps the process alive.
    for (const r of await Promise.allSettled([pool.close(), peak2.close()])) if (r.status === 'rejected') throw r.reason;
  }
  report('gemm', {
    cpu: cpus()[0]?.model, threads, poolWarmMs: +warmMs.toFixed(1), blocking: blocking(), sizes: SIZES, tfjsCpu: tfjsCpuVersion, loadAverage: loads,
    note: 'G/s = 2*n^3/time/1e9 (GOP/s for i8); median and quartiles of interleaved reps after warmup, never best-of; pool rows use SharedArrayBuffer inputs except "pool, copy"; ratios from medians; "paired" = median over reps of single time / pool time in the same round; "scalar peak" = 6 register-only multiply-add chains, the one-thread anchor, compared in process CPU time; "scalar peak, N threads" = the same on this thread and N-1 bench-owned workers at once (equal shares), the anchor of the pool rows: the time of the one-thread anchor over its own is how far the machine let N threads scale in that run; "micro-kernel alone, in L1" = dot3x2 of the engine on 20 KiB of packed data (every load an L1 hit), what its loop gets from this core: the ceiling of the whole GEMM; CPU/wall = median over reps of process CPU time / wall time; loadAverage = 1-minute load before/after each size',
    ratios,
    results: all.map((r) => ({
      impl: r.impl, n: r.n, medianMs: +r.ms.median.toFixed(3), minMs: +r.ms.min.toFixed(3), maxMs: +r.ms.max.toFixed(3),
      median: +r.median.toFixed(3), q1: +r.q1.toFixed(3), q3: +r.q3.toFixed(3), reps: r.ms.n,
      ...(r.impl.includes('pool') ? {} : { cpuMedian: +r.cpuMedian.toFixed(3) }),
    })),
  });
}

main().catch((e) => { console.error(e); process.exit(1); });
