// accel: the command line. `accel [OPTIONS] OBJECT { COMMAND | help }`, iproute2 style.
import { resolvePort } from '../device/port';
import { Args, UsageError, keyword } from './args';
import { type Ctx, type Obj, createCtx } from './context';
import { capsObject } from './caps';
import { boObject, jobObject } from './compute';
import { devObject } from './dev';
import { familyObject } from './family';
import { healthObject } from './health';
import { defaultOptions, type Options } from './output';
import { rasObject } from './ras';
import { serverObject } from './server';
import { readBatch } from './batch';
import { version } from './version';
import { wrapObject } from './wrap';
import { useStream, writeOut } from './stdout';
import { bashCompletion } from './completion';
import { DAEMON_USAGE } from './daemon-usage';


// Long-running objects load their code (prom-client, the emulator) only when used. require(), not
// import(): importing a CommonJS bundle through the ESM loader first lexes all of it for exports.
declare const require: NodeJS.Require;
const lazy = (name: string, usage: string, load: () => Promise<{ run: Obj['run'] }>): Obj => ({
  name, usage, commands: [], run: async (ctx, a) => { useStream(); return (await load()).run!(ctx, a); },
});

const OBJECTS: Obj[] = [
  devObject, rasObject, healthObject, capsObject, jobObject, boObject, familyObject, serverObject,
  lazy('monitor', 'Usage: accel [ -j [ -p ] ] [ -t ] monitor [ all | OBJECT-LIST ] [ --pcap FILE ] [ --timeout MSEC ]\nwhere  OBJECT-LIST := { dev | ras | health | job } ...\n',
    async () => ({ run: (require('./monitor.js') as typeof import('./monitor')).runMonitor })),
  lazy('exporter', 'Usage: accel exporter [ --listen ADDR ] [ --interval MSEC ]\n',
    async () => ({ run: (require('./exporter.js') as typeof import('./exporter')).runExporter })),
  lazy('daemon', DAEMON_USAGE, async () => ({ run: (require('./daemon-cmd.js') as typeof import('./daemon-cmd')).runDaemonCmd })),
  wrapObject,
];
const OPTIONS = ['Version', 'version', 'json', 'pretty', 'stats', 'timestamp', 'batch', 'force', 'port', 'help'] as const;

// `accel completion bash`: completion generated from this table (it completes itself too).
OBJECTS.push({
  name: 'completion', usage: 'Usage: accel completion bash\n', default: 'bash',
  commands: [['bash', async (ctx, a) => { a.end(); ctx.out(bashCompletion(OBJECTS, OPTIONS.filter((o) => o !== 'Version'))); }]],
});
const NAMES = [...OBJECTS.map((o) => o.name), 'help'];

/** `accel help`: the objects from the table above, so that a new object is listed where it is served. */
const USAGE = `Usage: accel [ OPTIONS ] OBJECT { COMMAND | help }
       accel [ -force ] -batch FILENAME
where  OBJECT := { ${OBJECTS.map((o) => o.name).join(' | ')} }
       OPTIONS := { -V[ersion] | -j[son] | -p[retty] | -s[tats] | -t[imestamp] | --port PORT }
`;

interface Parsed { o: Options; batch?: string }

function parseOptions(a: Args): Parsed {
  const o = defaultOptions();
  let batch: string | undefined;
  while (a.more && a.peek()!.startsWith('-') && a.peek() !== '-') {
    const w = a.next()!;
    const opt = keyword(w.replace(/^--?/, ''), OPTIONS);
    switch (opt) {
      case 'Version': case 'version': throw new Done(`accel utility, accelnl ${version}\n`);
      case 'json': o.json = true; break;
      case 'pretty': o.pretty = true; o.json = true; break;
      case 'stats': o.stats = true; break;
      case 'timestamp': o.timestamp = true; break;
      case 'force': o.force = true; break;
      case 'batch': batch = a.value(w, 'a file name'); break;
      case 'port': {
        const v = a.value(w, 'a port');
        // Checked here, so that a bad or empty value is a usage error and never means the default port.
        try { if (v.trim() === '') throw new Error('empty'); resolvePort(v); } catch {
          throw new UsageError(`Invalid port "${v}": expected a decimal or 0x-hex number from 1 to 0xffffffff.`);
        }
        process.env.ACCEL_NL_PORT = v;
        break;
      }
      case 'help': throw new Done(USAGE);
      default: throw new UsageError(`Option "${w}" is unknown, try "accel -help".`);
    }
  }
  return { o, batch };
}

/** Help printed on request: stdout, exit 0. */
class Done extends Error {}

/** One command line: OBJECT { COMMAND | help } ... */
export async function runLine(ctx: Ctx, a: Args): Promise<void> {
  const w = a.next();
  if (w === undefined) throw new UsageError(USAGE);
  const name = keyword(w, NAMES);
  if (name === 'help') throw new Done(USAGE);
  const obj = OBJECTS.find((x) => x.name === name);
  if (!obj) throw new UsageError(`Object "${w}" is unknown, try "accel help".`);
  if (obj.run) {
    if (a.peek() === 'help' && obj.usage) throw new Done(obj.usage);
    return obj.run(ctx, a);
  }
  const cw = a.more ? a.next()! : obj.default!;
  if (cw === 'help') throw new Done(obj.usage);
  const cmd = keyword(cw, obj.commands.map(([n]) => n));
  const f = obj.commands.find(([n]) => n === cmd)?.[1];
  if (!f) throw new UsageError(`Command "${cw}" is unknown, try "accel ${obj.name} help".`);
  if (a.peek() === 'help') throw new Done(obj.usage);
  return f(ctx, a);
}

/** Exit status for an error, after printing it the way iproute2 would. */
function report(e: unknown): number {
  if (e instanceof Done) { writeOut(e.message); return 0; }
  const msg = (e as Error)?.message ?? String(e);
  const status = (e as { exitStatus?: number })?.exitStatus;
  if (status === undefined) { process.stderr.write(`accel: ${msg}\n`); return 1; }
  if (msg) process.stderr.write(msg.replace(/\n?$/, '\n'));
  return status;
}

export async function main(argv: string[]): Promise<number> {
  const a = new Args(argv);
  let ctx: Ctx | undefined;
  try {
    const p = parseOptions(a);
    ctx = createCtx(p.o, writeOut);
    if (p.batch !== undefined) {
      if (a.more) throw new UsageError('-batch takes no other arguments.');
      return await runBatch(ctx, p.batch);
    }
    await runLine(ctx, a);
    return 0;
  } catch (e) {
    return report(e);
  } finally {
    ctx?.close();
  }
}

/** iproute2 -batch: one command a line; stop at the first failure unless -force. */
async function runBatch(ctx: Ctx, file: string): Promise<number> {
  const lines = readBatch(file);
  let status = 0;
  for (const { words, line } of lines) {
    try {
      await runLine(ctx, new Args(words));
    } catch (e) {
      const s = report(e);
      if (s === 0) continue;
      process.stderr.write(`Command failed ${file}:${line}\n`);
      status = 1;
      if (!ctx.o.force) break;
    }
  }
  return status;
}

// A reader that went away (`accel ras log | head`) ends the command quietly, as for iproute2:
// bin/stdout.ts (which writes without creating process.stdout, for start-up time).

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: Error) => {
  process.stderr.write(`accel: ${e.message}\n`);
  process.exitCode = 1;
});
