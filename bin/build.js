#!/usr/bin/env node
// Bundles the CLI (bin/main.ts and everything it imports) into dist/accel.js with esbuild, so that
// `accel` starts without compiling TypeScript. Run on install and by bin/accel when sources changed.
// The long-running objects (monitor, exporter with prom-client, daemon with the emulator) are
// bundles of their own in dist/, loaded by main.ts's dynamic import() only when used: the common
// commands then parse a third of the code. Each file is written beside its final name and renamed
// into place, so that a process starting while another rebuilds never loads half a file.
'use strict';
const fs = require('fs');
const path = require('path');

function build() {
  const esbuild = require('esbuild');
  const root = path.resolve(__dirname, '..');
  const outfile = path.join(root, 'dist/accel.js');
  const lazy = ['monitor', 'exporter', 'daemon-cmd'];
  const outputs = [['main', 'accel'], ...lazy.map((n) => [n, n])].flatMap(([src, out]) => esbuild.buildSync({
    entryPoints: [path.join(root, `bin/${src}.ts`)], bundle: true, platform: 'node', target: 'node20',
    outfile: path.join(root, `dist/${out}.js`), logLevel: 'error', write: false,
    external: ['netlink', '*.node', ...lazy.map((n) => `./${n}.js`)],
    sourcemap: 'linked', minifySyntax: true, legalComments: 'none',
  }).outputFiles);
  fs.mkdirSync(path.dirname(outfile), { recursive: true });
  // The main bundle last: the launcher compares its time with the sources'.
  outputs.sort((a, b) => (a.path === outfile) - (b.path === outfile));
  for (const f of outputs) {
    const tmp = `${f.path}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, f.contents);
    fs.renameSync(tmp, f.path);
  }
  return outfile;
}

module.exports = { build };
if (require.main === module) {
  try {
    console.log(`accelnl: bundled ${build()}`);
  } catch (e) {
    console.error(`accelnl: CLI bundle failed: ${e.message}`);
    process.exitCode = 1;
  }
}
