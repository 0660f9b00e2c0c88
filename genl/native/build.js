#!/usr/bin/env node
// Builds genl/native/build/Release/accelnl_sock.node (the netlink sockets, Node-API) and
// genl/native/shm/build/Release/accelnl_shm.node (mapped BO memory, V8's API: built for this
// Node). Run by the root package's `install` script (npm runs it on a plain `npm install` /
// `npm ci`), or by hand: `node genl/native/build.js`. A failed build does not fail the install:
// everything but credentials works without the socket addon (docs/transport.md), and everything
// but bo-map without the shm one (docs/daemon.md). Set ACCELNL_REQUIRE_NATIVE=1 to make either fatal.
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
  const sock = build(__dirname, 'accelnl_sock.node', failSock);
  const shm = build(path.join(__dirname, 'shm'), 'accelnl_shm.node', failShm);
  return sock || shm;
}

function build(dir, file, fail) {
  const gyp = nodeGyp();
  const args = gyp ? [gyp, 'rebuild'] : null;
  if (!args) return fail('node-gyp not found (it ships inside npm)');
  // Use the installed headers when present, so no header download (and no network) is needed.
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include/node/node_api.h'))) {
    args.push(`--nodedir=${prefix}`);
  }
  const r = spawnSync(process.execPath, args, { cwd: dir, stdio: 'inherit' });
  if (r.status !== 0) return fail(`node-gyp exited with ${r.status ?? r.signal}`);
  console.log(`accelnl: built ${path.join(dir, 'build/Release', file)}`);
  return 0;
}

function failShm(why) {
  console.warn(`accelnl: WARNING: shared-memory addon not built: ${why}.\n` +
    '  Buffer objects cannot be mapped (bo-map answers EOPNOTSUPP); bo-write and bo-read work.\n' +
    '  Retry with: node genl/native/build.js');
  return process.env.ACCELNL_REQUIRE_NATIVE === '1' ? 1 : 0;
}

function failSock(why) {
  console.warn(`accelnl: WARNING: native socket addon not built: ${why}.\n` +
    '  Sockets fall back to the npm `netlink` backend, which cannot report sender credentials;\n' +
    '  the server then refuses admin operations with EPERM. Retry with: node genl/native/build.js');
  return process.env.ACCELNL_REQUIRE_NATIVE === '1' ? 1 : 0;
}

process.exitCode = main();
