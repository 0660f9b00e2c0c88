// The GEMM kernels: packing, the 3x2 micro-kernel, the block loops and the C write-back.
//
// Every function here is also shipped to worker threads as source text (see kernel-text.ts),
// so each must be self-contained: no imports (type-only is fine, it is erased), no module-level
// values, no closures, no nested functions. They may call each other and use the scratch globals.
//
// The packed panels live in five global, read-only Float64Arrays of fixed size (three A rows, two
// B columns). V8 folds a typed array held in a constant global cell into its code: base address
// and length become immediates, and arrays of equal length indexed alike share one bounds check.
// Passing the same arrays as arguments measured 1.6x slower (the loop re-checks the map and
// reloads base/length every iteration).

import type { Dst, Src, Task } from './types';

declare const __accelnl_gemm_a0: Float64Array;
declare const __accelnl_gemm_a1: Float64Array;
declare const __accelnl_gemm_a2: Float64Array;
declare const __accelnl_gemm_b0: Float64Array;
declare const __accelnl_gemm_b1: Float64Array;
declare const __accelnl_gemm_bkey: Float64Array;

/**
 * Block sizes. The micro-kernel is MR = 3 rows of A by NR = 2 packed columns of B (a packed column
 * is a column of op(B) for floats, a pair of columns for i8). I8_SHIFT: i8 with k > 4095 packs two
 * B columns into one double as lo + hi * 2^I8_SHIFT; see docs/compute.md for the exactness bound
 * (needs 2^14*KC < 2^(SHIFT-1)).
 */
export function blocking() {
  return { MR: 3, NR: 2, KC: 512, MC: 96, NC: 512, ROWS: 1536, I8_SHIFT: 25 };
}

/**
 * Element counts of the six scratch arrays: a0..a2 (one row of each A panel), b0, b1 (even and odd
 * packed columns of the B block), and bkey (which block b0/b1 hold: task id, pc, kc, jc, nc,
 * kind + shift; see runTask).
 */
export function scratchSizes(): number[] {
  const bl = blocking();
  const a = (bl.MC / bl.MR) * bl.KC, b = (bl.NC / bl.NR) * bl.KC;
  return [a, a, a, b, b, 6];
}

/** The scratch globals' names, in scratchSizes() order. */
export function scratchNames(): string[] {
  return ['__accelnl_gemm_a0', '__accelnl_gemm_a1', '__accelnl_gemm_a2', '__accelnl_gemm_b0', '__accelnl_gemm_b1', '__accelnl_gemm_bkey'];
}

/**
 * Defines the packing globals in this realm once (idempotent; throws if a foreign value holds a
 * name). `buffers`, if given, back the arrays: the pool allocates them on the main thread and
 * shares them, because main-thread allocations tend to sit at low addresses that V8 can encode
 * as 32-bit displacements, leaving registers free (measured 7.0 -> 8.3 GFLOP/s in a worker).
 */
export function installScratch(buffers: ArrayBufferLike[] | null): void {
  const sizes = scratchSizes(), names = scratchNames();
  const g = globalThis as unknown as Record<string, unknown>;
  for (let r = 0; r < names.length; r++) {
    const name = names[r];
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

/**
 * A copy of task t with other arrays, rectangle and id. Every task the kernels see is made by this
 * literal or toTask's (same properties, same order): one hidden class per thread. Spread copies and
 * structured clones make others, and the kernels deoptimized when they first met each one.
 */
export function makeTask(t: Task, a: Src, b: Src, c: Dst, m0: number, m1: number, n0: number, n1: number, id: number): Task {
  return {
    kind: t.kind, m: t.m, n: t.n, k: t.k, a, lda: t.lda, transA: t.transA, b, ldb: t.ldb, transB: t.transB, c, ldc: t.ldc,
    alpha: t.alpha, beta: t.beta, m0, m1, n0, n1, id,
  };
}

/**
 * Packs op(A)[i0 .. i0+mc) x [pc .. pc+kc) as np panels of 3 rows: row r of panel q goes to
 * global a_r at q*kc. Rows past mc are zero (their results are computed but never stored).
 * The three rows of a panel are read together: for transA they are adjacent in memory.
 */
export function packA(t: Task, i0: number, mc: number, np: number, pc: number, kc: number): void {
  const a = t.a, lda = t.lda;
  const rs = t.transA ? 1 : lda, ps = t.transA ? lda : 1; // steps to the next row and the next k
  for (let q = 0; q < np; q++) {
    const row = i0 + q * 3, have = mc - q * 3;
    let d = q * kc;
    const end = d + kc;
    let s = t.transA ? pc * lda + row : row * lda + pc;
    if (have >= 3) {
      const s1 = rs, s2 = 2 * rs;
      for (; d < end; d++, s += ps) {
        __accelnl_gemm_a0[d] = a[s]; __accelnl_gemm_a1[d] = a[s + s1]; __accelnl_gemm_a2[d] = a[s + s2];
      }
    } else if (have === 2) {
      for (; d < end; d++, s += ps) { __accelnl_gemm_a0[d] = a[s]; __accelnl_gemm_a1[d] = a[s + rs]; __accelnl_gemm_a2[d] = 0; }
    } else {
      for (; d < end; d++, s += ps) { __accelnl_gemm_a0[d] = a[s]; __accelnl_gemm_a1[d] = 0; __accelnl_gemm_a2[d] = 0; }
    }
  }
}

/**
 * Packs op(B)[pc .. pc+kc) x [jc .. jc+nc) in column pairs: column 2jj to global b0 and column
 * 2jj + 1 to b1, both at jj*kc (b1 zero past nc).
 */
export function packB(t: Task, pc: number, kc: number, jc: number, nc: number): void {
  const b = t.b, ldb = t.ldb, pairs = (nc + 1) >> 1;
  if (t.transB) {
    // op(B) column j is stored row jc+j of B: contiguous.
    for (let jj = 0; jj < pairs; jj++) {
      const j = jc + 2 * jj, hasHi = 2 * jj + 1 < nc;
      let s = j * ldb + pc, d = jj * kc;
      const end = d + kc;
      if (hasHi) for (; d < end; d++, s++) { __accelnl_gemm_b0[d] = b[s]; __accelnl_gemm_b1[d] = b[s + ldb]; }
      else for (; d < end; d++, s++) { __accelnl_gemm_b0[d] = b[s]; __accelnl_gemm_b1[d] = 0; }
    }
    return;
  }
  // Row-major B: 8 source rows at a time, so each column pair receives whole cache lines per pass
  // while the 8 rows being read stay in L1.
  for (let p0 = 0; p0 < kc; p0 += 8) {
    const pe = Math.min(kc, p0 + 8);
    for (let jj = 0; jj < pairs; jj++) {
      let s = (pc + p0) * ldb + jc + 2 * jj, d = jj * kc + p0;
      const end = d + (pe - p0);
      if (2 * jj + 1 < nc) for (; d < end; d++, s += ldb) { __accelnl_gemm_b0[d] = b[s]; __accelnl_gemm_b1[d] = b[s + 1]; }
      else for (; d < end; d++, s += ldb) { __accelnl_gemm_b0[d] = b[s]; __accelnl_gemm_b1[d] = 0; }
    }
  }
}

/**
 * i8: packs op(B) columns in pairs into one double, lo + hi * 2^shift (hi = 0 past nc): packed
 * column u holds columns 2u and 2u + 1, and goes to b0 (u even) or b1 (u odd) at (u >> 1)*kc, so
 * the 3x2 kernel takes two packed columns (four columns of C) at a time. Every value is a small
 * integer: exact. Like packB, 8 k steps at a time, so that row-major B is read a few cache lines
 * at a time instead of one column at a time down all kc rows.
 */
export function packBI8(t: Task, pc: number, kc: number, jc: number, nc: number, shift: number): void {
  const b = t.b, ldb = t.ldb;
  const scale = Math.pow(2, shift), quads = (nc + 3) >> 2;
  const cs = t.transB ? ldb : 1, ps = t.transB ? 1 : ldb; // steps to the next column and the next k
  for (let p0 = 0; p0 < kc; p0 += 8) {
    const pn = Math.min(kc, p0 + 8) - p0;
    for (let jj = 0; jj < quads; jj++) {
      const j = jc + 4 * jj, have = nc - 4 * jj;
      let s = t.transB ? j * ldb + pc + p0 : (pc + p0) * ldb + j, d = jj * kc + p0;
      const end = d + pn;
      if (have >= 4) {
        const s1 = cs, s2 = 2 * cs, s3 = 3 * cs;
        for (; d < end; d++, s += ps) {
          __accelnl_gemm_b0[d] = b[s] + b[s + s1] * scale;
          __accelnl_gemm_b1[d] = b[s + s2] + b[s + s3] * scale;
        }
      } else {
        // The last quad: columns past nc are zero.
        for (; d < end; d++, s += ps) {
          __accelnl_gemm_b0[d] = b[s] + (have > 1 ? b[s + cs] * scale : 0);
          __accelnl_gemm_b1[d] = have > 2 ? b[s + 2 * cs] : 0;
        }
      }
    }
  }
}

/**
 * The micro-kernel: the 3 x 2 dot products of length kc between packed A rows a0..a2 at ia and the
 * packed B columns b0, b1 at ib, each summed in ascending k order, into out[2r + c]. Per k step:
 * 5 loads, 6 multiplies, 6 adds; 6 accumulators + 5 operands leave V8 enough xmm registers. Not
 * unrolled: TurboFan hoists an unrolled body's loads, and the operands then spill (docs/compute.md).
 */
export function dot3x2(kc: number, ia: number, ib: number, out: Float64Array): void {
  const end = (ia + kc) | 0;
  let c00 = 0, c01 = 0, c10 = 0, c11 = 0, c20 = 0, c21 = 0;
  for (; ia < end; ia = (ia + 1) | 0, ib = (ib + 1) | 0) {
    const x0 = __accelnl_gemm_b0[ib], x1 = __accelnl_gemm_b1[ib];
    const y0 = __accelnl_gemm_a0[ia], y1 = __accelnl_gemm_a1[ia], y2 = __accelnl_gemm_a2[ia];
    c00 += y0 * x0; c01 += y0 * x1;
    c10 += y1 * x0; c11 += y1 * x1;
    c20 += y2 * x0; c21 += y2 * x1;
  }
  out[0] = c00; out[1] = c01; out[2] = c10; out[3] = c11; out[4] = c20; out[5] = c21;
}

/**
 * Float block: for every pair jj of packed columns and row panel q, the six dot3x2 sums of this k
 * block go to W or straight to C, by `mode`: 0 W = sums (first of several k blocks: W needs no
 * zeroing), 1 W += sums, 2 C from the sums (k is one block: W is not used), 3 C from W + sums (last
 * k block). C = alpha * S + beta * C for the rows and columns that exist (row < rowEnd, column <
 * ncols); beta = 0 never reads C. The sums are never -0 (they start at +0), so W = sums is what
 * 0 + sums was. W has an even number of columns and whole panels of rows, so it needs no edge test.
 */
export function macroF(ncols: number, np: number, kc: number, w: Float64Array, wi0: number, ldw: number, out: Float64Array,
  mode: number, t: Task, row0: number, rowEnd: number, jc: number): void {
  const c = t.c, ldc = t.ldc, alpha = t.alpha, beta = t.beta, pairs = (ncols + 1) >> 1;
  for (let jj = 0; jj < pairs; jj++) {
    const ib = jj * kc, cols = Math.min(2, ncols - 2 * jj);
    for (let q = 0; q < np; q++) {
      dot3x2(kc, q * kc, ib, out);
      const wq = wi0 + q * 3 * ldw + 2 * jj;
      if (mode === 0) {
        w[wq] = out[0]; w[wq + 1] = out[1]; w[wq + ldw] = out[2]; w[wq + ldw + 1] = out[3];
        w[wq + 2 * ldw] = out[4]; w[wq + 2 * ldw + 1] = out[5];
      } else if (mode === 1) {
        w[wq] += out[0]; w[wq + 1] += out[1]; w[wq + ldw] += out[2]; w[wq + ldw + 1] += out[3];
        w[wq + 2 * ldw] += out[4]; w[wq + 2 * ldw + 1] += out[5];
      } else {
        const i0 = row0 + q * 3, rows = Math.min(3, rowEnd - i0);
        if (rows === 3 && cols === 2 && mode === 2 && beta === 0) {
          // The common whole tile, straight-line: at kc = 256 the loop below costs 5-7 % of a call.
          const c0 = i0 * ldc + jc + 2 * jj, c1 = c0 + ldc, c2 = c1 + ldc;
          c[c0] = alpha * out[0]; c[c0 + 1] = alpha * out[1];
          c[c1] = alpha * out[2]; c[c1 + 1] = alpha * out[3];
          c[c2] = alpha * out[4]; c[c2 + 1] = alpha * out[5];
          continue;
        }
        for (let r = 0; r < rows; r++) {
          const ci = (i0 + r) * ldc + jc + 2 * jj, wi = wq + r * ldw;
          for (let u = 0; u < cols; u++) {
            const s = mode === 2 ? out[2 * r + u] : w[wi + u] + out[2 * r + u];
            c[ci + u] = beta === 0 ? alpha * s : alpha * s + beta * c[ci + u];
          }
        }
      }
    }
  }
}

/**
 * i8 with k <= 4095, packed pair sums T = X + 2^shift * Y (see runTask): like macroF over packed
 * columns (units), with mode 2 and 3 decoding T once per element pair of C: Y = round(T / 2^shift),
 * exact since |X| < 2^(shift-1) leaves no tie, computed as (T * 2^-shift + 1.5 * 2^52) - 1.5 * 2^52
 * (round to nearest; |Y| < 2^26); X = T - Y * 2^shift. C[.][2u] gets X and C[.][2u + 1] gets Y (if
 * that column exists), wrapped to int32: (imul(alpha, S) + imul(beta, C)) | 0.
 */
export function macroPairs(nc: number, np: number, kc: number, w: Float64Array, wi0: number, ldw: number, out: Float64Array,
  mode: number, t: Task, row0: number, rowEnd: number, jc: number, shift: number): void {
  const c = t.c, ldc = t.ldc, alpha = t.alpha, beta = t.beta;
  const scale = Math.pow(2, shift), inv = Math.pow(2, -shift), magic = 6755399441055744;
  const units = (nc + 1) >> 1, quads = (units + 1) >> 1;
  for (let jj = 0; jj < quads; jj++) {
    const ib = jj * kc, cols = Math.min(4, nc - 4 * jj);
    for (let q = 0; q < np; q++) {
      dot3x2(kc, q * kc, ib, out);
      const wq = wi0 + q * 3 * ldw + 2 * jj;
      if (mode === 0) {
        w[wq] = out[0]; w[wq + 1] = out[1]; w[wq + ldw] = out[2]; w[wq + ldw + 1] = out[3];
        w[wq + 2 * ldw] = out[4]; w[wq + 2 * ldw + 1] = out[5];
      } else if (mode === 1) {
        w[wq] += out[0]; w[wq + 1] += out[1]; w[wq + ldw] += out[2]; w[wq + ldw + 1] += out[3];
        w[wq + 2 * ldw] += out[4]; w[wq + 2 * ldw + 1] += out[5];
      } else {
        const i0 = row0 + q * 3, rows = Math.min(3, rowEnd - i0);
        if (rows === 3 && cols === 4 && mode === 2 && beta === 0) {
          // The common whole tile, straight-line (as in macroF): 6 decodes, 12 stores.
          let ci = i0 * ldc + jc + 4 * jj;
          for (let r = 0; r < 3; r++, ci += ldc) {
            const T0 = out[2 * r], T1 = out[2 * r + 1];
            const h0 = (T0 * inv + magic) - magic, h1 = (T1 * inv + magic) - magic;
            c[ci] = Math.imul(alpha, (T0 - h0 * scale) | 0); c[ci + 1] = Math.imul(alpha, h0 | 0);
            c[ci + 2] = Math.imul(alpha, (T1 - h1 * scale) | 0); c[ci + 3] = Math.imul(alpha, h1 | 0);
          }
          continue;
        }
        for (let r = 0; r < rows; r++) {
          const ci = (i0 + r) * ldc + jc + 4 * jj, wi = wq + r * ldw;
          for (let e = 0; e < cols; e += 2) {
            const T = mode === 2 ? out[2 * r + (e >> 1)] : w[wi + (e >> 1)] + out[2 * r + (e >> 1)];
            const hi = (T * inv + magic) - magic, lo = T - hi * scale;
            if (beta === 0) {
              c[ci + e] = Math.imul(alpha, lo | 0);
              if (e + 1 < cols) c[ci + e + 1] = Math.imul(alpha, hi | 0);
            } else {
              c[ci + e] = (Math.imul(alpha, lo | 0) + Math.imul(beta, c[ci + e])) | 0;
              if (e + 1 < cols) c[ci + e + 1] = (Math.imul(alpha, hi | 0) + Math.imul(beta, c[ci + e + 1])) | 0;
            }
          }
        }
      }
    }
  }
}

/**
 * i8 with k > 4095: each k block's packed sums T = lo + hi * 2^shift are decoded right away (with
 * |lo| < 2^(shift-1), hi = round(T / 2^shift) and lo = T - hi * 2^shift, all exact in float64) and
 * added into W, which is in columns of C (W[.][2u] += lo, W[.][2u + 1] += hi). W rows are padded to a
 * multiple of 4 columns, so a kernel's second packed column past the edge lands in the padding.
 */
export function macroI8(nc: number, np: number, kc: number, w: Float64Array, wi0: number, ldw: number, out: Float64Array, shift: number): void {
  const scale = Math.pow(2, shift), inv = Math.pow(2, -shift);
  const units = (nc + 1) >> 1, quads = (units + 1) >> 1;
  for (let jj = 0; jj < quads; jj++) {
    const ib = jj * kc;
    for (let q = 0; q < np; q++) {
      dot3x2(kc, q * kc, ib, out);
      for (let r = 0; r < 3; r++) {
        for (let u = 0; u < 2; u++) {
          const wi = wi0 + (q * 3 + r) * ldw + 4 * jj + 2 * u;
          const s = out[2 * r + u], hi = Math.round(s * inv);
          w[wi] += s - hi * scale;
          w[wi + 1] += hi;
        }
      }
    }
  }
}

/**
 * C[i][j] = alpha * W + beta * C over rows [s0, s1) and columns [jc, jc+nc); beta = 0 never reads C.
 * Only i8 with k > 4095 goes through W and this pass; every other call writes C in macroF / macroPairs.
 */
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
 * W is float64 scratch for one strip x NC block, needed only when k spans several KC blocks; it is
 * reused if big enough, and returned so the caller can keep it.
 */
export function runTask(t: Task, ws: Float64Array | null): Float64Array | null {
  const bl = blocking();
  const MR = bl.MR, KC = bl.KC, MC = bl.MC, NC = bl.NC, ROWS = bl.ROWS;
  if (t.m1 <= t.m0 || t.n1 <= t.n0) return ws;
  if (t.alpha === 0 || t.k === 0) { scaleC(t); return ws; }
  // i8 with k <= 4095: pack B pairs with shift 27 and keep the packed sums over all of k (exact:
  // 2^14 * k < 2^26 and 2^14 * k * (2^27 + 1) < 2^53), decoding once per element of C in
  // macroPairs; longer k decodes every KC block (macroI8) with I8_SHIFT. Packed, a W row holds
  // one double per column pair, so it is half as wide.
  const pairs = t.kind === 1 && t.k <= 4095;
  const shift = pairs ? 27 : bl.I8_SHIFT;
  // Floats and packed pairs write C from the last k block's sums (macroF / macroPairs): W holds the
  // sums of the earlier blocks, so it is needed only when k > KC. Long-k i8 decodes every block
  // into W (macroI8), zeroed first, and writes C after (writeBack).
  const direct = t.kind === 0 || pairs;
  const cols = Math.min(NC, t.n1 - t.n0);
  // W columns: one per packed column, rounded up to the kernel's two (four C columns for long-k i8).
  const ldw = pairs ? (((cols + 1) >> 1) + 1) & ~1 : t.kind === 1 ? (cols + 3) & ~3 : (cols + 1) & ~1;
  const need = direct && t.k <= KC ? 0 : Math.ceil(Math.min(ROWS, t.m1 - t.m0) / MR) * MR * ldw;
  const w = need === 0 ? ws : ws !== null && ws.length >= need ? ws : new Float64Array(need);
  const wk = w === null ? new Float64Array(0) : w;
  const out = new Float64Array(6);
  for (let s0 = t.m0; s0 < t.m1; s0 += ROWS) {
    const s1 = Math.min(t.m1, s0 + ROWS), rows = s1 - s0;
    for (let jc = t.n0; jc < t.n1; jc += NC) {
      const nc = Math.min(NC, t.n1 - jc);
      if (!direct) wk.fill(0, 0, Math.ceil(rows / MR) * MR * ldw);
      for (let pc = 0; pc < t.k; pc += KC) {
        const kc = Math.min(KC, t.k - pc);
        const last = pc + KC >= t.k;
        const mode = last ? (pc === 0 ? 2 : 3) : pc === 0 ? 0 : 1;
        // A pool call's chunks (same id) on one worker share B's blocks: pack each once. Id 0 never matches.
        const key = __accelnl_gemm_bkey;
        if (t.id === 0 || key[0] !== t.id || key[1] !== pc || key[2] !== kc || key[3] !== jc || key[4] !== nc || key[5] !== t.kind + shift) {
          key[0] = 0; // invalid while packing
          if (t.kind === 1) packBI8(t, pc, kc, jc, nc, shift); else packB(t, pc, kc, jc, nc);
          key[1] = pc; key[2] = kc; key[3] = jc; key[4] = nc; key[5] = t.kind + shift; key[0] = t.id;
        }
        for (let ic = 0; ic < rows; ic += MC) {
          const mc = Math.min(MC, rows - ic), np = Math.ceil(mc / MR);
          packA(t, s0 + ic, mc, np, pc, kc);
          if (pairs) macroPairs(nc, np, kc, wk, ic * ldw, ldw, out, mode, t, s0 + ic, s1, jc, shift);
          else if (t.kind === 1) macroI8(nc, np, kc, wk, ic * ldw, ldw, out, shift);
          else macroF(nc, np, kc, wk, ic * ldw, ldw, out, mode, t, s0 + ic, s1, jc);
        }
      }
      if (!direct) writeBack(t, s0, s1, jc, nc, wk, ldw);
    }
  }
  return w;
}

/**
 * A share of a pool call: claims chunks of C (6-row panels or column pairs, `units` in all) from the
 * shared counter ctl[0] until none are left, and computes each with runTask. Chunks shrink as the
 * work runs out (a quarter of what is left per thread, at least minTake), so a worker that starts
 * late, or shares its core with another process, takes fewer chunks instead of finishing last.
 * `helpUntil` says who runs it:
 * - 0, a worker: it counts itself in ctl[1] when it starts and in ctl[2] when it is done, so the
 *   calling thread can tell when no worker is inside a chunk (started = done and nothing left).
 * - > 0, the calling thread helping while the workers wake up: it takes minTake units at a time
 *   and stops as soon as `helpers` workers have started or at performance.now() >= helpUntil.
 * - < 0, the calling thread taking part in the whole call, claiming like a worker; not counted.
 * Returns the workspace and the number of chunks computed.
 */
export function runClaims(t: Task, ctl: Int32Array, byRows: boolean, units: number, minTake: number, threads: number,
  ws: Float64Array | null, helpUntil: number, helpers: number): { ws: Float64Array | null; chunks: number } {
  const unit = byRows ? 6 : 2, lo = byRows ? t.m0 : t.n0, hi = byRows ? t.m1 : t.n1;
  const helping = helpUntil > 0, worker = helpUntil === 0;
  if (worker) Atomics.add(ctl, 1, 1);
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
    // In a worker t came by structured clone: the chunk is a copy in the kernels' own hidden class.
    ws = runTask(byRows ? makeTask(t, t.a, t.b, t.c, s, e, t.n0, t.n1, t.id) : makeTask(t, t.a, t.b, t.c, t.m0, t.m1, s, e, t.id), ws);
    chunks++;
  }
  // Counted done only on success: after a throw the call must wait for the worker's error reply.
  if (worker) { Atomics.add(ctl, 2, 1); Atomics.notify(ctl, 2); }
  return { ws, chunks };
}

/**
 * Runs every kernel path on small arrays before a thread's first real call, so that TurboFan
 * compiles each function once with the type feedback real calls bring. What it covers, each
 * found as a deoptimization of the first real calls (`--trace-deopt`; test/compute/warm-up.test):
 * - branches: m % 3 = 0, 1, 2 (partial A panels), odd n and n % 4 = 1..3 (partial B pairs and
 *   i8 quads), k in one KC block, in two and in three (modes 0 to 3), k > 4095 (i8 decoded per
 *   block), both transposes, beta 0 and not, id 0 and a pool call's (B blocks reused);
 * - values: alpha and beta fractional for floats, negative integers for i8;
 * - object shapes: tasks made as toTask and makeTask make them and, where `clone` is given (a
 *   worker), passed through structured clone as a worker receives them. Every array type is stored
 *   in a task's a, b and c first: V8 tracks a field's type, and widening it later throws away code
 *   compiled for the narrower one;
 * - entry points: runTask, and runClaims as a worker (helpUntil 0), as the calling thread helping
 *   (> 0) and joining (-1).
 * The small shapes come first, so that the feedback is complete before the big one makes the
 * functions hot enough to compile. `only`: one dtype (kernelIndex), or -1 for all. Two rounds
 * (WARMUP_ROUNDS) are 45-85 ms of one core per dtype here, compilation included.
 */
export function warmUp(rounds: number, only: number, clone: ((t: Task) => Task) | null): void {
  const KC = blocking().KC;
  // m, n, k per shape. The small ones reach the branches (the fourth only for i8, whose long-k path
  // starts past k = 4095); they run in the interpreter, so they are small. The last makes the
  // micro-kernel hot.
  const shapes = [25, 9, 40, 26, 6, 12, 7, 3, 2 * KC + 4, 2, 3, 4100, 24, 32, 260];
  // Every array type in a task's a, b and c (and, in a worker, in its structured clone), before any
  // code is compiled: the objects go, the widened field types stay with the hidden class.
  for (let kind = 0; kind < 3; kind++) {
    const a = kind === 0 ? new Float32Array(1) : kind === 1 ? new Float64Array(1) : new Int8Array(1);
    const c = kind === 0 ? new Float32Array(1) : kind === 1 ? new Float64Array(1) : new Int32Array(1);
    const t: Task = {
      kind: kind === 2 ? 1 : 0, m: 1, n: 1, k: 1, a, lda: 1, transA: false, b: a, ldb: 1, transB: false, c, ldc: 1,
      alpha: 0.5, beta: 0.25, m0: 0, m1: 1, n0: 0, n1: 1, id: 0,
    };
    if (clone !== null) clone(t);
  }
  let ws: Float64Array | null = null;
  let id = -1;
  for (let r = 0; r < rounds; r++) {
    for (let kind = 0; kind < 3; kind++) {
      if (only >= 0 && kind !== only) continue;
      const int = kind === 2;
      for (let s = 0; s < shapes.length; s += 3) {
        const m = shapes[s], n = shapes[s + 1], k = shapes[s + 2];
        if (k > 4095 && !int) continue;
        const shared = ((s / 3) & 1) === 1;
        const bi = kind === 1 ? 8 : kind === 0 ? 4 : 1, bo = kind === 1 ? 8 : 4;
        const ab = shared ? new SharedArrayBuffer(m * k * bi) : new ArrayBuffer(m * k * bi);
        const bb = shared ? new SharedArrayBuffer(k * n * bi) : new ArrayBuffer(k * n * bi);
        const cb = shared ? new SharedArrayBuffer(m * n * bo) : new ArrayBuffer(m * n * bo);
        const a = kind === 0 ? new Float32Array(ab) : kind === 1 ? new Float64Array(ab) : new Int8Array(ab);
        const b = kind === 0 ? new Float32Array(bb) : kind === 1 ? new Float64Array(bb) : new Int8Array(bb);
        const c = kind === 0 ? new Float32Array(cb) : kind === 1 ? new Float64Array(cb) : new Int32Array(cb);
        // The whole int8 range: i8's packed B (b + b' * 2^shift) leaves int32 only with large values.
        for (let i = 0; i < a.length; i++) a[i] = ((i * 37) & 255) - 128;
        for (let i = 0; i < b.length; i++) b[i] = ((i * 91) & 255) - 128;
        for (let tr = 0; tr < 4; tr++) {
          const transA = (tr & 1) !== 0, transB = (tr & 2) !== 0;
          const t: Task = {
            kind: int ? 1 : 0, m, n, k, a, lda: transA ? m : k, transA, b, ldb: transB ? k : n, transB, c, ldc: n,
            alpha: tr === 2 ? 1 : int ? -3 : 0.5, beta: (tr & 1) === 0 ? 0 : int ? 2 : 0.25, m0: 0, m1: m, n0: 0, n1: n, id: 0,
          };
          ws = runTask(t, ws);
          if (s === shapes.length - 3) continue;
          // A pool call, cut by rows or by columns into chunks.
          const byRows = tr < 2, units = Math.ceil((byRows ? m : n) / (byRows ? 6 : 2));
          const p = makeTask(t, a, b, c, 0, m, 0, n, id--);
          const q = clone !== null ? clone(p) : p;
          const helpUntil = clone !== null ? 0 : tr === 0 ? -1 : performance.now() + 1000;
          ws = runClaims(q, new Int32Array(new SharedArrayBuffer(12)), byRows, units, 1, 2, ws, helpUntil, 3).ws;
        }
      }
    }
  }
  // Warm-up ids are negative: a real call's (> 0) never matches them; invalidate all the same.
  __accelnl_gemm_bkey[0] = 0;
}

/**
 * Which of a thread's three kernel instances runs a task: 0 f32, 1 f64, 2 i8 (the `only` of warmUp).
 * Each instance is its own copy of the kernel text, so each compiles for one dtype: element loads
 * and stores of A, B and C see one array type (one map check) instead of two or three.
 */
export function kernelIndex(t: Task): number {
  return t.kind === 1 ? 2 : t.c.BYTES_PER_ELEMENT === 4 ? 0 : 1;
}

/** Every function above, in an order where each is declared before the worker script runs. */
export const KERNEL_FUNCTIONS = [
  blocking, scratchSizes, scratchNames, installScratch, makeTask, packA, packB, packBI8, dot3x2, macroF, macroPairs, macroI8, writeBack,
  scaleC, runTask,
  runClaims, warmUp, kernelIndex,
];
