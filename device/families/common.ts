// What the accel and drm-ras handlers share: the runtime they serve, and device lookup by handle.
import { type Extack, setAttrMissing, setErrAttr } from '../../attrs';
import { EINVAL, ENODEV } from '../../attrs/errno';
import { type Failed, type Server, fail } from '../../genl';
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
