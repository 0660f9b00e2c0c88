#!/usr/bin/env node
// Bundles the CLI (bin/main.ts and everything it imports) into dist/accel.js with esbuild, so that
// `accel` starts without compiling TypeScript. Run on install and by bin/accel when sources changed.
// The bundle is written beside its final name and renamed into place, so that a process starting
// while another rebuilds never loads half a file.
'use strict';
const fs = require('fs');
const path = require('path');

function build() {
  const esbuild = require('esbuild');
  const root = path.resolve(__dirname, '..');
  const outfile = path.join(root, 'dist/accel.js');
  const r = esbuild.buildSync({
    entryPoints: [path.join(root, 'bin/main.ts')], bundle: true, platform: 'node', target: 'node20',
    outfile, external: ['netlink', '*.node'], logLevel: 'error', write: false,
    sourcemap: 'linked', minifySyntax: true, legalComments: 'none',
  });
  fs.mkdirSync(path.dirname(outfile), { recursive: true });
  for (const f of r.outputFiles) {
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
