// `job wait last`: the last job this user submitted to one daemon, across CLI invocations. Job ids
// are daemon-wide and records carry no owner, so the CLI remembers what it submitted: one small
// file per daemon port in a per-user runtime directory ($XDG_RUNTIME_DIR/accel, else
// $TMPDIR/accel-UID, mode 0700 and owned by the user, or not used at all).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const uid = (): number => process.getuid?.() ?? 0;
const dirPath = (): string => (process.env.XDG_RUNTIME_DIR ? path.join(process.env.XDG_RUNTIME_DIR, 'accel') : path.join(os.tmpdir(), `accel-${uid()}`));

/** The per-user directory, made if needed; undefined when it is not safely ours. */
function stateDir(make: boolean): string | undefined {
  const dir = dirPath();
  try {
    if (make) { try { fs.mkdirSync(dir, { mode: 0o700 }); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; } }
    const st = fs.lstatSync(dir);
    // In a shared /tmp, someone else may have made it first: only a real directory of ours will do.
    if (!st.isDirectory() || st.uid !== uid() || (st.mode & 0o022)) return undefined;
    return dir;
  } catch {
    return undefined;
  }
}

/** Where the last job id for the daemon at `port` is kept. */
export const lastJobFile = (port: number): string => path.join(dirPath(), `last-job-0x${port.toString(16)}`);

/** Remember `id` as the last job submitted to the daemon at `port` (best effort). */
export function rememberJob(port: number, id: number): void {
  const dir = stateDir(true);
  if (!dir) return;
  const file = lastJobFile(port);
  try {
    fs.writeFileSync(`${file}.${process.pid}`, `${id}\n`, { mode: 0o600 });
    fs.renameSync(`${file}.${process.pid}`, file); // atomic: a concurrent reader sees old or new
  } catch { /* not remembered: job wait last will say so */ }
}

/** The last job id remembered for `port`, if any. */
export function lastJob(port: number): number | undefined {
  const dir = stateDir(false);
  if (!dir) return undefined;
  try {
    const t = fs.readFileSync(lastJobFile(port), 'utf8').trim();
    return /^\d+$/.test(t) ? Number(t) : undefined;
  } catch {
    return undefined;
  }
}
