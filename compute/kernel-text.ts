// The kernels as source text (Function.prototype.toString), instantiated on the calling thread
// and in every worker. Text works in all three settings: under jest (TS transformed in-process,
// no .js file to point a Worker at), inside an esbuild bundle, and from plain node.
//
// The calling thread does not use the imported functions directly: under jest modules run in a
// vm context whose global object goes through interceptors, which turns each access to the
// scratch globals into a slow C++ call (measured 1000x). vm.runInThisContext evaluates the text
// against the process's real global, where V8 can constant-fold them.

import { runInThisContext } from 'node:vm';
import { KERNEL_FUNCTIONS, blocking, installScratch, kernelIndex, runClaims, runTask, scratchNames, scratchSizes, warmUp } from './kernels';
import type { Task } from './types';

export interface Kernels {
  runTask: typeof runTask;
  runClaims: typeof runClaims;
}

// Coverage tools (istanbul) inject calls like cov_1x2y().s[3]++ into function bodies; the counters
// live in the instrumented module, not here. Stub them so the text still runs.
function coverageShim(src: string): string {
  const names = [...new Set(src.match(/\bcov_[A-Za-z0-9_$]+/g) ?? [])];
  if (names.length === 0) return '';
  return [
    'const __covStub = { s: {}, f: {}, b: new Proxy({}, { get: (o, k) => (o[k] ??= []) }) };',
    ...names.map((n) => `function ${n}() { return __covStub; }`),
  ].join('\n');
}

let text: string | undefined;

/** Declarations of every kernel function. `const name = (source)` works whether toString gives a
 * declaration or, after minification, an expression. */
export function kernelText(): string {
  if (text === undefined) {
    const fns = KERNEL_FUNCTIONS.map((f) => `const ${f.name} = (${f.toString()});`).join('\n');
    text = `${coverageShim(fns)}\n${fns}`;
  }
  return text;
}

/**
 * Warm-up rounds run before a thread's first call (see warmUp). One reaches every path, but V8
 * compiles concurrently: a function compiled from the feedback of part of the first round could
 * land after it, and deoptimize at the first real call (seen in 2 of 9 runs of the warm-up test
 * with one round). A second round meets such code and has it recompiled. It costs: a first f32
 * 256^3 call took 85-90 ms with two rounds, 44-64 ms with one.
 */
export const WARMUP_ROUNDS = 2;

/**
 * One kernel instance: the text in a function of its own, warmed up for dtype `index` (see
 * kernelIndex). It defines the scratch globals if this thread has none yet (a worker defines them
 * first, from workerData). `clone`: an expression for warmUp's clone (a worker's), or null.
 */
function instanceText(index: number, clone: string): string {
  return `(function () {\n${kernelText()}\n${installScratch.name}(null);\n${warmUp.name}(${WARMUP_ROUNDS}, ${index}, ${clone});\nreturn { runTask: ${runTask.name}, runClaims: ${runClaims.name} };\n})()`;
}

/**
 * The worker script: scratch from workerData, three kernel instances (one per dtype, each warmed up;
 * messages posted meanwhile wait in the port), then each share of a call posted on workerData.port:
 * claim chunks until none are left, reply on the same port.
 */
export function workerScript(): string {
  return [
    '"use strict";',
    `const ${installScratch.name} = (${installScratch.toString()});`,
    `const ${scratchSizes.name} = (${scratchSizes.toString()});`,
    `const ${scratchNames.name} = (${scratchNames.toString()});`,
    `const ${blocking.name} = (${blocking.toString()});`,
    `const ${kernelIndex.name} = (${kernelIndex.toString()});`,
    coverageShim(KERNEL_FUNCTIONS.map((f) => f.toString()).join('\n')),
    "const { workerData, MessageChannel, receiveMessageOnPort } = require('node:worker_threads');",
    `${installScratch.name}(workerData.scratch);`,
    // Warm-up tasks take the way real ones come: through structured clone (see warmUp).
    'const warm = new MessageChannel();',
    'const clone = (t) => { warm.port1.postMessage(t); return receiveMessageOnPort(warm.port2).message; };',
    `const kernels = [${instanceText(0, 'clone')}, ${instanceText(1, 'clone')}, ${instanceText(2, 'clone')}];`,
    'warm.port1.close();',
    'workerData.port.postMessage({ warm: true });',
    'let ws = null;',
    'const port = workerData.port;',
    'port.on("message", (msg) => {',
    '  try {',
    `    const r = kernels[${kernelIndex.name}(msg.task)].runClaims(msg.task, msg.ctl, msg.byRows, msg.units, msg.minTake, msg.threads, ws, 0, 0);`,
    '    ws = r.ws;',
    '    port.postMessage({ ok: true, chunks: r.chunks });',
    '  } catch (e) { port.postMessage({ ok: false, error: String((e && e.stack) || e) }); }',
    '});',
  ].join('\n');
}

const local: (Kernels | undefined)[] = [undefined, undefined, undefined];

/**
 * The calling thread's kernels for a task's dtype, instantiated on first use against the real global
 * (a separate evaluation of the text per dtype: separate functions, separate type feedback).
 */
export function localKernels(t: Task): Kernels {
  return localKernelsAt(kernelIndex(t));
}

/** The calling thread's kernels for dtype index i (kernelIndex: 0 f32, 1 f64, 2 i8). */
export function localKernelsAt(i: number): Kernels {
  let k = local[i];
  if (k === undefined) {
    const src = `"use strict";\n${instanceText(i, 'null')}`;
    k = runInThisContext(src, { filename: `accelnl-compute-kernels-${['f32', 'f64', 'i8'][i]}.js` }) as Kernels;
    local[i] = k;
  }
  return k;
}
