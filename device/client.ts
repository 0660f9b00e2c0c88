// A TypeScript client for the daemon: typed calls for the accel family, and event subscriptions
// that never lose a RAS event (device/subscribe.ts): kernel multicast when allowed (root), the
// subscribe op otherwise, gaps and overruns read back from the RAS log in order without
// duplicates, and the daemon followed across restarts.
import { type Client, type ClientOptions, type FamilyInfo, createClient } from '../genl';
import { nameError } from '../genl/ynl';
import { type AccelClient, decode } from './client-api';
import { type Accel, spec, writeAccel } from './gen/accel';
import { resolvePort } from './port';
import { unreachable } from './unreachable';
import { subscribe } from './subscribe';

export * from './client-api';

/** Connect and resolve the accel family (ACCEL_NL_PORT or 0x41434345 by default). */
export async function connectAccel(o: ClientOptions = {}): Promise<AccelClient> {
  let onOverrun: (() => void) | undefined;
  const genl = createClient({ rcvbuf: 4 << 20, ...o, serverPort: o.serverPort ?? resolvePort(), onOverrun: () => { onOverrun?.(); o.onOverrun?.(); } });
  let family: FamilyInfo;
  try {
    family = await genl.resolve('accel');
  } catch (e) {
    genl.close();
    throw unreachable(e, genl.serverPort);
  }
  const put = (a: Accel) => (w: Parameters<NonNullable<Parameters<Client['request']>[2]>['fill'] & object>[0]) => writeAccel(w, a);
  const ac: AccelClient = {
    genl, family,
    // A daemon's error names the attribute it points at (extack.attrName, missName and the message).
    async do(cmd, a = {}) {
      try {
        return (await genl.request(ac.family.id, cmd, { fill: put(a) })).map(decode);
      } catch (e) { throw nameError(spec, cmd, e); }
    },
    async dump(cmd, a = {}) {
      const out: Accel[] = [];
      try {
        for await (const m of genl.dump(ac.family.id, cmd, { fill: put(a) })) out.push(decode(m));
      } catch (e) { throw nameError(spec, cmd, e); }
      return out;
    },
    subscribe: (groups, onEvent, so = {}) => subscribe(ac, groups, onEvent, so, (f) => { onOverrun = f; }),
    close() { genl.close(); },
  };
  return ac;
}
