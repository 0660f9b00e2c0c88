#!/usr/bin/env node
// `npm run gen`: regenerate the module of every YNL spec listed in genl/ynl/gen.ts TARGETS.
// `--check` writes nothing and exits 1 when a committed module is stale.
'use strict';
const fs = require('fs');
const path = require('path');
const { transformSync } = require('esbuild');

// Run the TypeScript sources directly, types stripped by esbuild as in the jest transform.
require.extensions['.ts'] = (m, file) => {
  const src = fs.readFileSync(file, 'utf8');
  m._compile(transformSync(src, { loader: 'ts', format: 'cjs', target: 'node20', sourcefile: file }).code, file);
};

const root = path.resolve(__dirname, '../..');
const { TARGETS, renderTarget } = require('./gen.ts');
const check = process.argv.includes('--check');
let failed = 0;
for (const t of TARGETS) {
  const out = path.join(root, t.out);
  let text;
  try {
    text = renderTarget(root, t);
  } catch (e) {
    console.error(`ynl-gen: ${t.spec}: ${e.message}`);
    failed++;
    continue;
  }
  let old = null;
  try { old = fs.readFileSync(out, 'utf8'); } catch { /* new file */ }
  if (old === text) {
    console.log(`ynl-gen: ${t.out} is up to date`);
  } else if (check) {
    console.error(`ynl-gen: ${t.out} is stale, run npm run gen`);
    failed++;
  } else {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, text);
    console.log(`ynl-gen: wrote ${t.out} from ${t.spec}`);
  }
}
if (failed) process.exitCode = 1;
