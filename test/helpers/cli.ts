// Running the real `accel` binary (bin/accel, the bundled CLI) from tests, without blocking the
// event loop (the daemon under test usually runs in the same process).
import { type ChildProcess, spawn } from 'child_process';
import * as path from 'path';

export const ACCEL = path.resolve(__dirname, '../../bin/accel');

export interface Run { code: number | null; stdout: string; stderr: string }

export function runAccel(args: string[], o: { port?: number; env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ACCEL, ...args], {
      env: { ...process.env, ...(o.port ? { ACCEL_NL_PORT: String(o.port) } : {}), ...o.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 15000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    child.stdin.end(o.input ?? '');
  });
}

/** A long-running accel process (monitor, exporter): its output so far, a wait for a line, and a stop. */
export interface Running {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  waitFor(re: RegExp, where?: 'stdout' | 'stderr', timeoutMs?: number): Promise<string>;
  /** SIGINT, then the exit status and all output. */
  stop(signal?: NodeJS.Signals): Promise<Run>;
}

/**
 * How startAccel runs the CLI. By default bin/accel with this process's environment; a test as root
 * may run a bundle (test/helpers/nobody.ts) as another user: `script` and `cwd` the bundle's,
 * `uid`/`gid` set by spawn itself (libuv drops supplementary groups too, and signals reach the CLI,
 * which runuser would not pass on), `inheritEnv: false` so that only `env` (and the port) is passed.
 */
export interface StartOptions {
  port?: number;
  env?: Record<string, string>;
  script?: string;
  cwd?: string;
  uid?: number;
  gid?: number;
  inheritEnv?: boolean;
  /** waitFor's default timeout (10 s). */
  waitMs?: number;
}

export function startAccel(args: string[], o: StartOptions = {}): Running {
  const proc = spawn(process.execPath, [o.script ?? ACCEL, ...args], {
    env: { ...(o.inheritEnv === false ? {} : process.env), ...(o.port ? { ACCEL_NL_PORT: String(o.port) } : {}), ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'], cwd: o.cwd, uid: o.uid, gid: o.gid,
  });
  return watch(proc, o.waitMs);
}

/** A running child with piped stdout and stderr, as a Running. */
function watch(proc: ChildProcess, waitMs = 10000): Running {
  let out = '', err = '';
  let exit: number | null | undefined;
  const waiters = new Set<() => void>();
  const poke = (): void => { for (const w of waiters) w(); };
  proc.stdout!.on('data', (d) => { out += d; poke(); });
  proc.stderr!.on('data', (d) => { err += d; poke(); });
  const closed = new Promise<void>((r) => proc.on('close', (code) => { exit = code; poke(); r(); }));
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    waitFor(re, where = 'stdout', timeoutMs = waitMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = re.exec(where === 'stdout' ? out : err);
          if (m) { done(); resolve(m[0]); } else if (exit !== undefined) { done(); reject(new Error(`accel exited (${exit}) before ${re}: ${err}`)); }
        };
        const timer = setTimeout(() => { done(); reject(new Error(`timed out waiting for ${re}; stdout: ${out}\nstderr: ${err}`)); }, timeoutMs);
        const done = (): void => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
    async stop(signal = 'SIGINT') {
      if (exit === undefined) proc.kill(signal);
      await closed;
      return { code: exit ?? null, stdout: out, stderr: err };
    },
  };
}
