// A TypeScript client for the daemon's drm-ras family (the kernel's drm_ras interface): nodes,
// error counters, and error events, with the attribute types generated from drm-ras.yaml.
import { type Client, type ClientOptions, type FamilyInfo, type Message, createClient } from '../genl';
import { nameError, readAttrs, writeAttrs } from '../genl/ynl';
import { CMD, type ErrorCounterAttrs, type ErrorEventAttrs, FAMILY_NAME, GROUP, type NodeAttrs, spec } from './gen/drm-ras';
import { resolvePort } from './port';
import { unreachable } from './unreachable';

export interface DrmRasClient {
  genl: Client;
  family: FamilyInfo;
  /** Every registered node (admin-perm, as in the kernel: root only). */
  listNodes(): Promise<NodeAttrs[]>;
  /** One counter of a node. */
  getErrorCounter(nodeId: number, errorId: number): Promise<ErrorCounterAttrs>;
  /** Every counter of a node. */
  errorCounters(nodeId: number): Promise<ErrorCounterAttrs[]>;
  clearErrorCounter(nodeId: number, errorId: number): Promise<void>;
  /**
   * Error events from the error-report group. Joining a USERSOCK group needs CAP_NET_ADMIN: the
   * call throws EPERM for other users. Returns the function that stops them.
   */
  onErrorEvent(cb: (e: ErrorEventAttrs) => void): () => void;
  close(): void;
}

type Fill = (w: Parameters<NonNullable<NonNullable<Parameters<Client['request']>[2]>['fill']>>[0]) => void;
const put = (set: string, a: object): Fill => (w) => writeAttrs(w, spec, set, a);
const read = <T>(set: string) => (m: Message): T => readAttrs<T>(m.v, m.attrs, m.end, spec, set);

/** Connect and resolve the drm-ras family (ACCEL_NL_PORT or 0x41434345 by default). */
export async function connectDrmRas(o: ClientOptions = {}): Promise<DrmRasClient> {
  const genl = createClient({ ...o, serverPort: o.serverPort ?? resolvePort() });
  let family: FamilyInfo;
  try {
    family = await genl.resolve(FAMILY_NAME);
  } catch (e) {
    genl.close();
    throw unreachable(e, genl.serverPort);
  }
  // A daemon's error names the attribute it points at (extack.attrName, missName and the message);
  // a daemon gone since (nothing bound, no answer) is said as at connect (unreachable).
  const dump = async <T>(cmd: number, set: string, a: object = {}): Promise<T[]> => {
    const out: T[] = [];
    try {
      for await (const m of genl.dump(family.id, cmd, { fill: put(set, a) })) out.push(read<T>(set)(m));
    } catch (e) { throw nameError(spec, cmd, unreachable(e, genl.serverPort)); }
    return out;
  };
  const request = (cmd: number, set: string, a: object) =>
    genl.request(family.id, cmd, { fill: put(set, a) }).catch((e: unknown) => { throw nameError(spec, cmd, unreachable(e, genl.serverPort)); });
  return {
    genl, family,
    listNodes: () => dump<NodeAttrs>(CMD.LIST_NODES, 'node-attrs'),
    async getErrorCounter(nodeId, errorId) {
      const r = await request(CMD.GET_ERROR_COUNTER, 'error-counter-attrs', { nodeId, errorId });
      return read<ErrorCounterAttrs>('error-counter-attrs')(r[0]!);
    },
    errorCounters: (nodeId) => dump<ErrorCounterAttrs>(CMD.GET_ERROR_COUNTER, 'error-counter-attrs', { nodeId }),
    async clearErrorCounter(nodeId, errorId) {
      await request(CMD.CLEAR_ERROR_COUNTER, 'error-counter-attrs', { nodeId, errorId });
    },
    onErrorEvent(cb) {
      const group = family.groups.get(GROUP.ERROR_REPORT);
      if (group === undefined) throw new Error(`the daemon's ${FAMILY_NAME} family has no ${GROUP.ERROR_REPORT} group`);
      genl.join(group);
      const off = genl.onEvent((m) => {
        if (m.type === family.id && m.cmd === CMD.ERROR_EVENT) cb(read<ErrorEventAttrs>('error-event-attrs')(m));
      });
      return () => { off(); try { genl.leave(group); } catch { /* socket closed */ } };
    },
    close: () => genl.close(),
  };
}
