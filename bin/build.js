#!/usr/bin/env node
// Bundles the CLI (bin/main.ts and everything it imports) into dist/accel.js with esbuild, so that
// `accel` starts without compiling TypeScript, and the library (index.ts) into dist/index.js.
// Run by `npm run build` / prepare / prepack, and by bin/accel when a source listed in
// dist/inputs.json (per bundle, every file it was made from) is newer than the bundle.
// `--types` also writes the library's declarations to dist/types/ (tsc -p tsconfig.types.json).
//
// Start-up time is mostly parsing, so code the common commands never run is kept out of the main
// bundle and loaded on first use:
//  - the long-running objects (monitor, exporter with prom-client, daemon with the emulator) are
//    bundles of their own, reached through main.ts's dynamic import();
//  - the RAS payload codecs (device/formats: CBOR, ASN.1, protobuf, Thrift libraries), which the
//    client library imports for format subscriptions, are dist/formats.js, behind a stub whose
//    getters require it when a codec is first touched;
//  - devlink's generated module (LAZY_MODULES), for `accel -s family get devlink` only, is
//    dist/devlink.js.
// Each file is written beside its final name and renamed into place, so that a process starting
// while another rebuilds never loads half a file.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const FORMATS = path.join(root, 'device/formats/index.ts');

/**
 * Resolve imports matching `filter` as esbuild would, then let `pick` replace the result (undefined:
 * keep it). The second resolve is marked, so that it does not come back here.
 */
function redirect(b, filter, pick) {
  b.onResolve({ filter }, async (args) => {
    if (args.pluginData === 'real') return undefined;
    const r = await b.resolve(args.path, { resolveDir: args.resolveDir, kind: args.kind, pluginData: 'real' });
    return pick(r) ?? r;
  });
}

/** Resolve device/formats to a stub with one lazy getter per export of the real module. */
function lazyFormats(names) {
  const getters = names.map((n) => `get ${JSON.stringify(n)}() { return load()[${JSON.stringify(n)}]; }`).join(',\n  ');
  return {
    name: 'lazy-formats',
    setup(b) {
      redirect(b, /\/formats$/, (r) => (r.path === FORMATS ? { path: 'formats-stub', namespace: 'lazy' } : undefined));
      b.onLoad({ filter: /.*/, namespace: 'lazy' }, () => ({
        loader: 'js',
        contents: `let m; const load = () => (m ??= require('./formats.js'));\nmodule.exports = { __esModule: true,\n  ${getters} };\n`,
      }));
    },
  };
}

/**
 * Modules of ours that only a rarely used command needs, by source, and the bundle of its own each
 * becomes (dist/<name>.js): the main bundle's require() of one loads that bundle on first use.
 * devlink's generated module (its spec, 63 KB) serves only `accel -s family get devlink`; in the
 * main bundle it was a quarter of what every command read and deserialized.
 */
const LAZY_MODULES = { 'device/gen/devlink.ts': 'devlink' };

function lazyModules() {
  const byPath = new Map(Object.entries(LAZY_MODULES).map(([src, name]) => [path.join(root, src), `./${name}.js`]));
  const stems = Object.keys(LAZY_MODULES).map((src) => path.basename(src, '.ts').replace(/[.-]/g, '\\$&'));
  return {
    name: 'lazy-modules',
    setup(b) {
      redirect(b, new RegExp(`/(${stems.join('|')})$`), (r) => (byPath.has(r.path) ? { path: byPath.get(r.path), external: true } : undefined));
    },
  };
}

/** dist/<name>.js: the bundle a lazily loaded package becomes (yaml -> dist/yaml.js). */
const pkgBundle = (name) => `./${name.replace(/[^a-z0-9]+/gi, '-')}.js`;

/**
 * Packages the CLI's commands rarely run (the `yaml` parser, there for spec files) become
 * a stub that loads the package on first use, from a bundle of its own beside the CLI's
 * (pkgBundle): a short command neither initialises it nor reads its code (the YAML parser was half
 * of the main bundle). The stub answers esbuild's interop (__esModule, default) itself.
 */
function lazyPackages(names) {
  const filter = new RegExp(`^(${names.map((n) => n.replace(/[/.]/g, '\\$&')).join('|')})$`);
  return {
    name: 'lazy-packages',
    setup(b) {
      b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'lazy-pkg' }));
      b.onLoad({ filter: /.*/, namespace: 'lazy-pkg' }, (args) => ({
        loader: 'js', resolveDir: root,
        contents: `let m; const load = () => (m ??= require(${JSON.stringify(pkgBundle(args.path))}));
module.exports = new Proxy({}, {
  get(_, k) {
    if (k === '__esModule') return true;
    const r = load();
    return k === 'default' && !(r && r.__esModule) ? r : r[k];
  },
  has: (_, k) => k in load(),
});
`,
      }));
    },
  };
}

/**
 * `import * as fs from 'fs'` bundles as `fs = __toESM(require("fs"))`: a copy of the module's
 * namespace, one getter defined per export, made when the bundle loads (a few ms for the CLI's
 * dozen imports of fs, os and path). A Node built-in is its own namespace: where the bundle never
 * reads the copy's `default`, the copy becomes the module itself. Spaces keep every column in place,
 * so the source map stays exact.
 */
function directBuiltins(code) {
  const { isBuiltin } = require('module');
  return code.replace(/\b([A-Za-z_$][\w$]*) = __toESM\(require\("([^"]+)"\)\)/g, (all, name, mod) => {
    if (!isBuiltin(mod) || new RegExp(`\\b${name.replace(/\$/g, '\\$')}(\\.default\\b|\\[)`).test(code)) return all;
    const direct = `${name} = require("${mod}")`;
    return direct + ' '.repeat(all.length - direct.length);
  });
}

/** Build every bundle; resolves with the main bundle's path. (Async: esbuild runs plugins only so.) */
async function build() {
  const esbuild = require('esbuild');
  const outfile = path.join(root, 'dist/accel.js');
  const lazy = ['monitor', 'exporter', 'daemon-cmd'];
  const lazyPkgs = ['yaml'];
  const base = {
    bundle: true, platform: 'node', target: 'node20', logLevel: 'error', write: false,
    sourcemap: 'linked', minifySyntax: true, legalComments: 'none', metafile: true,
  };
  // The bundles bin/accel runs (the main one, the lazy ones and the payload codecs) are written
  // as Node's module wrapper function, which bin/accel compiles as it is. It used to wrap them
  // itself (Module.wrap), and V8 then copied the joined source into one flat string: 254 KB of
  // new space for the main bundle at every start, which with the rest crossed the young
  // generation's threshold and cost a 2-3 ms scavenge. Such a file is not a module to require:
  // only bin/accel runs it. (dist/yaml.js, which is, stays a plain module; bin/accel takes both.)
  const { wrapper } = require('module');
  const wrapped = { banner: { js: wrapper[0] }, footer: { js: wrapper[1] } };
  const outputs = [];
  /** Per bundle (file name in dist/), the sources it was made from. */
  const inputs = {};
  const direct = (files) => files.map((f) => (f.path.endsWith('.js') ? { path: f.path, contents: Buffer.from(directBuiltins(f.text)) } : f));
  const track = (r) => {
    const js = r.outputFiles.find((f) => f.path.endsWith('.js'));
    inputs[path.basename(js.path)] = Object.keys(r.metafile.inputs).filter((f) => !f.includes('node_modules/') && !f.includes(':') && !f.startsWith('<')).sort();
    return r.outputFiles;
  };
  const haveFormats = fs.existsSync(FORMATS);
  const plugins = [];
  if (haveFormats) {
    const probe = await esbuild.build({ ...base, entryPoints: [FORMATS], format: 'esm', metafile: true, sourcemap: false, outdir: '/tmp', external: ['netlink', '*.node'] });
    plugins.push(lazyFormats(Object.values(probe.metafile.outputs)[0].exports));
    outputs.push(...track(await esbuild.build({ ...base, ...wrapped, entryPoints: [FORMATS], outfile: path.join(root, 'dist/formats.js'), external: ['netlink', '*.node'] })));
  }
  for (const [src, name] of Object.entries(LAZY_MODULES)) {
    outputs.push(...track(await esbuild.build({ ...base, ...wrapped, entryPoints: [path.join(root, src)], outfile: path.join(root, `dist/${name}.js`) })));
  }
  for (const name of lazyPkgs) {
    outputs.push(...track(await esbuild.build({
      ...base, stdin: { contents: `module.exports = require(${JSON.stringify(name)});`, resolveDir: root, loader: 'js' },
      outfile: path.join(root, 'dist', pkgBundle(name)),
    })));
  }
  for (const [src, out] of [['main', 'accel'], ...lazy.map((n) => [n, n])]) {
    outputs.push(...direct(track(await esbuild.build({
      ...base, ...wrapped, entryPoints: [path.join(root, `bin/${src}.ts`)], outfile: path.join(root, `dist/${out}.js`),
      external: ['netlink', '*.node', './formats.js', ...lazy.map((n) => `./${n}.js`), ...lazyPkgs.map(pkgBundle),
        // Only `accel daemon --grpc` loads @grpc/grpc-js (device/formats/grpc.ts), from the package's
        // dependencies. In the bundle, its 0.8 MB (with protobufjs and the proto loader) were read and
        // deserialized at every start: the 1-device daemon's ready line came 60-70 ms later.
        ...(src === 'daemon-cmd' ? ['@grpc/grpc-js'] : [])],
      // The daemon reads its config (js-yaml) and encodes payloads all the time: it keeps both in
      // its own bundle. (`yaml` is not in it: only the spec loader uses that.)
      plugins: src === 'daemon-cmd' ? [] : [...plugins, lazyPackages(lazyPkgs), lazyModules()],
    }))));
  }
  // The library: dependencies stay packages (the user's install dedupes them), the addon is
  // found by genl/native/load.ts relative to dist/.
  const library = path.join(root, 'index.ts');
  if (fs.existsSync(library)) {
    const deps = Object.keys(require('../package.json').dependencies ?? {});
    outputs.push(...track(await esbuild.build({
      ...base, entryPoints: [library], outfile: path.join(root, 'dist/index.js'), external: [...deps, '*.node'],
    })));
  }
  // Relative to the root: bin/accel stats these (and only these) to see whether to rebuild.
  outputs.push({ path: path.join(root, 'dist/inputs.json'), contents: Buffer.from(`${JSON.stringify(inputs, null, 1)}\n`) });
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

/**
 * The library's declarations, dist/types/ (tsc). kv32's codec imports the untyped buffer-layout
 * package; its ambient declaration goes along, referenced from index.d.ts.
 */
function types() {
  const { spawnSync } = require('child_process');
  const out = path.join(root, 'dist/types');
  fs.rmSync(out, { recursive: true, force: true });
  const tsc = path.join(path.dirname(require.resolve('typescript/package.json', { paths: [root] })), 'bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.types.json')], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`tsc exited with ${r.status ?? r.signal}`);
  const ambient = 'device/formats/buffer-layout.d.ts';
  fs.copyFileSync(path.join(root, ambient), path.join(out, ambient));
  const index = path.join(out, 'index.d.ts');
  fs.writeFileSync(index, `/// <reference path="./${ambient}" />\n${fs.readFileSync(index, 'utf8')}`);
  return out;
}

/**
 * For the tarball: the addon and the shim as built here, in prebuilds/<platform>-<arch>/. The
 * install step builds both from source; when it cannot (no compiler, or npm's allowScripts policy
 * skipped it) these load instead (Node-API: one build serves every Node >= 20). The shm addon
 * goes under node-abi<N>/, for the one Node ABI it was built for.
 */
function prebuilds() {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['genl/native/build/Release/accelnl_sock.node', 'shim/build/accelnl_shim.so']) {
    const from = path.join(root, f);
    if (!fs.existsSync(from)) throw new Error(`${f} is not built: run "npm install" (or node genl/native/build.js, node shim/build.js) first`);
    fs.copyFileSync(from, path.join(dir, path.basename(f)));
  }
  // The shm addon uses V8's API: its prebuild serves one Node ABI (genl/native/load.ts). It is
  // filed under this Node's, so pack with the Node that ran the install step.
  const shm = path.join(root, 'genl/native/shm/build/Release/accelnl_shm.node');
  if (fs.existsSync(shm)) {
    const abi = path.join(dir, `node-abi${process.versions.modules}`);
    fs.mkdirSync(abi);
    fs.copyFileSync(shm, path.join(abi, 'accelnl_shm.node'));
  } else {
    console.warn('accelnl: genl/native/shm is not built: the tarball maps BOs only where it builds on install');
  }
  return dir;
}

module.exports = { build };
if (require.main === module) {
  build().then((f) => {
    console.log(`accelnl: bundled ${f}`);
    if (process.argv.includes('--types')) console.log(`accelnl: declarations in ${types()}`);
    if (process.argv.includes('--prebuilds')) console.log(`accelnl: native prebuilds in ${prebuilds()}`);
  }).catch((e) => {
    console.error(`accelnl: build failed: ${e.message}`);
    process.exitCode = 1;
  });
}
