#!/usr/bin/env node
// Benchmark runner: bundles bench/<name>.ts with esbuild and runs each in its own node process,
// so that every suite starts from a cold, comparable heap. `node bench/run.js [--quick] [name...]`.
'use strict';
const path = require('path');
const fs = require('fs');
const os = require('os');
const { spawnSync } = require('child_process');
const esbuild = require('esbuild');

const args = process.argv.slice(2);
const flags = args.filter((a) => a.startsWith('--'));
let names = args.filter((a) => !a.startsWith('--'));
const all = fs.readdirSync(__dirname).filter((f) => f.endsWith('.ts') && !f.startsWith('_')).map((f) => f.slice(0, -3)).sort();
if (names.length === 0) names = all;
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-bench-'));
// The bundles run from a temp dir, where the addon loader (which looks only beside its own file)
// cannot find the built addons: name them, unless the caller did.
const addon = path.resolve(__dirname, '../genl/native/build/Release/accelnl_sock.node');
const shm = path.resolve(__dirname, '../genl/native/shm/build/Release/accelnl_shm.node');
const addonEnv = {
  ...(!process.env.ACCELNL_NATIVE && fs.existsSync(addon) ? { ACCELNL_NATIVE: addon } : {}),
  ...(!process.env.ACCELNL_SHM && fs.existsSync(shm) ? { ACCELNL_SHM: shm } : {}),
};
let failed = 0;
for (const name of names) {
  if (!all.includes(name)) { console.error(`no benchmark named ${name} (have: ${all.join(', ')})`); process.exit(2); }
  const outfile = path.join(out, `${name}.js`);
  esbuild.buildSync({
    entryPoints: [path.join(__dirname, `${name}.ts`)], bundle: true, platform: 'node', target: 'node20',
    outfile, external: ['netlink', '*.node'], logLevel: 'error', sourcemap: 'inline',
  });
  const r = spawnSync(process.execPath, ['--expose-gc', outfile, ...flags], {
    stdio: 'inherit', env: { ...process.env, ...addonEnv, ACCELNL_ROOT: path.resolve(__dirname, '..'), NODE_PATH: path.resolve(__dirname, '../node_modules') },
  });
  if (r.status !== 0) failed++;
}
fs.rmSync(out, { recursive: true, force: true });
// A run of the whole suite also writes the summary (and, for a full run, the chart in docs/).
if (args.filter((a) => !a.startsWith('--')).length === 0 && !flags.includes('--smoke') && !failed) {
  const { summarize } = require('./summary.js');
  const results = process.env.ACCELNL_BENCH_OUT ?? path.join(__dirname, 'results');
  const quick = flags.includes('--quick');
  const svg = quick ? path.join(results, 'performance.svg') : path.join(__dirname, '../docs/performance.svg');
  summarize(results, svg, quick ? 'quick run' : 'full run');
  console.log(`\nsummary: ${path.join(results, 'summary.json')}, chart: ${svg}`);
}
process.exit(failed ? 1 : 0);
