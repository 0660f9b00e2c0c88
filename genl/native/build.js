#!/usr/bin/env node
// Builds genl/native/build/Release/accelnl_sock.node. Run by the root package's `install`
// script (npm runs it on a plain `npm install` / `npm ci`), or by hand: `node genl/native/build.js`.
// A failed build does not fail the install: everything but credentials works without the
// addon (see docs/transport.md). Set ACCELNL_REQUIRE_NATIVE=1 to make it fatal.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

function nodeGyp() {
  // npm points npm_config_node_gyp at its bundled copy when it runs lifecycle scripts.
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ];
  return candidates.find((p) => p && fs.existsSync(p));
}

function main() {
  const gyp = nodeGyp();
  const args = gyp ? [gyp, 'rebuild'] : null;
  if (!args) return fail('node-gyp not found (it ships inside npm)');
  // Use the installed headers when present, so no header download (and no network) is needed.
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include/node/node_api.h'))) {
    args.push(`--nodedir=${prefix}`);
  }
  const r = spawnSync(process.execPath, args, { cwd: __dirname, stdio: 'inherit' });
  if (r.status !== 0) return fail(`node-gyp exited with ${r.status ?? r.signal}`);
  console.log(`accelnl: built ${path.join(__dirname, 'build/Release/accelnl_sock.node')}`);
  return 0;
}

function fail(why) {
  console.warn(`accelnl: WARNING: native socket addon not built: ${why}.\n` +
    '  Sockets fall back to the npm `netlink` backend, which cannot report sender credentials;\n' +
    '  the server then refuses admin operations with EPERM. Retry with: node genl/native/build.js');
  return process.env.ACCELNL_REQUIRE_NATIVE === '1' ? 1 : 0;
}

process.exitCode = main();
