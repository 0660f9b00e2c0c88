// `accel daemon`: the emulated devices and their netlink families in the foreground, with one
// ready line once it listens. Stops cleanly on SIGINT/SIGTERM.
import * as fs from 'fs';
import { resolvePort } from '../device/port';
import { ConfigError, DEFAULT_CONFIG_YAML, GrpcError, startDaemon } from '../device';
import { MAX_BUSY_POLL_US, REBUILD, nativeStatus } from '../genl';
import { DAEMON_USAGE } from './daemon-usage';

export { DAEMON_USAGE };

export interface DaemonArgs { port: number; config?: string; seed?: number; stateDir?: string; simulate: boolean; grpc?: string; busyPollUs?: number }

export function parseDaemonArgs(args: string[]): DaemonArgs | string {
  const out: Partial<DaemonArgs> = { simulate: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const val = (): string | undefined => args[++i];
    switch (a.replace(/^--?/, '')) {
      case 'port': { const v = val(); if (v === undefined) return `"${a}" needs a value`;
        try { out.port = resolvePort(v); } catch (e) { return (e as Error).message; } break; }
      case 'config': { const v = val(); if (v === undefined) return `"${a}" needs a file`; out.config = v; break; }
      case 'seed': { const v = val(); if (v === undefined || !/^\d+$/.test(v)) return `"${a}" needs a number`; out.seed = Number(v); break; }
      case 'state-dir': { const v = val(); if (v === undefined) return `"${a}" needs a directory`; out.stateDir = v; break; }
      case 'simulate': out.simulate = true; break;
      case 'grpc': {
        const v = val();
        const port = v === undefined ? NaN : Number(/:(\d+)$/.exec(v)?.[1]);
        if (!(port <= 65535)) return `"${a}" needs host:port, the port from 0 to 65535`;
        out.grpc = v;
        break;
      }
      case 'busy-poll': {
        const v = val();
        if (v === undefined || !/^\d+$/.test(v) || Number(v) > MAX_BUSY_POLL_US) return `"${a}" needs a time in µs, from 0 to ${MAX_BUSY_POLL_US}`;
        out.busyPollUs = Number(v);
        break;
      }
      case 'help': case 'h': return 'help';
      default: return `unknown daemon argument "${a}"`;
    }
  }
  try { out.port ??= resolvePort(); } catch (e) { return (e as Error).message; }
  return out as DaemonArgs;
}

const DEMO_SIMULATION = `
simulate:
  hbm: { correctable: 0.5, uncorrectable-nonfatal: 0.01 }
  pcie: { correctable: 0.2 }
  sram: { deferred: 0.02 }
`;

export async function runDaemon(argv: string[]): Promise<number> {
  const a = parseDaemonArgs(argv);
  if (a === 'help') { process.stdout.write(DAEMON_USAGE); return 0; }
  if (typeof a === 'string') { process.stderr.write(`accel daemon: ${a}\n${DAEMON_USAGE}`); return 2; }
  let config: string;
  try {
    config = a.config ? fs.readFileSync(a.config, 'utf8') : DEFAULT_CONFIG_YAML;
  } catch (e) {
    process.stderr.write(`accel daemon: cannot read ${a.config}: ${(e as Error).message}\n`);
    return 1;
  }
  if (a.simulate && !/^simulate:/m.test(config)) config += DEMO_SIMULATION;
  const addon = nativeStatus();
  if (a.busyPollUs && !addon.busyPoll) {
    process.stderr.write(`accel daemon: --busy-poll needs the native socket addon, ${addon.loaded
      ? `and ${addon.file} predates busy polling: rebuild it (${REBUILD})` : `which did not load: ${addon.error}`}\n`);
    return 1;
  }
  const hex = `0x${a.port.toString(16)}`;
  let d;
  try {
    d = startDaemon({ port: a.port, config, seed: a.seed, stateDir: a.stateDir, grpc: a.grpc, busyPollUs: a.busyPollUs });
  } catch (e) {
    if (e instanceof GrpcError) {
      process.stderr.write(`accel daemon: ${e.message}\n`);
      return 1;
    }
    if (e instanceof ConfigError) {
      process.stderr.write(`accel daemon: ${a.config ?? 'configuration'}: ${e.message}\n`);
      return 1;
    }
    if ((e as { code?: string }).code === 'EADDRINUSE') {
      process.stderr.write(`accel daemon: netlink port ${hex} is already bound (is another daemon running?)\n`);
      return 1;
    }
    if (a.stateDir && typeof (e as { code?: unknown }).code === 'string') {
      // The state directory cannot be made or used (a file in the way, no permission...).
      process.stderr.write(`accel daemon: state directory ${a.stateDir}: ${(e as Error).message}\n`);
      return 1;
    }
    throw e;
  }
  for (const line of d.persistence?.report ?? []) process.stderr.write(`accel daemon: state: ${line}\n`);
  let grpcLine = '';
  if (d.grpc) {
    try { grpcLine = `; gRPC on ${await d.grpc.ready}`; } catch (e) {
      process.stderr.write(`accel daemon: cannot serve gRPC on ${a.grpc}: ${(e as Error).message}\n`);
      d.close();
      return 1;
    }
  }
  process.stdout.write(`${d.ready}${grpcLine}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => { d!.close(); resolve(); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
