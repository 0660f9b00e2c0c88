// What the accel and drm-ras handlers share: the runtime they serve, and device lookup by handle.
import { type Extack, type Writer, setAttrMissing, setErrAttr, setErrMsg } from '../../attrs';
import { EINVAL, ENODEV } from '../../attrs/errno';
import { type DumpCtx, type DumpResult, type Failed, type Server, done, fail, more } from '../../genl';
import { devicesInOrder } from '../emulator';
import type { Device } from '../model';
import type { Runtime } from '../runtime';

export interface Served {
  srv: Server;
  rt: Runtime;
}

export interface Handle {
  devIndex?: number;
  devName?: string;
  busAddr?: string;
}

/**
 * The device a request names by index, accelN name or bus address (in that order of preference),
 * or a failure with the extack saying what was missing or unknown. `tb` holds attribute offsets.
 */
export function targetDevice(rt: Runtime, h: Handle, tb: Int32Array, ext: Extack,
  types: { index: number; name: number; addr: number }): Device | Failed {
  let d: Device | undefined;
  let at: number;
  if (h.devIndex !== undefined) { d = rt.emu.devices.get(h.devIndex); at = tb[types.index]; }
  else if (h.devName !== undefined) { d = [...rt.emu.devices.values()].find((x) => x.name === h.devName); at = tb[types.name]; }
  else if (h.busAddr !== undefined) {
    const a = h.busAddr.replace(/^pci\//, '');
    d = [...rt.emu.devices.values()].find((x) => x.busAddr === a);
    at = tb[types.addr];
  } else {
    // MISS_TYPE can name one attribute; the message says that any of the three will do.
    setErrMsg(ext, 'no device given (by index, name or bus address)');
    setAttrMissing(ext, -1, types.index);
    return fail(EINVAL);
  }
  if (!d) {
    setErrAttr(ext, at, 'no such device');
    return fail(ENODEV);
  }
  return d;
}

/** Devices in index order, for dumps. */
/** The devices in index order: one shared list, rebuilt when devices come or go; do not modify it. */
export const sortedDevices = (rt: Runtime): Device[] => devicesInOrder(rt.emu) as Device[];

/**
 * A dump that resumes by key, not by position: `items` sorted by ascending `keyOf`, and each chunk
 * starts after the last key written. Entries added or removed between chunks (other clients' BOs
 * freed, devices removed) then cannot shift an entry that exists all through the dump out of it,
 * as a position cursor did (model finding M6). The cursor is kept in ctx.state[stateKey].
 */
export function dumpByKey<T>(c: DumpCtx, items: readonly T[], keyOf: (item: T) => number,
  fill: (w: Writer, item: T) => void, stateKey = 'after'): DumpResult {
  const after = c.state[stateKey] as number | undefined;
  let i = 0;
  if (after !== undefined) {
    // First item whose key is above the cursor (binary search: lists of thousands of BOs).
    let hi = items.length;
    while (i < hi) { const mid = (i + hi) >>> 1; if (keyOf(items[mid]) <= after) i = mid + 1; else hi = mid; }
  }
  for (; i < items.length; i++) {
    fill(c.start(), items[i]);
    if (!c.end()) break;
    c.state[stateKey] = keyOf(items[i]);
  }
  return i < items.length ? more() : done();
}
