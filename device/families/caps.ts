// caps-get: what a device supports. The RAS payload formats as a bitmask (bit n = ras-format n),
// each with its schema version and, for gRPC, the endpoint it is served on; and the family's
// features, read off the ops the family actually serves.
import type { Family } from '../../genl';
import { SCHEMA_VERSION } from '../formats';
import { formatMask, formatSupport, namesOf } from '../formats/support';
import { type Accel, CMD, FEATURE } from '../gen/accel';
import type { Device } from '../model';
import type { Runtime } from '../runtime';

export function features(fam: Family): number {
  const has = (cmd: number) => fam.ops.some((o) => o.cmd === cmd);
  let f = 0;
  if (has(CMD.SUBSCRIBE)) f |= FEATURE.SUBSCRIBE;
  if (has(CMD.RAS_LOG_GET)) f |= FEATURE.LOG_CURSOR;
  if (has(CMD.RAS_INJECT)) f |= FEATURE.INJECT;
  if (has(CMD.CAPS_GET)) f |= FEATURE.FORMATS;
  if (has(CMD.JOB_SUBMIT)) f |= FEATURE.JOBS;
  if (has(CMD.BO_MAP)) f |= FEATURE.BO_MAP;
  return f;
}

export function capsAttrs(rt: Runtime, fam: Family, d: Device): Accel {
  const mask = formatMask(rt, d);
  const endpoint = formatSupport(rt).grpcEndpoint;
  return {
    devIndex: d.index, formats: mask, features: features(fam),
    formatInfo: namesOf(mask).map((format) => ({
      format, schemaVersion: SCHEMA_VERSION[format], ...(format === 'grpc' && endpoint ? { endpoint } : {}),
    })),
  };
}
