// `accel daemon`: the genl server in the foreground, with one ready line once it listens.
import { createGenlServer, resolvePort, serve } from '../genl';

export interface DaemonArgs {
  port: number;
}

export function parseDaemonArgs(args: string[]): DaemonArgs | string {
  let port: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--port' || a === 'port') {
      const v = args[++i];
      if (v === undefined) return `"${a}" needs a value`;
      try { port = resolvePort(v); } catch (e) { return (e as Error).message; }
    } else if (a === 'help' || a === '--help') {
      return 'help';
    } else {
      return `unknown daemon argument "${a}"`;
    }
  }
  try { return { port: port ?? resolvePort() }; } catch (e) { return (e as Error).message; }
}

export async function runDaemon(argv: string[]): Promise<number> {
  const a = parseDaemonArgs(argv);
  if (a === 'help') {
    process.stdout.write('Usage: accel daemon [ --port PORT ]\n');
    return 0;
  }
  if (typeof a === 'string') {
    process.stderr.write(`accel daemon: ${a}\n`);
    return 2;
  }
  const hex = `0x${a.port.toString(16)}`;
  const srv = createGenlServer();
  let served;
  try {
    served = serve(srv, { port: a.port });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'EADDRINUSE') {
      process.stderr.write(`accel daemon: netlink port ${hex} is already bound (is another daemon running?)\n`);
      return 1;
    }
    throw e;
  }
  const families = [...srv.registry.byId.values()].map((f) => `${f.name} 0x${f.id!.toString(16)}`).join(', ');
  const creds = served.socket.credentials ? '' : ' (no sender credentials: admin ops refused)';
  process.stdout.write(`accel daemon ready: NETLINK_USERSOCK port ${hex} (${a.port}), families: ${families}${creds}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => { served!.close(); resolve(); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
