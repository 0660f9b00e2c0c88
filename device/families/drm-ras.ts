// The upstream drm-ras family, ABI-compatible with the kernel's spec: two error-counter nodes per
// device (correctable-errors, uncorrectable-errors; device-name = PCI address, as Intel Xe does),
// u32 counters that saturate, and the ENOENT/EINVAL rules of drivers/gpu/drm/drm_ras.c. The counters
// are views of the same RAS model the accel family shows (volatile counters, summed per class).
import { type Extack, setAttrMissing, setBadAttr } from '../../attrs';
import { EINVAL, ENOENT } from '../../attrs/errno';
import { type DoCtx, type DumpCtx, type Failed, type Family, done, fail, isFailed, more } from '../../genl';
import { familyFromSpec, notifyEvent, readRequest, writeAttrs } from '../../genl/ynl';
import { BLOCKS, SEVERITIES, type Block } from '../enums';
import { ERROR_COUNTER_ATTRS as EC, type ErrorCounterAttrs, spec } from '../gen/drm-ras';
import { type Device, counterIndex } from '../model';
import { errorIdOf } from '../ras';
import { type Served, dumpByKey } from './common';

type NodeKind = 'correctable' | 'uncorrectable';
interface Node { id: number; dev: Device; kind: NodeKind }

const NODE_NAME: Record<NodeKind, string> = { correctable: 'correctable-errors', uncorrectable: 'uncorrectable-errors' };
/** Error ids are 1..11, one per block. */
const FIRST = 1;
const LAST = BLOCKS.length;
const U32_MAX = 0xffffffffn;

/** The u32 a node reports for one block: correctable, or deferred + uncorrectable, saturated. */
function value(n: Node, block: Block): number {
  const b = BLOCKS.indexOf(block);
  const v = n.dev.counters.volatile;
  let sum = 0n;
  SEVERITIES.forEach((s, i) => {
    if ((s === 'correctable') === (n.kind === 'correctable')) sum += v[counterIndex(b, i)];
  });
  return Number(sum > U32_MAX ? U32_MAX : sum);
}

export function drmRasFamily(s: Served): Family {
  const { rt, srv } = s;
  const nodes = new Map<number, Node>();
  /** Each device's nodes, so that an event does not walk every device's. */
  const ofDev = new Map<Device, Node[]>();
  /** No id below this one is free (so that adding n devices is not quadratic; 2048 nodes at 1024). */
  let lowFree = 0;
  const addNodes = (d: Device): void => {
    const mine: Node[] = [];
    for (const kind of ['correctable', 'uncorrectable'] as const) {
      let id = lowFree;
      while (nodes.has(id)) id++; // xa_alloc: the lowest free id
      lowFree = id + 1;
      const n = { id, dev: d, kind };
      nodes.set(id, n);
      mine.push(n);
    }
    ofDev.set(d, mine);
  };
  for (const d of [...rt.emu.devices.values()].sort((a, b) => a.index - b.index)) addNodes(d);

  const counterReq = (c: DoCtx | DumpCtx) => readRequest<ErrorCounterAttrs>(c, spec, 'error-counter-attrs');
  /** GENL_REQ_ATTR_CHECK: a missing attribute is EINVAL with MISS_TYPE and no message. */
  const need = (ext: Extack, v: number | undefined, type: number): boolean => {
    if (v !== undefined) return true;
    setAttrMissing(ext, -1, type);
    return false;
  };
  const node = (c: DoCtx | DumpCtx, id: number): Node | Failed => {
    const n = nodes.get(id);
    if (!n) { setBadAttr(c.ext, c.attrs[EC.NODE_ID]); return fail(ENOENT); }
    return n;
  };
  const inRange = (id: number) => id >= FIRST && id <= LAST;
  const counterAttrs = (n: Node, id: number): ErrorCounterAttrs => {
    const block = BLOCKS[id - 1];
    return { errorId: id, errorName: block, errorValue: value(n, block) };
  };

  /** The do ops' checks, in drm_ras.c's order: node-id, error-id present; node known; id in range. */
  const counterTarget = (c: DoCtx): { n: Node; id: number } | Failed => {
    const a = counterReq(c);
    if (!need(c.ext, a.nodeId, EC.NODE_ID) || !need(c.ext, a.errorId, EC.ERROR_ID)) return fail(EINVAL);
    const n = node(c, a.nodeId!);
    if (isFailed(n)) return n;
    return inRange(a.errorId!) ? { n, id: a.errorId! } : fail(EINVAL);
  };

  const fam = familyFromSpec(spec, {
    'list-nodes': {
      dump: (c) => dumpByKey(c, [...nodes.keys()].sort((a, b) => a - b), (id) => id, (w, id) => {
        const n = nodes.get(id)!;
        writeAttrs(w, spec, 'node-attrs', { nodeId: n.id, deviceName: n.dev.busAddr, nodeName: NODE_NAME[n.kind], nodeType: 'error-counter' });
      }),
    },
    'get-error-counter': {
      do: (c) => {
        const t = counterTarget(c);
        if (isFailed(t)) return t;
        writeAttrs(c.reply(), spec, 'error-counter-attrs', counterAttrs(t.n, t.id));
        c.end();
        return done();
      },
      // The node checks run inside dumpit, so they arrive as NLMSG_DONE with the error.
      dump: (c) => {
        const a = counterReq(c);
        if (!need(c.ext, a.nodeId, EC.NODE_ID)) return fail(EINVAL);
        const n = node(c, a.nodeId!);
        if (isFailed(n)) return n;
        let id = (c.state.id as number) ?? FIRST;
        for (; id <= LAST; id++) {
          writeAttrs(c.start(), spec, 'error-counter-attrs', counterAttrs(n, id));
          if (!c.end()) break;
        }
        c.state.id = id;
        return id <= LAST ? more() : done();
      },
    },
    'clear-error-counter': {
      do: (c) => {
        const t = counterTarget(c);
        if (isFailed(t)) return t;
        const { n } = t;
        const b = t.id - 1;
        SEVERITIES.forEach((sv, i) => {
          if ((sv === 'correctable') === (n.kind === 'correctable')) n.dev.counters.volatile[counterIndex(b, i)] = 0n;
        });
        n.dev.generation++;
        return done();
      },
    },
  }, { generation: () => nodes.size });

  rt.emu.onConfig.push((e) => {
    if (e.kind === 'new') addNodes(e.dev);
    else if (e.kind === 'del') {
      for (const n of ofDev.get(e.dev) ?? []) { nodes.delete(n.id); lowFree = Math.min(lowFree, n.id); }
      ofDev.delete(e.dev);
    }
  });
  rt.emu.onRas.push((d, e) => {
    if (e.kind !== 'error') return;
    const kind: NodeKind = e.severity === 'correctable' ? 'correctable' : 'uncorrectable';
    for (const n of ofDev.get(d) ?? []) {
      if (n.kind !== kind) continue;
      notifyEvent(srv, fam, spec, 'error-event', {
        deviceName: d.busAddr, nodeId: n.id, nodeName: NODE_NAME[kind], errorId: errorIdOf(e.block),
        errorName: e.block, errorValue: value(n, e.block),
      });
    }
  });
  return fam;
}
