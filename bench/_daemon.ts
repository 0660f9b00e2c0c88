// Start `accel daemon` as a child process for benchmarks and wait for its ready line.
import { type ChildProcess, spawn } from 'child_process';
import * as path from 'path';

export interface Child { proc: ChildProcess; port: number; ready: string; stop(): Promise<void> }

export async function startChild(port: number, args: string[] = [], env: Record<string, string> = {}): Promise<Child> {
  const root = process.env.ACCELNL_ROOT ?? process.cwd();
  // ACCELNL_BENCH_PROF=<dir>: write the daemon's CPU profile there (node --cpu-prof), for docs/performance.md.
  const prof = process.env.ACCELNL_BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.ACCELNL_BENCH_PROF}`] : [];
  const proc = spawn(process.execPath, [...prof, path.join(root, 'bin/accel'), 'daemon', '--port', String(port), ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d) => { err += d; });
  const ready = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`daemon not ready after 20 s: ${err}`)), 20000);
    proc.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('ready'));
      if (line) { clearTimeout(t); resolve(line); }
    });
    proc.on('exit', (code) => { clearTimeout(t); reject(new Error(`daemon exited ${code}: ${err}`)); });
  });
  return {
    proc, port, ready,
    stop: () => new Promise<void>((resolve) => { proc.once('exit', () => resolve()); proc.kill('SIGTERM'); }),
  };
}
