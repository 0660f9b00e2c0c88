// A typed client's failure to reach the daemon at all, said as such: the genl client's own error
// names only a port, and a library user should learn that the daemon is not running.
import { ECONNREFUSED, ETIMEDOUT } from '../attrs/errno';
import { NetlinkError, localError } from '../genl/client';

/** Nothing bound at `port`, or no answer from it, as a NetlinkError that says so; any other error as it is. */
export function unreachable(e: unknown, port: number): unknown {
  if (!(e instanceof NetlinkError) || !e.local || (e.errno !== ECONNREFUSED && e.errno !== ETIMEDOUT)) return e;
  const why = e.errno === ECONNREFUSED ? 'nothing is bound there' : 'no answer';
  return localError(e.errno, `cannot reach the accel daemon at netlink port 0x${port.toString(16)} (NETLINK_USERSOCK): ${why}; `
    + 'is "accel daemon" running? (serverPort, or ACCEL_NL_PORT, chooses the port)');
}
