// Which formats a device offers: every format by default, a configured subset otherwise
// (config `formats:`), and GRPC only while the gRPC service is serving. Kept per runtime so the
// netlink family, caps-get and the gRPC service agree.
import type { RasFormat } from '../gen/accel';
import type { Device } from '../model';
import type { Runtime } from '../runtime';
import { ALL_FORMATS, FORMATS, formatBit } from './record';

export interface FormatSupport {
  /** Configured subsets by device (devices not listed, e.g. hot-plugged ones, offer all). */
  subset: WeakMap<Device, number>;
  /** The gRPC endpoint while the service is serving. */
  grpcEndpoint: string | undefined;
}

const byRuntime = new WeakMap<Runtime, FormatSupport>();

export function formatSupport(rt: Runtime): FormatSupport {
  let s = byRuntime.get(rt);
  if (!s) byRuntime.set(rt, (s = { subset: new WeakMap(), grpcEndpoint: undefined }));
  return s;
}

/** The capability bitmask of a device right now. */
export function formatMask(rt: Runtime, d: Device): number {
  const s = formatSupport(rt);
  let m = s.subset.get(d) ?? ALL_FORMATS;
  if (!s.grpcEndpoint) m &= ~formatBit('grpc');
  return m;
}

export const supports = (rt: Runtime, d: Device, f: RasFormat): boolean => (formatMask(rt, d) & formatBit(f)) !== 0;

export const maskOf = (list: RasFormat[]): number => list.reduce((m, f) => m | formatBit(f), 0);
export const namesOf = (mask: number): RasFormat[] => FORMATS.filter((f) => mask & formatBit(f));
