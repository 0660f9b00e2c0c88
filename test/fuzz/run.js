#!/usr/bin/env node
// `npm run fuzz -- ARGS`: bundles test/fuzz/cli.ts with esbuild (TypeScript 7 has no API to run it
// directly) and runs it with ARGS. See cli.ts for the arguments.
'use strict';
const path = require('path');
const fs = require('fs');
const os = require('os');
const { spawnSync } = require('child_process');
const esbuild = require('esbuild');

const root = path.resolve(__dirname, '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-fuzz-'));
const outfile = path.join(dir, 'fuzz.js');
esbuild.buildSync({
  entryPoints: [path.join(__dirname, 'cli.ts')], bundle: true, platform: 'node', target: 'node20',
  outfile, external: ['netlink', '*.node'], logLevel: 'error', sourcemap: 'inline',
});
const r = spawnSync(process.execPath, ['--enable-source-maps', outfile, ...process.argv.slice(2)], {
  stdio: 'inherit', env: { ...process.env, ACCELNL_ROOT: root, NODE_PATH: path.join(root, 'node_modules') },
});
fs.rmSync(dir, { recursive: true, force: true });
process.exit(r.status ?? 1);
