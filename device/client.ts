// A TypeScript client for the daemon: typed calls for the accel family, and event subscriptions
// that never lose a RAS event (device/subscribe.ts): kernel multicast when allowed (root), the
// subscribe op otherwise, gaps and overruns read back from the RAS log in order without
// duplicates, and the daemon followed across restarts.
import { ETIMEDOUT } from '../attrs/errno';
import { type Client, type ClientOptions, type FamilyInfo, NetlinkError, createClient } from '../genl';
import { nameError } from '../genl/ynl';
import { type AccelClient, decode } from './client-api';
import { type Accel, CMD, spec, writeAccel } from './gen/accel';
import { resolvePort } from './port';
import { unreachable } from './unreachable';
import { subscribe } from './subscribe';

export * from './client-api';

/** The longest single job-wait request (see connectAccel's waitJob). */
const WAIT_SLICE_MS = 2000;

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
  // A daemon's error names the attribute it points at (extack.attrName, missName and the message);
  // a daemon gone since (nothing bound, no answer) is said as at connect (unreachable).
  const once = async (cmd: number, a: Accel): Promise<Accel[]> => {
    try {
      return (await genl.request(ac.family.id, cmd, { fill: put(a) })).map(decode);
    } catch (e) { throw nameError(spec, cmd, unreachable(e, genl.serverPort)); }
  };
  // job-wait answers when the job ends, which may be long after the client's silence timeout
  // (ClientOptions.timeoutMs): it is asked in slices shorter than that, so that a daemon that went
  // away is still noticed, until the job ends or the caller's timeout-ms runs out.
  const slice = Math.max(1, Math.min(WAIT_SLICE_MS, Math.floor((o.timeoutMs ?? 5000) / 2)));
  const waitJob = async (a: Accel): Promise<Accel[]> => {
    const end = a.timeoutMs ? Date.now() + a.timeoutMs : Infinity;
    for (;;) {
      try {
        return await once(CMD.JOB_WAIT, { ...a, timeoutMs: Math.max(1, Math.min(slice, end - Date.now())) });
      } catch (e) {
        const stillRunning = e instanceof NetlinkError && e.errno === ETIMEDOUT && !e.local;
        if (!stillRunning) throw e;
        if (Date.now() >= end) throw new NetlinkError(ETIMEDOUT, { msg: `job ${a.jobId} did not finish within ${a.timeoutMs} ms` });
      }
    }
  };
  const ac: AccelClient = {
    genl, family,
    do: (cmd, a = {}) => (cmd === CMD.JOB_WAIT ? waitJob(a) : once(cmd, a)),
    async dump(cmd, a = {}) {
      const out: Accel[] = [];
      try {
        for await (const m of genl.dump(ac.family.id, cmd, { fill: put(a) })) out.push(decode(m));
      } catch (e) { throw nameError(spec, cmd, unreachable(e, genl.serverPort)); }
      return out;
    },
    subscribe: (groups, onEvent, so = {}) => subscribe(ac, groups, onEvent, so, (f) => { onOverrun = f; }),
    close() { genl.close(); },
  };
  return ac;
}
