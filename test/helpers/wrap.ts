// `accel wrap` in tests: running wrapped stock tools from a directory outside the repo, as root
// (the real bin/accel launcher) and as nobody (a world-readable copy: the CLI bundle, the addon,
// the shim, our specs and the kernel's ynl, since the checkout may be root-only).
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SHIM_FILE, shimPath } from '../../bin/wrap';
import { type NobodyBundle, bundleForNobody, nobodyUnavailable } from './nobody';

export const REPO = path.resolve(__dirname, '../..');
export const ACCEL = path.join(REPO, 'bin/accel');
export const PY = '/usr/bin/python3';
export const asRoot = process.getuid?.() === 0;

/** The kernel's ynl peer: ../shared/peers/ynl beside the clone (CI), or this machine's copy. */
export function ynlRoot(): string | undefined {
  return [path.resolve(REPO, '../shared/peers/ynl'), '/work/shared/peers/ynl']
    .find((d) => fs.existsSync(path.join(d, 'tools/net/ynl/pyynl/cli.py')));
}

/** Why a wrapped run of `what` cannot be tested here, or undefined. Printed, never silent. */
export function missing(what: { bins?: string[]; python?: string[]; ynl?: boolean; nobody?: boolean }): string | undefined {
  if (!fs.existsSync(shimPath())) return `the preload shim ${shimPath()} is not built (node shim/build.js)`;
  for (const b of what.bins ?? []) if (!fs.existsSync(b)) return `${b} is not installed (Debian package in .ci/packages.txt)`;
  if (what.python?.length) {
    if (!fs.existsSync(PY)) return `${PY} is not installed`;
    const r = spawnSync(PY, ['-c', `import ${what.python.join(', ')}`], { encoding: 'utf8' });
    if (r.status !== 0) return `${PY} lacks ${what.python.join(', ')} (python3-yaml, python3-jsonschema in .ci/packages.txt)`;
  }
  if (what.ynl && !ynlRoot()) return 'the kernel ynl peer (../shared/peers/ynl) is not beside the clone';
  if (what.nobody) return nobodyUnavailable();
  return undefined;
}

/** `it`, or `it.skip` with the reason printed. */
export function itIf(why: string | undefined): jest.It {
  if (why) console.warn(`SKIPPED: ${why}`);
  return why ? it.skip : it;
}

export interface Run { code: number | null; stdout: string; stderr: string }

/** A world-readable temp dir: the cwd of every run, outside the repo. */
export function publicDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  return dir;
}

/** Make a tree readable (and traversable) by everyone. */
export function publish(p: string): void {
  const st = fs.statSync(p);
  fs.chmodSync(p, st.isDirectory() || (st.mode & 0o100) ? 0o755 : 0o644);
  if (st.isDirectory()) for (const f of fs.readdirSync(p)) publish(path.join(p, f));
}

/** Spawn with a timeout, collecting output. */
export function run(cmd: string, args: string[], o: { cwd: string; env?: Record<string, string>; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: o.cwd, env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 20000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/**
 * What wrapped runs need, in one world-readable dir: copies of the specs (ours, and the kernel's
 * ynl tree when present), and for nobody a bundle of the CLI with the addon and the shim.
 */
export interface WrapEnv {
  dir: string;
  /** Our specs: <dir>/specs/accel.yaml, drm-ras.yaml, ... */
  specs: string;
  /** The copied ynl tree (tools/net/ynl/pyynl/cli.py, Documentation/netlink), if present. */
  ynl?: string;
  /** `accel [--port P] ARGS...` as root through bin/accel, or as nobody through the bundle; cwd is dir. */
  accel(args: string[], o: { port: number; nobody?: boolean; timeoutMs?: number }): Promise<Run>;
  dispose(): void;
}

export function wrapEnv(o: { nobody?: boolean } = {}): WrapEnv {
  const dir = publicDir('accelnl-wrap-');
  const specs = path.join(dir, 'specs');
  fs.cpSync(path.join(REPO, 'docs/netlink/specs'), specs, { recursive: true });
  const src = ynlRoot();
  let ynl: string | undefined;
  if (src) {
    ynl = path.join(dir, 'ynl');
    fs.cpSync(path.join(src, 'tools'), path.join(ynl, 'tools'), { recursive: true });
    fs.cpSync(path.join(src, 'Documentation'), path.join(ynl, 'Documentation'), { recursive: true });
  }
  let bundle: NobodyBundle | undefined;
  if (o.nobody && asRoot) {
    bundle = bundleForNobody('bin/main.ts');
    fs.copyFileSync(shimPath(), path.join(bundle.dir, SHIM_FILE));
    publish(bundle.dir);
  }
  publish(dir);
  return {
    dir, specs, ynl,
    async accel(args, ro) {
      if (!ro.nobody) return run(process.execPath, [ACCEL, '--port', String(ro.port), ...args], { cwd: dir, timeoutMs: ro.timeoutMs });
      if (!bundle) throw new Error('wrapEnv: made without { nobody: true }, or not root');
      const r = await bundle.run(['--port', String(ro.port), ...args], { ACCELNL_SHIM: path.join(bundle.dir, SHIM_FILE) }, { timeoutMs: ro.timeoutMs ?? 20000 });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    dispose() {
      bundle?.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
