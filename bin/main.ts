// accel: the command line. `accel [OPTIONS] OBJECT { COMMAND | help }`, iproute2 style.
import { runDaemon } from './daemon';
import { version } from './version';

const USAGE = `Usage: accel [ OPTIONS ] OBJECT { COMMAND | help }
       accel daemon [ --port PORT ] [ --config FILE ] [ --seed N ] [ --state-dir DIR ] [ --simulate ]
where  OBJECT := { daemon }
       OPTIONS := { -V[ersion] | --port PORT }
`;

export async function main(argv: string[]): Promise<number> {
  const args = [...argv];
  while (args.length && args[0].startsWith('-')) {
    const a = args.shift()!;
    if (a === '-V' || a === '-Version' || a === '--version') {
      process.stdout.write(`accel utility, accelnl ${version}\n`);
      return 0;
    }
    if (a === '-h' || a === '-help' || a === '--help') { process.stdout.write(USAGE); return 0; }
    if (a === '--port' || a === '-port') {
      const v = args.shift();
      if (v === undefined) return usageError('option "--port" needs a value');
      process.env.ACCEL_NL_PORT = v;
      continue;
    }
    return usageError(`Option "${a}" is unknown, try "accel -help".`);
  }
  const obj = args.shift();
  if (!obj || obj === 'help') { process.stdout.write(USAGE); return obj ? 0 : 2; }
  if ('daemon'.startsWith(obj)) return runDaemon(args);
  return usageError(`Object "${obj}" is unknown, try "accel help".`);
}

function usageError(msg: string): number {
  process.stderr.write(`${msg}\n`);
  return 2;
}

main(process.argv.slice(2)).then((code) => { if (code !== undefined) process.exitCode = code; }, (e: Error) => {
  process.stderr.write(`accel: ${e.message}\n`);
  process.exitCode = 1;
});
