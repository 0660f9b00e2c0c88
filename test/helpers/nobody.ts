// Runs a TypeScript entry as user `nobody` (uid 65534, no capabilities), for permission tests.
// The entry is bundled with esbuild into a fresh world-readable temp dir together with copies of
// the native addons and the npm `netlink` package, so the child reads nothing from the repo (the
// checkout may sit in a root-only directory). Needs root (runuser).
//
//   const r = await runAsNobody('test/fixtures/x.ts', ['arg'], { VAR: '1' });   // one-off
//   const b = bundleForNobody({ code: "import ...; ..." });  // keep for repeated runs
//   await b.run(['a']); await b.run(['b']); b.dispose();
import { spawn } from 'child_process';
import * as esbuild from 'esbuild';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ADDON_FILE, SHM_FILE, loadNative, loadShm } from '../../genl/native/load';

export interface NobodyResult { status: number | null; signal: string | null; stdout: string; stderr: string }

export interface NobodyRunOptions { timeoutMs?: number }

export interface NobodyBundle {
  /** The temp dir holding main.js, the addon and node_modules/. */
  readonly dir: string;
  run(args?: string[], env?: Record<string, string>, opts?: NobodyRunOptions): Promise<NobodyResult>;
  /** Removes the dir. */
  dispose(): void;
}

/** A file path, or inline TS whose relative imports resolve from resolveDir (default: repo root). */
export type NobodyEntry = string | { code: string; resolveDir?: string };

const REPO = path.resolve(__dirname, '../..');

export function bundleForNobody(entry: NobodyEntry): NobodyBundle {
  const addon = loadNative().file;
  if (!addon) throw new Error(`bundleForNobody: ${loadNative().error}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-nobody-'));
  try {
    esbuild.buildSync({
      ...(typeof entry === 'string'
        ? { entryPoints: [path.resolve(REPO, entry)] }
        : { stdin: { contents: entry.code, resolveDir: entry.resolveDir ?? REPO, loader: 'ts' as const } }),
      bundle: true, platform: 'node', target: 'node20', format: 'cjs',
      outfile: path.join(dir, 'main.js'), sourcemap: 'inline', logLevel: 'silent',
      external: ['netlink'],  // it finds its prebuilt addon relative to itself: copied below
    });
    fs.copyFileSync(addon, path.join(dir, ADDON_FILE));
    const shm = loadShm().file;  // mapped BOs: absent where it is not built
    if (shm) fs.copyFileSync(shm, path.join(dir, SHM_FILE));
    copyPackage('netlink', dir, (p) => !/(^|\/)(src|node_modules|binding\.gyp)$/.test(p));
    copyPackage('node-gyp-build', dir, () => true);
    publish(dir);
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    dir,
    run: (args = [], env = {}, opts = {}) => runNobody(dir, args, env, opts.timeoutMs ?? 20000),
    dispose: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

export async function runAsNobody(entry: NobodyEntry, args: string[] = [], env: Record<string, string> = {},
  opts: NobodyRunOptions = {}): Promise<NobodyResult> {
  const b = bundleForNobody(entry);
  try { return await b.run(args, env, opts); } finally { b.dispose(); }
}

function copyPackage(name: string, dir: string, keep: (rel: string) => boolean): void {
  const from = path.dirname(require.resolve(`${name}/package.json`, { paths: [REPO, path.join(REPO, 'node_modules/netlink')] }));
  fs.cpSync(from, path.join(dir, 'node_modules', name), {
    recursive: true, filter: (src) => keep(path.relative(from, src)),
  });
}

// mkdtemp makes 0700; the child must read and traverse everything.
function publish(p: string): void {
  const st = fs.statSync(p);
  fs.chmodSync(p, st.isDirectory() ? 0o755 : 0o644);
  if (st.isDirectory()) for (const f of fs.readdirSync(p)) publish(path.join(p, f));
}

/**
 * Why runs as nobody cannot happen here, or undefined. Tests that need them skip with this reason
 * (`const it_ = nobodyUnavailable() ? it.skip : it`); a run attempted anyway fails saying it.
 */
export function nobodyUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: runs as nobody need runuser, which only root may use (CI runs the tests as root)';
  if (!fs.existsSync('/usr/sbin/runuser') && !fs.existsSync('/sbin/runuser')) return 'runuser (util-linux) is not installed';
  return undefined;
}

function runNobody(dir: string, args: string[], env: Record<string, string>, timeoutMs: number): Promise<NobodyResult> {
  const why = nobodyUnavailable();
  if (why) return Promise.reject(new Error(`cannot run as nobody: ${why}`));
  return new Promise((resolve, reject) => {
    const child = spawn('runuser', ['-u', 'nobody', '--', process.execPath, '--enable-source-maps',
      path.join(dir, 'main.js'), ...args], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ACCELNL_NATIVE: path.join(dir, ADDON_FILE), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (status, signal) => { clearTimeout(timer); resolve({ status, signal, stdout, stderr }); });
  });
}
