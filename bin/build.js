#!/usr/bin/env node
// Bundles the CLI (bin/main.ts and everything it imports) into dist/accel.js with esbuild, so that
// `accel` starts without compiling TypeScript. Run on install and by bin/accel when sources changed.
'use strict';
const path = require('path');

function build() {
  const esbuild = require('esbuild');
  const root = path.resolve(__dirname, '..');
  esbuild.buildSync({
    entryPoints: [path.join(root, 'bin/main.ts')], bundle: true, platform: 'node', target: 'node20',
    outfile: path.join(root, 'dist/accel.js'), external: ['netlink', '*.node'], logLevel: 'error',
    sourcemap: 'linked', minifySyntax: true, legalComments: 'none',
  });
  return path.join(root, 'dist/accel.js');
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
