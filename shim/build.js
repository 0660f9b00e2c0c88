#!/usr/bin/env node
// Builds shim/build/accelnl_shim.so, the LD_PRELOAD library behind `accel wrap`. Run by the
// package's install step (beside the socket addon), or by hand: `node shim/build.js`.
// A failed build does not fail the install: only `accel wrap` needs it, and it says so.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const src = path.join(__dirname, 'accelnl_shim.c');
const out = path.join(__dirname, 'build/accelnl_shim.so');

function build() {
  const cc = process.env.CC || 'cc';
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const r = spawnSync(cc, ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-o', tmp, src, '-ldl'], { stdio: 'inherit' });
  if (r.status !== 0) {
    fs.rmSync(tmp, { force: true });
    console.warn(`accelnl: WARNING: preload shim not built (${cc} ${r.error ? r.error.message : `exited with ${r.status}`}); ` +
      '`accel wrap` needs it. Retry with: node shim/build.js');
    return process.env.ACCELNL_REQUIRE_NATIVE === '1' ? 1 : 0;
  }
  fs.renameSync(tmp, out);  // a wrapped program starting meanwhile never maps half a file
  console.log(`accelnl: built ${out}`);
  return 0;
}

module.exports = { SHIM: out };
if (require.main === module) process.exitCode = build();
