// Naming a device on the command line: accelN, its index, or its bus handle (pci/0000:03:00.0
// or just 0000:03:00.0), as the request attributes that the daemon resolves.
import type { Accel } from '../device/gen/accel';
import { type Args, UsageError } from './args';

export type DevHandle = Pick<Accel, 'devIndex' | 'devName' | 'busAddr'>;

const BDF = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i;

export function parseDev(s: string): DevHandle {
  if (/^accel\d+$/.test(s)) return { devName: s };
  if (/^\d+$/.test(s) && Number(s) <= 0xffffffff) return { devIndex: Number(s) };
  const addr = s.replace(/^pci\//, '');
  if (BDF.test(addr)) return { busAddr: addr.toLowerCase() };
  throw new UsageError(`Invalid device "${s}": expected accelN, an index, or a bus handle like pci/0000:03:00.0.`);
}

/** An optional device argument (with an optional "dev" keyword before it, as ip allows). */
export function optDev(a: Args): DevHandle | undefined {
  if (a.peek() === 'dev') a.next();
  const w = a.peek();
  if (w === undefined) return undefined;
  a.next();
  return parseDev(w);
}

export function needDev(a: Args, usage: string): DevHandle {
  const d = optDev(a);
  if (!d) throw new UsageError(`Command line is not complete: a device is needed.\n${usage}`);
  return d;
}
