// `accel wrap [--port N] -- CMD [ARGS...]`: runs an unmodified, dynamically linked netlink program
// (iproute2 genl and devlink, the kernel's ynl CLI, libnl/libmnl programs) with its
// NETLINK_GENERIC sockets redirected to the daemon's NETLINK_USERSOCK port. The redirect is the
// preload shim (shim/accelnl_shim.c) given to the program through LD_PRELOAD; docs/wrap.md.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { resolvePort } from '../device/port';
import { type Args, Exit, OpError, UsageError } from './args';
import type { Ctx, Obj } from './context';

export const WRAP_USAGE = `Usage: accel wrap [ --port PORT ] -- CMD [ ARGS... ]
Runs CMD with its NETLINK_GENERIC sockets talking to the accel daemon (e.g. genl ctrl list,
devlink dev show, the kernel's ynl CLI). CMD must be dynamically linked.
`;

export const SHIM_FILE = 'accelnl_shim.so';

/**
 * Where the shim is: $ACCELNL_SHIM exactly, else shim/build/ of this package (built on install),
 * else the package's prebuilt copy (bin/ and dist/ both sit one level below the package root).
 */
export function shimPath(): string {
  const env = process.env.ACCELNL_SHIM;
  if (env) return path.resolve(env);
  const built = path.join(__dirname, '../shim/build', SHIM_FILE);
  const prebuilt = path.join(__dirname, '../prebuilds', `${process.platform}-${process.arch}`, SHIM_FILE);
  return !fs.existsSync(built) && fs.existsSync(prebuilt) ? prebuilt : built;
}

/** The file `cmd` runs: itself when it has a slash, else the first executable match on PATH. */
function which(cmd: string): string | undefined {
  if (cmd.includes('/')) return fs.existsSync(cmd) ? cmd : undefined;
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir || '.', cmd);
    try { fs.accessSync(p, fs.constants.X_OK); if (fs.statSync(p).isFile()) return p; } catch { /* next */ }
  }
  return undefined;
}

/** True for an ELF executable without a program interpreter: LD_PRELOAD cannot reach into it. */
export function isStaticElf(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const h = Buffer.alloc(64);
    if (fs.readSync(fd, h, 0, 64, 0) < 52 || h.readUInt32BE(0) !== 0x7f454c46) return false;  // not ELF: a script
    const is64 = h[4] === 2;
    const le = h[5] === 1;
    const u16 = (o: number) => (le ? h.readUInt16LE(o) : h.readUInt16BE(o));
    const phoff = is64 ? Number(le ? h.readBigUInt64LE(32) : h.readBigUInt64BE(32)) : (le ? h.readUInt32LE(28) : h.readUInt32BE(28));
    const phentsize = u16(is64 ? 54 : 42);
    const phnum = u16(is64 ? 56 : 44);
    const ph = Buffer.alloc(phentsize * phnum);
    fs.readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) {
      const type = le ? ph.readUInt32LE(i * phentsize) : ph.readUInt32BE(i * phentsize);
      if (type === 3) return false;  // PT_INTERP: the dynamic loader runs, and loads the shim
    }
    return true;
  } catch {
    return false;  // unreadable: let the exec say why
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

interface WrapLine { port: number; argv: string[] }

function parse(a: Args): WrapLine {
  let port = resolvePort();
  for (;;) {
    const w = a.next();
    if (w === undefined) throw new UsageError(`accel wrap: no command given.\n${WRAP_USAGE}`);
    if (w === '--') break;
    if (w === '--port' || w === '-port') {
      const v = a.value(w, 'a port');
      try { if (v.trim() === '') throw new Error('empty'); port = resolvePort(v); } catch {
        throw new UsageError(`Invalid port "${v}": expected a decimal or 0x-hex number from 1 to 0xffffffff.`);
      }
      continue;
    }
    if (w.startsWith('-')) throw new UsageError(`accel wrap: unknown option "${w}".\n${WRAP_USAGE}`);
    // No "--": the command starts here (its own options then need the "--").
    return { port, argv: [w, ...a.rest()] };
  }
  const argv = a.rest();
  if (!argv.length) throw new UsageError(`accel wrap: no command after "--".\n${WRAP_USAGE}`);
  return { port, argv };
}

export async function runWrap(_ctx: Ctx, a: Args): Promise<void> {
  const { port, argv } = parse(a);
  const shim = shimPath();
  if (!fs.existsSync(shim)) {
    throw new OpError(`accel wrap: the preload shim ${shim} is not built; build it with "node ${path.join(__dirname, '../shim/build.js')}" (needs a C compiler).`);
  }
  const file = which(argv[0]!);
  if (!file) throw new OpError(`accel wrap: ${argv[0]}: command not found.`);
  if (isStaticElf(file)) {
    throw new OpError(`accel wrap: ${file} is statically linked: the preload shim cannot redirect its sockets (see docs/wrap.md).`);
  }
  const preload = [shim, ...(process.env.LD_PRELOAD ? [process.env.LD_PRELOAD] : [])].join(' ');
  // Required here, not imported: child_process (and net under it) would load on every accel command.
  const { spawn } = require('child_process') as typeof import('child_process');
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: 'inherit',
    env: { ...process.env, LD_PRELOAD: preload, ACCEL_NL_PORT: String(port) },
  });
  // Ctrl-C reaches the whole process group; a signal sent to us alone is passed on.
  const forward = (s: NodeJS.Signals) => () => { child.kill(s); };
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  const code = await new Promise<number>((resolve) => {
    child.on('error', (e: NodeJS.ErrnoException) => {
      process.stderr.write(`accel wrap: ${argv[0]}: ${e.code === 'EACCES' ? 'permission denied' : e.message}\n`);
      resolve(e.code === 'ENOENT' ? 127 : 126);
    });
    child.on('exit', (c, sig) => resolve(c ?? 128 + (sig ? os.constants.signals[sig] : 0)));
  });
  for (const [s, h] of handlers) process.off(s, h);
  if (code !== 0) throw new Exit(code);
}

export const wrapObject: Obj = { name: 'wrap', usage: WRAP_USAGE, commands: [], run: runWrap };
