// The accel daemon's netlink port: a fixed port id on NETLINK_USERSOCK that the daemon binds and
// every client sends to. The genl layer takes any port; this default is the device layer's.
import { parsePort } from '../genl/socket';

/** "ACCE" in ASCII. */
export const DEFAULT_PORT = 0x41434345;

/**
 * The daemon's port: `arg` if given, else $ACCEL_NL_PORT, else DEFAULT_PORT. Decimal or 0x-hex in
 * 1..0xffffffff; throws a clear Error otherwise.
 */
export function resolvePort(arg?: string | number): number {
  if (arg !== undefined && arg !== '') return parsePort(arg);
  const env = process.env.ACCEL_NL_PORT;
  return env === undefined || env === '' ? DEFAULT_PORT : parsePort(env, 'in ACCEL_NL_PORT');
}
