// The GEMM kernels: packing, the 6x1 micro-kernel, the block loops and the C write-back.
//
// Every function here is also shipped to worker threads as source text (see worker-source.ts),
// so each must be self-contained: no imports (type-only is fine, it is erased), no module-level
// values, no closures, no nested functions. They may call each other and use the scratch globals.
//
// The packed panels live in seven global, read-only Float64Arrays of fixed size. V8 folds a
// typed array held in a constant global cell into its code: base address and length become
// immediates, bounds checks on the six A rows share one compare, and loads fuse into the
// multiplies. Passing the same arrays as arguments measured 1.6x slower (the loop re-checks the
// map and reloads base/length every iteration).

import type { Src, Task } from './types';

declare const __accelnl_gemm_a0: Float64Array;
declare const __accelnl_gemm_a1: Float64Array;
declare const __accelnl_gemm_a2: Float64Array;
declare const __accelnl_gemm_a3: Float64Array;
declare const __accelnl_gemm_a4: Float64Array;
declare const __accelnl_gemm_a5: Float64Array;
declare const __accelnl_gemm_b: Float64Array;
declare const __accelnl_gemm_bkey: Float64Array;

/**
 * Block sizes. MR = 6 rows of A per micro-kernel call (6 accumulators + 6 products fill V8's
 * 15 usable xmm registers without spilling); the k loop is unrolled by 4, so packed panels are
 * padded with zeros to a multiple of 4. I8_SHIFT: i8 packs two B columns into one double as
 * lo + hi * 2^I8_SHIFT; see docs/compute.md for the exactness bound (needs 2^14*KC < 2^(SHIFT-1)).
 */
export function blocking() {
  return { MR: 6, KC: 512, MC: 96, NC: 512, ROWS: 1536, I8_SHIFT: 25 };
}

/**
 * Element counts of the eight scratch arrays: a0..a5 (one row of each A panel), b, and bkey (which
 * block b holds: task id, pc, kc, jc, nc, kind + shift; see runTask).
 */
export function scratchSizes(): number[] {
  const bl = blocking();
  const a = (bl.MC / bl.MR) * bl.KC;
  return [a, a, a, a, a, a, bl.NC * bl.KC, 6];
}

/**
 * Defines the packing globals in this realm once (idempotent; throws if a foreign value holds a
 * name). `buffers`, if given, back the arrays: the pool allocates them on the main thread and
 * shares them, because main-thread allocations tend to sit at low addresses that V8 can encode
 * as 32-bit displacements, leaving registers free (measured 7.0 -> 8.3 GFLOP/s in a worker).
 */
export function installScratch(buffers: ArrayBufferLike[] | null): void {
  const sizes = scratchSizes();
  const g = globalThis as unknown as Record<string, unknown>;
  for (let r = 0; r < 8; r++) {
    const name = r < 6 ? '__accelnl_gemm_a' + r : r === 6 ? '__accelnl_gemm_b' : '__accelnl_gemm_bkey';
    const cur = g[name];
    if (cur === undefined) {
      const arr = buffers !== null ? new Float64Array(buffers[r], 0, sizes[r]) : new Float64Array(sizes[r]);
      Object.defineProperty(globalThis, name, { value: arr, writable: false, enumerable: false, configurable: false });
    } else {
      // Another copy of this module in the same realm: reuse its arrays if they are ours.
      const ok = Object.prototype.toString.call(cur) === '[object Float64Array]' && (cur as Float64Array).length === sizes[r];
      if (!ok) throw new Error(`accelnl compute: global ${name} is already defined with an unexpected value`);
    }
  }
}

/** Copies kc strided source elements into dst[off..], then zero-pads to kcp. */
export function packRow(dst: Float64Array, off: number, src: Src, s: number, stride: number, kc: number, kcp: number): void {
  const end = (off + kc) | 0, pend = (off + kcp) | 0;
  for (; off < end; off = (off + 1) | 0, s = (s + stride) | 0) dst[off] = src[s];
  for (; off < pend; off = (off + 1) | 0) dst[off] = 0;
}

export function zeroRow(dst: Float64Array, off: number, kcp: number): void {
  const end = (off + kcp) | 0;
  for (; off < end; off = (off + 1) | 0) dst[off] = 0;
}

/**
 * Packs op(A)[i0 .. i0+mc) x [pc .. pc+kc) as np panels of 6 rows: row r of panel q goes to
 * global a_r at q*kcp. Rows past mc are zero (their results are computed but never stored).
 */
export function packA(t: Task, i0: number, mc: number, np: number, pc: number, kc: number, kcp: number): void {
  const a = t.a, lda = t.lda;
  const stride = t.transA ? lda : 1;
  for (let q = 0; q < np; q++) {
    const off = q * kcp;
    for (let r = 0; r < 6; r++) {
      const dst = r === 0 ? __accelnl_gemm_a0 : r === 1 ? __accelnl_gemm_a1 : r === 2 ? __accelnl_gemm_a2
        : r === 3 ? __accelnl_gemm_a3 : r === 4 ? __accelnl_gemm_a4 : __accelnl_gemm_a5;
      const row = q * 6 + r;
      if (row >= mc) { zeroRow(dst, off, kcp); continue; }
      const i = i0 + row;
      packRow(dst, off, a, t.transA ? pc * lda + i : i * lda + pc, stride, kc, kcp);
    }
  }
}

/** Packs op(B)[pc .. pc+kc) x [jc .. jc+nc) column by column: column j at j*kcp of global b. */
export function packB(t: Task, pc: number, kc: number, kcp: number, jc: number, nc: number): void {
  const b = t.b, ldb = t.ldb, dst = __accelnl_gemm_b;
  if (t.transB) {
    // op(B) column j is stored row jc+j of B: contiguous.
    for (let j = 0; j < nc; j++) packRow(dst, j * kcp, b, (jc + j) * ldb + pc, 1, kc, kcp);
    return;
  }
  // Row-major B: 8 source rows at a time, so each column receives a whole cache line per pass
  // while the 8 rows being read stay in L1.
  for (let p0 = 0; p0 < kcp; p0 += 8) {
    const pe = Math.min(kc, p0 + 8), pz = Math.min(kcp, p0 + 8);
    for (let j = 0; j < nc; j++) {
      let s = (pc + p0) * ldb + jc + j, d = j * kcp + p0, p = p0;
      for (; p < pe; p++, s += ldb, d++) dst[d] = b[s];
      for (; p < pz; p++, d++) dst[d] = 0;
    }
  }
}

/**
 * i8: packs op(B) columns in pairs into one double, lo + hi * 2^SHIFT (hi = 0 past nc).
 * Pair jj (columns 2jj, 2jj+1) goes to jj*kcp. Every value is a small integer: exact.
 */
export function packBI8(t: Task, pc: number, kc: number, kcp: number, jc: number, nc: number, shift: number): void {
  const b = t.b, ldb = t.ldb, dst = __accelnl_gemm_b;
  const scale = Math.pow(2, shift), pairs = (nc + 1) >> 1;
  const cs = t.transB ? ldb : 1, ps = t.transB ? 1 : ldb;
  for (let jj = 0; jj < pairs; jj++) {
    const j = jc + 2 * jj, hasHi = 2 * jj + 1 < nc;
    let s = t.transB ? j * ldb + pc : pc * ldb + j, d = jj * kcp;
    for (let p = 0; p < kc; p++, s += ps, d++) dst[d] = b[s] + (hasHi ? b[s + cs] * scale : 0);
    for (let p = kc; p < kcp; p++, d++) dst[d] = 0;
  }
}

/**
 * The micro-kernel: six dot products of length kcp (a multiple of 4) between packed A rows
 * a0..a5 at ia and the packed B column at ib, summed in ascending k order into out[0..5].
 * Unrolled by 4; all index math is int32.
 */
export function dot6(kcp: number, ia: number, ib: number, out: Float64Array): void {
  const end = (ia + kcp) | 0;
  let c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0;
  for (; ia < end; ia = (ia + 4) | 0, ib = (ib + 4) | 0) {
    const b0 = __accelnl_gemm_b[ib], b1 = __accelnl_gemm_b[(ib + 1) | 0];
    const b2 = __accelnl_gemm_b[(ib + 2) | 0], b3 = __accelnl_gemm_b[(ib + 3) | 0];
    c0 += __accelnl_gemm_a0[ia] * b0; c1 += __accelnl_gemm_a1[ia] * b0; c2 += __accelnl_gemm_a2[ia] * b0;
    c3 += __accelnl_gemm_a3[ia] * b0; c4 += __accelnl_gemm_a4[ia] * b0; c5 += __accelnl_gemm_a5[ia] * b0;
    const i1 = (ia + 1) | 0;
    c0 += __accelnl_gemm_a0[i1] * b1; c1 += __accelnl_gemm_a1[i1] * b1; c2 += __accelnl_gemm_a2[i1] * b1;
    c3 += __accelnl_gemm_a3[i1] * b1; c4 += __accelnl_gemm_a4[i1] * b1; c5 += __accelnl_gemm_a5[i1] * b1;
    const i2 = (ia + 2) | 0;
    c0 += __accelnl_gemm_a0[i2] * b2; c1 += __accelnl_gemm_a1[i2] * b2; c2 += __accelnl_gemm_a2[i2] * b2;
    c3 += __accelnl_gemm_a3[i2] * b2; c4 += __accelnl_gemm_a4[i2] * b2; c5 += __accelnl_gemm_a5[i2] * b2;
    const i3 = (ia + 3) | 0;
    c0 += __accelnl_gemm_a0[i3] * b3; c1 += __accelnl_gemm_a1[i3] * b3; c2 += __accelnl_gemm_a2[i3] * b3;
    c3 += __accelnl_gemm_a3[i3] * b3; c4 += __accelnl_gemm_a4[i3] * b3; c5 += __accelnl_gemm_a5[i3] * b3;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3; out[4] = c4; out[5] = c5;
}

/** Float block: W[6q+r][j] += dot6 over every packed column j and row panel q. */
export function macroF(ncols: number, np: number, kcp: number, w: Float64Array, wi0: number, ldw: number, out: Float64Array): void {
  for (let j = 0; j < ncols; j++) {
    const ib = j * kcp;
    for (let q = 0; q < np; q++) {
      dot6(kcp, q * kcp, ib, out);
      let wi = wi0 + q * 6 * ldw + j;
      w[wi] += out[0]; wi += ldw; w[wi] += out[1]; wi += ldw; w[wi] += out[2]; wi += ldw;
      w[wi] += out[3]; wi += ldw; w[wi] += out[4]; wi += ldw; w[wi] += out[5];
    }
  }
}

/**
 * i8 block: each dot6 sum is T = lo + hi * 2^shift for a column pair. With |lo| < 2^(shift-1),
 * hi = round(T / 2^shift) and lo = T - hi * 2^shift, all exact in float64.
 */
export function macroI8(pairs: number, np: number, kcp: number, w: Float64Array, wi0: number, ldw: number, out: Float64Array, shift: number): void {
  const scale = Math.pow(2, shift), inv = Math.pow(2, -shift);
  for (let jj = 0; jj < pairs; jj++) {
    const ib = jj * kcp;
    for (let q = 0; q < np; q++) {
      dot6(kcp, q * kcp, ib, out);
      let wi = wi0 + q * 6 * ldw + 2 * jj;
      for (let r = 0; r < 6; r++, wi += ldw) {
        const s = out[r], hi = Math.round(s * inv);
        w[wi] += s - hi * scale;
        w[wi + 1] += hi;
      }
    }
  }
}

/** C[i][j] = alpha * W + beta * C over rows [s0, s1) and columns [jc, jc+nc); beta = 0 never reads C. */
export function writeBack(t: Task, s0: number, s1: number, jc: number, nc: number, w: Float64Array, ldw: number): void {
  const c = t.c, ldc = t.ldc, alpha = t.alpha, beta = t.beta;
  for (let i = s0; i < s1; i++) {
    let wi = (i - s0) * ldw, ci = i * ldc + jc;
    const end = ci + nc;
    if (t.kind === 1) {
      // int32 wrap-around, like C's uint32 arithmetic: W is an exact integer, |0 reduces it mod 2^32.
      if (beta === 0) for (; ci < end; ci++, wi++) c[ci] = Math.imul(alpha, w[wi] | 0);
      else for (; ci < end; ci++, wi++) c[ci] = (Math.imul(alpha, w[wi] | 0) + Math.imul(beta, c[ci])) | 0;
    } else if (beta === 0) {
      for (; ci < end; ci++, wi++) c[ci] = alpha * w[wi];
    } else {
      for (; ci < end; ci++, wi++) c[ci] = alpha * w[wi] + beta * c[ci];
    }
  }
}

/**
 * i8 with k <= 4095 (see runTask): W holds, per column pair jj at column jj, the exact packed sum
 * T = X + 2^shift * Y over all of k. Decodes it (|X| < 2^(shift-1), so Y = round(T / 2^shift) with no
 * tie) and writes C[.][2jj] from X and C[.][2jj+1] from Y like writeBack.
 */
export function writeBackPairs(t: Task, s0: number, s1: number, jc: number, nc: number, w: Float64Array, ldw: number, shift: number): void {
  const c = t.c, ldc = t.ldc, alpha = t.alpha, beta = t.beta;
  const scale = Math.pow(2, shift), inv = Math.pow(2, -shift), pairs = nc >> 1, odd = nc & 1;
  for (let i = s0; i < s1; i++) {
    let wi = (i - s0) * ldw, ci = i * ldc + jc;
    const end = ci + 2 * pairs;
    for (; ci < end; ci += 2, wi++) {
      const T = w[wi], hi = Math.round(T * inv), lo = T - hi * scale;
      if (beta === 0) { c[ci] = Math.imul(alpha, lo | 0); c[ci + 1] = Math.imul(alpha, hi | 0); }
      else {
        c[ci] = (Math.imul(alpha, lo | 0) + Math.imul(beta, c[ci])) | 0;
        c[ci + 1] = (Math.imul(alpha, hi | 0) + Math.imul(beta, c[ci + 1])) | 0;
      }
    }
    if (odd !== 0) {
      // The last column had no partner: its pair's high half is 0, so T is X alone.
      const lo = w[wi];
      c[ci] = beta === 0 ? Math.imul(alpha, lo | 0) : (Math.imul(alpha, lo | 0) + Math.imul(beta, c[ci])) | 0;
    }
  }
}

/** The alpha = 0 or k = 0 case: C = beta * C (A and B are not read, as in BLAS). */
export function scaleC(t: Task): void {
  const c = t.c, ldc = t.ldc, beta = t.beta;
  for (let i = t.m0; i < t.m1; i++) {
    let ci = i * ldc + t.n0;
    const end = i * ldc + t.n1;
    if (beta === 0) for (; ci < end; ci++) c[ci] = 0;
    else if (t.kind === 1) for (; ci < end; ci++) c[ci] = Math.imul(beta, c[ci]);
    else for (; ci < end; ci++) c[ci] = beta * c[ci];
  }
}

/**
 * Computes the task's C rectangle. Loop order (GotoBLAS): row strips of ROWS, column blocks of
 * NC, k blocks of KC (pack B once), row blocks of MC (pack A), then the micro-kernel sweep.
 * W is float64 scratch for one strip x NC block; it is reused if big enough, and returned so
 * the caller can keep it.
 */
export function runTask(t: Task, ws: Float64Array | null): Float64Array | null {
  const bl = blocking();
  const MR = bl.MR, KC = bl.KC, MC = bl.MC, NC = bl.NC, ROWS = bl.ROWS;
  if (t.m1 <= t.m0 || t.n1 <= t.n0) return ws;
  if (t.alpha === 0 || t.k === 0) { scaleC(t); return ws; }
  // i8 with k <= 4095: pack B pairs with shift 27 and keep the packed sums in W over all of k
  // (exact: 2^14 * k < 2^26 and 2^14 * k * (2^27 + 1) < 2^53), decoding once per element of C in
  // writeBackPairs; longer k decodes every KC block (macroI8) with I8_SHIFT. Packed, a W row holds
  // one double per column pair, so it is half as wide.
  const pairsInW = t.kind === 1 && t.k <= 4095;
  const shift = pairsInW ? 27 : bl.I8_SHIFT;
  const cols = Math.min(NC, t.n1 - t.n0);
  const ldw = pairsInW ? (cols + 1) >> 1 : (cols + 1) & ~1;
  const need = Math.ceil(Math.min(ROWS, t.m1 - t.m0) / MR) * MR * ldw;
  const w = ws !== null && ws.length >= need ? ws : new Float64Array(need);
  const out = new Float64Array(6);
  for (let s0 = t.m0; s0 < t.m1; s0 += ROWS) {
    const s1 = Math.min(t.m1, s0 + ROWS), rows = s1 - s0;
    for (let jc = t.n0; jc < t.n1; jc += NC) {
      const nc = Math.min(NC, t.n1 - jc);
      w.fill(0, 0, Math.ceil(rows / MR) * MR * ldw);
      for (let pc = 0; pc < t.k; pc += KC) {
        const kc = Math.min(KC, t.k - pc), kcp = (kc + 3) & ~3;
        // A pool call's chunks (same id) on one worker share B's blocks: pack each once. Id 0 never matches.
        const key = __accelnl_gemm_bkey;
        if (t.id === 0 || key[0] !== t.id || key[1] !== pc || key[2] !== kc || key[3] !== jc || key[4] !== nc || key[5] !== t.kind + shift) {
          key[0] = 0; // invalid while packing
          if (t.kind === 1) packBI8(t, pc, kc, kcp, jc, nc, shift); else packB(t, pc, kc, kcp, jc, nc);
          key[1] = pc; key[2] = kc; key[3] = jc; key[4] = nc; key[5] = t.kind + shift; key[0] = t.id;
        }
        for (let ic = 0; ic < rows; ic += MC) {
          const mc = Math.min(MC, rows - ic), np = Math.ceil(mc / MR);
          packA(t, s0 + ic, mc, np, pc, kc, kcp);
          if (pairsInW) macroF((nc + 1) >> 1, np, kcp, w, ic * ldw, ldw, out);
          else if (t.kind === 1) macroI8((nc + 1) >> 1, np, kcp, w, ic * ldw, ldw, out, shift);
          else macroF(nc, np, kcp, w, ic * ldw, ldw, out);
        }
      }
      if (pairsInW) writeBackPairs(t, s0, s1, jc, nc, w, ldw, shift); else writeBack(t, s0, s1, jc, nc, w, ldw);
    }
  }
  return w;
}

/**
 * A share of a pool call: claims chunks of C (6-row panels or column pairs, `units` in all) from the
 * shared counter ctl[0] until none are left, and computes each with runTask. Chunks shrink as the
 * work runs out (a quarter of what is left per thread, at least minTake), so a worker that starts
 * late, or shares its core with another process, takes fewer chunks instead of finishing last.
 * A worker counts itself in ctl[1] when it starts. The calling thread may help while the workers
 * wake up (helpUntil > 0): it takes minTake units at a time and stops as soon as `helpers` workers
 * have started or at performance.now() >= helpUntil, whichever comes first.
 * Returns the workspace and the number of chunks computed.
 */
export function runClaims(t: Task, ctl: Int32Array, byRows: boolean, units: number, minTake: number, threads: number,
  ws: Float64Array | null, helpUntil: number, helpers: number): { ws: Float64Array | null; chunks: number } {
  const unit = byRows ? 6 : 2, lo = byRows ? t.m0 : t.n0, hi = byRows ? t.m1 : t.n1;
  const helping = helpUntil > 0;
  if (!helping) Atomics.add(ctl, 1, 1);
  let chunks = 0;
  for (;;) {
    if (helping && (Atomics.load(ctl, 1) >= helpers || performance.now() >= helpUntil)) break;
    const cur = Atomics.load(ctl, 0);
    if (cur >= units) break;
    const rem = units - cur;
    let take = helping ? minTake : Math.ceil(rem / (2 * threads));
    if (take < minTake) take = minTake;
    if (take > rem) take = rem;
    if (Atomics.compareExchange(ctl, 0, cur, cur + take) !== cur) continue;
    const s = lo + cur * unit, e = Math.min(hi, lo + (cur + take) * unit);
    ws = runTask(byRows ? { ...t, m0: s, m1: e } : { ...t, n0: s, n1: e }, ws);
    chunks++;
  }
  return { ws, chunks };
}

/**
 * Runs every kernel path on small local arrays (each dtype's input type, both transposes, beta 0
 * and not) so that TurboFan has compiled them with their full type feedback before the first real
 * call. Without it the first calls of each dtype in a fresh worker run in the interpreter or
 * deoptimize when the next dtype arrives (in a quick benchmark run the pool lost to one thread).
 */
export function warmUp(rounds: number): void {
  const m = 24, n = 32, k = 260;
  for (let r = 0; r < rounds; r++) {
    for (let kind = 0; kind < 3; kind++) {
      const a = kind === 0 ? new Float32Array(m * k) : kind === 1 ? new Float64Array(m * k) : new Int8Array(m * k);
      const b = kind === 0 ? new Float32Array(k * n) : kind === 1 ? new Float64Array(k * n) : new Int8Array(k * n);
      const c = kind === 0 ? new Float32Array(m * n) : kind === 1 ? new Float64Array(m * n) : new Int32Array(m * n);
      for (let i = 0; i < a.length; i++) a[i] = (i % 7) - 3;
      for (let i = 0; i < b.length; i++) b[i] = (i % 5) - 2;
      for (let tr = 0; tr < 4; tr++) {
        const transA = (tr & 1) !== 0, transB = (tr & 2) !== 0;
        runTask({
          kind: kind === 2 ? 1 : 0, m, n, k, a, lda: transA ? m : k, transA, b, ldb: transB ? k : n, transB, c, ldc: n,
          alpha: 1, beta: tr & 1, m0: 0, m1: m, n0: 0, n1: n, id: 0,
        }, null);
      }
    }
  }
}

/** Every function above, in an order where each is declared before the worker script runs. */
export const KERNEL_FUNCTIONS = [
  blocking, scratchSizes, installScratch, packRow, zeroRow, packA, packB, packBI8, dot6, macroF, macroI8, writeBack, writeBackPairs,
  scaleC, runTask,
  runClaims, warmUp,
];
