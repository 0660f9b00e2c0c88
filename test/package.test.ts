// The package as a user gets it: `npm pack`, then `npm i ./accelnl-*.tgz typescript @types/node` in
// an empty directory outside the repo, then the README's review of install scripts (accelnl
// approved, its dependencies' denied) and a clean `npm ci` under it. What the tarball holds (built JavaScript, declarations,
// native sources and prebuilds; no tests, benches, fixtures or TypeScript sources), and that the
// installed package works from there, as root and as nobody: `npx accel -V`, `accel daemon`,
// `dev show`, an admin op (the daemon reads sender credentials, so the addon loaded), a GEMM job
// whose uploads pass 64 KiB (the CLI is on the native backend), require('accelnl'), the README's
// TypeScript snippet and the shipped TypeScript example type-checked and run, `accel wrap`, and the prebuilds when the install step
// built nothing.
import { type ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { nobodyUnavailable } from './helpers/nobody';
import { REPO, type Run, itIf, publicDir, publish, run } from './helpers/wrap';

const PORT = 0x415b0000 + (process.pid & 0xfff);
const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
// The dependencies whose install scripts the README tells users to deny: accelnl needs none of them
// (netlink's picks a prebuilt addon accelnl does not load, cbor-extract's a prebuilt decoder cbor-x
// can do without, protobufjs's checks versions).
const DENIED = ['netlink', 'cbor-extract', 'protobufjs'];
const NPM_ENV = { npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };

let tmp: string;      // the tarball
let app: string;      // the user's project

/** A shipped docs/examples file in a module directory of its own in the app, type-checked as its header says: the directory. */
async function shippedExample(file: string, sub: string): Promise<string> {
  const dir = path.join(app, sub);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
  fs.copyFileSync(path.join(app, 'node_modules/accelnl/docs/examples', file), path.join(dir, file));
  const tsc = await run(process.execPath, [path.join(app, 'node_modules/typescript/bin/tsc'), '--module', 'nodenext', '--target', 'es2022', '--strict', file], { cwd: dir });
  expect(tsc).toMatchObject({ code: 0, stdout: '' });
  return dir;
}
let tarball: string;
let files: string[];
let install: Run;
let review: { approve: Run; deny: Run; pending: Run; ci: Run };
let daemon: ChildProcess | undefined;

// The README's snippet, as written there (test/package.test.ts keeps the two in step).
const README = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
const snippet = /```ts\n(import \{[^\n]*\} from 'accelnl';\n[\s\S]*?)```/.exec(README)?.[1];
const familySnippet = /```ts\n(import \{ createRequire \}[\s\S]*?)```/.exec(README)?.[1];
const FAMILY_PORT = 0x415c0000 + (process.pid & 0xfff);

beforeAll(async () => {
  tmp = publicDir('accelnl-pack-');
  app = publicDir('accelnl-app-');
  const pack = spawnSync('npm', ['pack', '--pack-destination', tmp], { cwd: REPO, encoding: 'utf8', env: { ...process.env, ...NPM_ENV }, timeout: 180000 });
  if (pack.status !== 0) throw new Error(`npm pack failed: ${pack.stderr}`);
  tarball = path.join(tmp, pack.stdout.trim().split('\n').pop()!);
  files = spawnSync('tar', ['tzf', tarball], { encoding: 'utf8' }).stdout.trim().split('\n').map((f) => f.replace(/^package\//, ''));
  install = await run('npm', ['i', '--prefer-offline', tarball, 'typescript', '@types/node'], { cwd: app, env: NPM_ENV, timeoutMs: 240000 });
  // The README's review of install scripts, then a clean install under it: what npm 12 will do by
  // default (no unreviewed script runs). Every later test runs on this second install.
  const approve = await run('npm', ['approve-scripts', 'accelnl'], { cwd: app, env: NPM_ENV });
  const deny = await run('npm', ['deny-scripts', ...DENIED], { cwd: app, env: NPM_ENV });
  const pending = await run('npm', ['approve-scripts', '--allow-scripts-pending'], { cwd: app, env: NPM_ENV });
  fs.rmSync(path.join(app, 'node_modules'), { recursive: true, force: true });
  const ci = await run('npm', ['ci', '--prefer-offline', '--foreground-scripts'], { cwd: app, env: NPM_ENV, timeoutMs: 240000 });
  review = { approve, deny, pending, ci };
  publish(app);
}, 300000);

afterAll(() => {
  if (daemon?.pid) try { process.kill(-daemon.pid, 'SIGINT'); } catch { /* gone */ }
  for (const d of [tmp, app]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

const npx = (args: string[], o: { nobody?: boolean; timeoutMs?: number } = {}): Promise<Run> => o.nobody
  ? run('runuser', ['-u', 'nobody', '--', process.execPath, path.join(app, 'node_modules/accelnl/bin/accel'), ...args], { cwd: app, timeoutMs: o.timeoutMs })
  : run('npx', ['--no-install', 'accel', ...args], { cwd: app, timeoutMs: o.timeoutMs });

describe('the tarball', () => {
  test('holds built JavaScript, declarations, the native sources and prebuilds, the docs and examples; no tests, benches, fixtures or .ts sources', () => {
    for (const f of ['dist/index.js', 'dist/accel.js', 'dist/daemon-cmd.js', 'dist/types/index.d.ts', 'bin/accel',
      'genl/native/nlsock.c', 'genl/native/build.js', 'genl/native/shm/shm.cc', 'genl/native/shm/binding.gyp', 'shim/accelnl_shim.c', 'shim/build.js', 'README.md',
      'docs/netlink/specs/accel.yaml', `prebuilds/${process.platform}-${process.arch}/accelnl_sock.node`,
      `prebuilds/${process.platform}-${process.arch}/accelnl_shim.so`,
      `prebuilds/${process.platform}-${process.arch}/node-abi${process.versions.modules}/accelnl_shm.node`]) expect(files).toContain(f);
    expect(files.filter((f) => /^(test|bench|compute|attrs|device|genl\/ynl)\//.test(f) || /\bfixtures?\b/.test(f))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.startsWith('docs/examples/'))).toEqual([]);
    // What the README links to: the format docs and schemas, the example subscribers, CI's package list.
    for (const f of ['docs/formats/ras.proto', 'docs/formats/key-val-32.md', 'docs/examples/accel_events.c', '.ci/packages.txt']) expect(files).toContain(f);
    expect(files).not.toContain('dist/inputs.json');  // an installed package never rebuilds
  });

  test('installs with its native pieces built from source and neither esbuild nor jest', () => {
    expect(install.code).toBe(0);
    expect(review.ci.code).toBe(0);
    const mod = path.join(app, 'node_modules');
    expect(fs.existsSync(path.join(mod, 'accelnl/genl/native/build/Release/accelnl_sock.node'))).toBe(true);
    expect(fs.existsSync(path.join(mod, 'accelnl/genl/native/shm/build/Release/accelnl_shm.node'))).toBe(true);
    expect(fs.existsSync(path.join(mod, 'accelnl/shim/build/accelnl_shim.so'))).toBe(true);
    for (const dev of ['esbuild', 'jest', 'fast-check']) expect(fs.existsSync(path.join(mod, dev))).toBe(false);
  });

  test("the README's review of install scripts: accelnl approved, its dependencies' scripts denied, nothing left pending", () => {
    expect(review.approve).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Approved .*accelnl-[\d.]+\.tgz/) });
    expect(review.deny.code).toBe(0);
    for (const d of DENIED) expect(review.deny.stdout).toContain(`Denied ${d}`);
    expect(review.pending).toMatchObject({ code: 0, stdout: 'No packages with unreviewed install scripts.\n' });
    const allow = JSON.parse(fs.readFileSync(path.join(app, 'package.json'), 'utf8')).allowScripts;
    expect(Object.entries(allow).filter(([, v]) => v === true).map(([k]) => k)).toEqual([expect.stringMatching(/accelnl/)]);
    // The clean install ran accelnl's install step and no other package's script.
    const ran = [...review.ci.stdout.matchAll(/^> (\S+) (\w+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(ran).toEqual([`accelnl@${pkg.version} install`]);
  });

  test('every relative link in the shipped Markdown points at a shipped file', () => {
    const broken: string[] = [];
    for (const md of files.filter((f) => f.endsWith('.md'))) {
      const text = fs.readFileSync(path.join(REPO, md), 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1].replace(/#.*$/, '');
        if (!target || /^[a-z]+:/.test(target)) continue;
        const f = path.posix.normalize(path.posix.join(path.posix.dirname(md), target)).replace(/\/$/, '');
        if (!files.includes(f) && !files.some((g) => g.startsWith(`${f}/`))) broken.push(`${md}: ${m[1]}`);
      }
    }
    expect(broken).toEqual([]);
  });
});

describe('the installed package, from a directory outside the repo', () => {
  test('npx accel -V prints the version from package.json', async () => {
    const r = await npx(['-V']);
    expect(r).toMatchObject({ code: 0, stdout: `accel utility, accelnl ${pkg.version}\n` });
  });

  let ready = '';
  beforeAll(async () => {
    // Its own process group: npx runs the daemon in a child, and the whole group is stopped at the end.
    // With its gRPC endpoint: @grpc/grpc-js is not in the daemon's bundle, it comes from the package's dependencies.
    daemon = spawn('npx', ['--no-install', 'accel', '--port', String(PORT), 'daemon', '--grpc', '127.0.0.1:0'], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`daemon not ready: ${ready}`)), 20000);
      daemon!.stdout!.on('data', (d) => { ready += d; if (/ready/.test(ready)) { clearTimeout(t); resolve(); } });
      daemon!.stderr!.on('data', (d) => { ready += d; });
    });
  }, 30000);

  test('npx accel daemon starts (with gRPC), and dev show, an admin op (root) and 256 KiB uploads work', async () => {
    expect(ready).toMatch(/^accel daemon ready: NETLINK_USERSOCK port 0x[0-9a-f]+, families nlctrl 0x10, accel.*; gRPC on 127\.0\.0\.1:\d+\n/);
    const show = await npx(['--port', String(PORT), 'dev', 'show']);
    expect(show).toMatchObject({ code: 0, stderr: '' });
    expect(show.stdout).toMatch(/^pci\/0000:03:00\.0:\n {2}name accel0 index 0/);
    // An admin op: refused to everyone if the daemon cannot read credentials (no addon).
    const inject = await npx(['--port', String(PORT), 'ras', 'inject', 'accel0', 'block', 'hbm', 'severity', 'correctable']);
    if (process.getuid?.() === 0) expect(inject).toMatchObject({ code: 0, stderr: '' });
    else expect(inject).toMatchObject({ code: 1, stderr: expect.stringMatching(/Operation not permitted/) });  // judged by uid
    await gemm(app, false);
  }, 60000);

  itIf(nobodyUnavailable())('as nobody: dev show and uploads work, admin ops are refused by credentials', async () => {
    const show = await npx(['--port', String(PORT), 'dev', 'show'], { nobody: true });
    expect(show).toMatchObject({ code: 0, stderr: '' });
    const inject = await npx(['--port', String(PORT), 'ras', 'inject', 'accel0', 'block', 'hbm', 'severity', 'correctable'], { nobody: true });
    expect(inject.code).toBe(1);
    expect(inject.stderr).toMatch(/Operation not permitted/);
    const work = publicDir('accelnl-nobody-job-');
    fs.chmodSync(work, 0o777);
    try { await gemm(work, true); } finally { fs.rmSync(work, { recursive: true, force: true }); }
  }, 60000);

  test("require('accelnl') from CommonJS: the client lists the devices", async () => {
    const code = `const a = require('accelnl');
      a.connectAccel({ serverPort: ${PORT} }).then(async (c) => {
        const devs = await c.dump(a.accel.CMD.DEV_GET);
        console.log(devs.map((d) => d.devName).join(' '), a.nativeStatus().file.includes('node_modules/accelnl/') );
        c.close();
      });`;
    const r = await run(process.execPath, ['-e', code], { cwd: app });
    expect(r).toMatchObject({ code: 0, stderr: '', stdout: 'accel0 accel1 true\n' });
  });

  test("the README's TypeScript snippet type-checks against the package's types and runs (ESM, top-level await)", async () => {
    expect(snippet).toBeDefined();
    const dir = path.join(app, 'ts');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
    fs.writeFileSync(path.join(dir, 'demo.ts'), snippet!);
    // A type error must fail: the same file with a wrong attribute name.
    fs.writeFileSync(path.join(dir, 'bad.ts'), `import { accel } from 'accelnl';\nconst d: accel.Accel = { devNmae: 'x' };\nconsole.log(d);\n`);
    const tsc = path.join(app, 'node_modules/typescript/bin/tsc');
    // The README's command line: tsc --module nodenext --target es2022 --strict FILE.
    const tscArgs = [tsc, '--module', 'nodenext', '--target', 'es2022', '--strict'];
    const bad = await run(process.execPath, [...tscArgs, '--noEmit', 'bad.ts'], { cwd: dir });
    expect(bad.code).not.toBe(0);
    expect(bad.stdout).toMatch(/devNmae/);
    const ok = await run(process.execPath, [...tscArgs, 'demo.ts'], { cwd: dir });
    expect(ok).toMatchObject({ code: 0, stdout: '' });
    const r = await run(process.execPath, ['demo.js'], { cwd: dir, env: { ACCEL_NL_PORT: String(PORT) } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/accel0/);
  });

  test("docs/daemon.md's mapped-BO example runs against the installed package (its shm addon built at install)", async () => {
    const doc = fs.readFileSync(path.join(REPO, 'docs/daemon.md'), 'utf8');
    const mapSnippet = /```ts\n(import \{[^\n]*mapBo[^\n]*\} from 'accelnl';\n[\s\S]*?)```/.exec(doc)?.[1];
    expect(mapSnippet).toBeDefined();
    const dir = path.join(app, 'ts-map');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
    fs.writeFileSync(path.join(dir, 'map.ts'), mapSnippet!);
    const tsc = path.join(app, 'node_modules/typescript/bin/tsc');
    const ok = await run(process.execPath, [tsc, '--module', 'nodenext', '--target', 'es2022', '--strict', '--types', 'node', 'map.ts'], { cwd: dir });
    expect(ok).toMatchObject({ code: 0, stdout: '' });
    const r = await run(process.execPath, ['map.js'], { cwd: dir, env: { ACCEL_NL_PORT: String(PORT) } });
    expect(r).toMatchObject({ code: 0, stderr: '', stdout: '1.5\n' });
  });

  itIf(process.getuid?.() === 0 ? undefined : 'injecting a RAS event takes root')("the shipped docs/examples/accel-events.ts type-checks as documented and prints an injected event", async () => {
    const dir = await shippedExample('accel-events.ts', 'ex');
    const ex = spawn(process.execPath, ['accel-events.js', '1'], { cwd: dir, env: { ...process.env, ACCEL_NL_PORT: String(PORT) } });
    let out = '', err = '';
    ex.stderr.on('data', (d) => { err += d; });
    const exited = new Promise<number | null>((resolve) => ex.on('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no subscription: ${out}${err}`)), 10000);
      ex.stdout.on('data', (d) => { out += d; if (/subscribed/.test(out)) { clearTimeout(t); resolve(); } });
    });
    const inject = await npx(['--port', String(PORT), 'ras', 'inject', 'accel1', 'block', 'sram', 'severity', 'uncorrectable']);
    expect(inject).toMatchObject({ code: 0, stderr: '' });
    expect(await exited).toBe(0);
    expect(err).toBe('');
    expect(out).toMatch(/^subscribed: family accel id \d+, group ras id \d+, multicast\nevent dev=1 seq=\d+ kind=error block=sram severity=uncorrectable-nonfatal name=sram address=0x0\n/);
  }, 30000);

  test('the shipped docs/examples/gemm-job.ts type-checks as documented and its job matches the engine the package exports', async () => {
    const dir = await shippedExample('gemm-job.ts', 'gemm');
    const r = await run(process.execPath, ['gemm-job.js', '64'], { cwd: dir, env: { ACCEL_NL_PORT: String(PORT) } });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^job \d+ on accel0: done, 64x64x64 f32 in [0-9.]+ ms, the same bits as the engine in this process\n$/);
    // The engine itself, from the package: a pool warms, counts its workers, and closes.
    const pool = await run(process.execPath, ['-e', "const { createPool } = require('accelnl'); const p = createPool({ threads: 2 }); " +
      "p.warm().then(async () => { console.log(p.workers); await p.close(); await p.warm().catch((e) => console.log(e.message)); })"], { cwd: app });
    expect(pool).toMatchObject({ code: 0, stderr: '', stdout: '2\ngemm pool is closed\n' });
  }, 60000);

  test("the README's family example: a drm-ras family from the shipped spec, served, answers the package's client", async () => {
    expect(familySnippet).toContain('0x41434346');
    const dir = path.join(app, 'ts');
    fs.writeFileSync(path.join(dir, 'fam.ts'), familySnippet!.replace('0x41434346', `0x${FAMILY_PORT.toString(16)}`));
    const tsc = path.join(app, 'node_modules/typescript/bin/tsc');
    const ok = await run(process.execPath, [tsc, '--module', 'nodenext', '--target', 'es2022', '--strict', 'fam.ts'], { cwd: dir });
    expect(ok).toMatchObject({ code: 0, stdout: '' });
    const server = spawn(process.execPath, ['fam.js'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    server.stderr!.on('data', (d) => { err += d; });
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const code = `require('accelnl').connectDrmRas({ serverPort: ${FAMILY_PORT} }).then(async (c) => {
        console.log(JSON.stringify(await c.listNodes()));
        console.log(JSON.stringify(await c.getErrorCounter(0, 1)));
        console.log(JSON.stringify(await c.errorCounters(0)));
        await c.getErrorCounter(0, 9).catch((e) => console.log(e.errno, e.extack.msg));
        await c.clearErrorCounter(0, 1).catch((e) => console.log(e.errno));
        c.close();
      });`;
      const r = await run(process.execPath, ['-e', code], { cwd: app });
      expect(err).toBe('');
      expect(r).toMatchObject({ code: 0, stderr: '' });
      const counter = { errorId: 1, errorName: 'demo', errorValue: 42 };
      expect(r.stdout.split('\n')).toEqual([
        JSON.stringify([{ nodeId: 0, deviceName: 'demo0', nodeName: 'errors', nodeType: 'error-counter' }]),
        JSON.stringify(counter), JSON.stringify([counter]),
        '2 no such counter',
        '95',  // clear-error-counter is left unimplemented: EOPNOTSUPP
        '']);
    } finally {
      server.kill('SIGKILL');
    }
  });

  itIf(fs.existsSync('/usr/sbin/genl') ? undefined : '/usr/sbin/genl (iproute2) is not installed')('npx accel wrap -- genl ctrl list', async () => {
    const r = await npx(['--port', String(PORT), 'wrap', '--', '/usr/sbin/genl', 'ctrl', 'get', 'name', 'drm-ras']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/Name: drm-ras/);
  });

  test('without the install step (scripts skipped): the addon and the shim load from the prebuilds', async () => {
    const copy = path.join(app, 'noscripts');
    fs.cpSync(path.join(app, 'node_modules'), path.join(copy, 'node_modules'), { recursive: true, verbatimSymlinks: true });
    const acc = path.join(copy, 'node_modules/accelnl');
    fs.rmSync(path.join(acc, 'genl/native/build'), { recursive: true });
    fs.rmSync(path.join(acc, 'genl/native/shm/build'), { recursive: true });
    fs.rmSync(path.join(acc, 'shim/build'), { recursive: true });
    const r = await run(process.execPath, ['-e', "const a = require('accelnl'); console.log(a.nativeStatus().file); console.log(a.shmStatus().file)"], { cwd: copy });
    const pre = path.join(acc, 'prebuilds', `${process.platform}-${process.arch}`);
    expect(r).toMatchObject({ code: 0, stdout: `${path.join(pre, 'accelnl_sock.node')}\n${path.join(pre, `node-abi${process.versions.modules}`, 'accelnl_shm.node')}\n` });
    const w = await run(process.execPath, [path.join(acc, 'bin/accel'), '--port', String(PORT), 'wrap', '--', 'sh', '-c', 'echo $LD_PRELOAD'], { cwd: copy });
    expect(w).toMatchObject({ code: 0, stdout: `${path.join(acc, 'prebuilds', `${process.platform}-${process.arch}`, 'accelnl_shim.so')}\n` });
  });
});

/** `accel job run` of a 256x256x256 GEMM: A and B are 256 KiB each (over the 64 KiB the npm backend could send). */
async function gemm(dir: string, nobody: boolean): Promise<void> {
  const n = 256;
  fs.writeFileSync(path.join(dir, 'a.f32'), Buffer.from(new Float32Array(n * n).fill(1).buffer));
  fs.writeFileSync(path.join(dir, 'b.f32'), Buffer.from(new Float32Array(n * n).fill(2).buffer));
  for (const f of ['a.f32', 'b.f32']) fs.chmodSync(path.join(dir, f), 0o644);
  const out = path.join(dir, 'c.f32');
  const args = ['--port', String(PORT), 'job', 'run', 'accel0', 'm', String(n), 'n', String(n), 'k', String(n),
    'a', path.join(dir, 'a.f32'), 'b', path.join(dir, 'b.f32'), 'out', out];
  const r = nobody
    ? await run('runuser', ['-u', 'nobody', '--', process.execPath, path.join(app, 'node_modules/accelnl/bin/accel'), ...args], { cwd: dir, timeoutMs: 60000 })
    : await npx(args, { timeoutMs: 60000 });
  expect(r).toMatchObject({ code: 0, stderr: '' });
  const bytes = fs.readFileSync(out);
  const c = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  expect(c.length).toBe(n * n);
  expect(c.every((x) => x === 2 * n)).toBe(true);
}
