#!/usr/bin/env node
// Bundles the CLI (bin/main.ts and everything it imports) into dist/accel.js with esbuild, so that
// `accel` starts without compiling TypeScript. Run on install and by bin/accel when sources changed.
//
// Start-up time is mostly parsing, so code the common commands never run is kept out of the main
// bundle and loaded on first use:
//  - the long-running objects (monitor, exporter with prom-client, daemon with the emulator) are
//    bundles of their own, reached through main.ts's dynamic import();
//  - the RAS payload codecs (device/formats: CBOR, ASN.1, protobuf, Thrift libraries), which the
//    client library imports for format subscriptions, are dist/formats.js, behind a stub whose
//    getters require it when a codec is first touched.
// Each file is written beside its final name and renamed into place, so that a process starting
// while another rebuilds never loads half a file.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const FORMATS = path.join(root, 'device/formats/index.ts');

/** Resolve device/formats to a stub with one lazy getter per export of the real module. */
function lazyFormats(names) {
  const getters = names.map((n) => `get ${JSON.stringify(n)}() { return load()[${JSON.stringify(n)}]; }`).join(',\n  ');
  return {
    name: 'lazy-formats',
    setup(b) {
      b.onResolve({ filter: /\/formats$/ }, async (args) => {
        if (args.pluginData === 'real') return undefined;
        const r = await b.resolve(args.path, { resolveDir: args.resolveDir, kind: args.kind, pluginData: 'real' });
        return r.path === FORMATS ? { path: 'formats-stub', namespace: 'lazy' } : r;
      });
      b.onLoad({ filter: /.*/, namespace: 'lazy' }, () => ({
        loader: 'js',
        contents: `let m; const load = () => (m ??= require('./formats.js'));\nmodule.exports = { __esModule: true,\n  ${getters} };\n`,
      }));
    },
  };
}

/** Build every bundle; resolves with the main bundle's path. (Async: esbuild runs plugins only so.) */
async function build() {
  const esbuild = require('esbuild');
  const outfile = path.join(root, 'dist/accel.js');
  const lazy = ['monitor', 'exporter', 'daemon-cmd'];
  const base = {
    bundle: true, platform: 'node', target: 'node20', logLevel: 'error', write: false,
    sourcemap: 'linked', minifySyntax: true, legalComments: 'none',
  };
  const outputs = [];
  const haveFormats = fs.existsSync(FORMATS);
  const plugins = [];
  if (haveFormats) {
    const probe = await esbuild.build({ ...base, entryPoints: [FORMATS], format: 'esm', metafile: true, sourcemap: false, outdir: '/tmp', external: ['netlink', '*.node'] });
    plugins.push(lazyFormats(Object.values(probe.metafile.outputs)[0].exports));
    outputs.push(...(await esbuild.build({ ...base, entryPoints: [FORMATS], outfile: path.join(root, 'dist/formats.js'), external: ['netlink', '*.node'] })).outputFiles);
  }
  for (const [src, out] of [['main', 'accel'], ...lazy.map((n) => [n, n])]) {
    outputs.push(...(await esbuild.build({
      ...base, entryPoints: [path.join(root, `bin/${src}.ts`)], outfile: path.join(root, `dist/${out}.js`),
      external: ['netlink', '*.node', './formats.js', ...lazy.map((n) => `./${n}.js`)],
      // The daemon encodes payloads all the time: it keeps the codecs in its own bundle.
      plugins: src === 'daemon-cmd' ? [] : plugins,
    })).outputFiles);
  }
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
  build().then((f) => console.log(`accelnl: bundled ${f}`), (e) => {
    console.error(`accelnl: CLI bundle failed: ${e.message}`);
    process.exitCode = 1;
  });
}
