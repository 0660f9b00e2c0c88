// accelnl as a library: what `require('accelnl')` and `import { … } from 'accelnl'` give.
// Built into dist/index.js (esbuild) with declarations in dist/types/ (tsc) by `npm run build`.
// Each layer is also reachable whole, as a namespace: attrs, genl, device, compute.

// Connecting to the daemon: typed clients for its families, and the generic netlink client.
export { type AccelClient, type AccelEvent, type SubscribeOptions, type Subscription, connectAccel } from './device/client';
export { type DrmRasClient, connectDrmRas } from './device/drm-ras-client';
export { type MapOptions, MapError, mapBo, shmStatus } from './device/bomap-client';
export { BO_WRITE_MAX, boWrites } from './device/bo-write';
export {
  type Client, type ClientOptions, type FamilyInfo, type Message, type RequestOptions, NetlinkError, createClient,
} from './genl/client';
export { NETLINK_GENERIC, NETLINK_USERSOCK, nativeStatus, openSocket, parsePort } from './genl/socket';
export { DEFAULT_PORT, resolvePort } from './device/port';

// The families' constants and attribute types, generated from docs/netlink/specs/*.yaml
// (accel.CMD.DEV_GET, the accel.Accel attribute type, drmRas.NodeAttrs, ...).
export * as accel from './device/gen/accel';
export * as drmRas from './device/gen/drm-ras';

// TLV attributes: writer, reader, policies and the kernel's validation.
export {
  type Writer, bytes, nestEnd, nestStart, newWriter, putBytes, putFlag, putS32, putS64, putString, putU16, putU32,
  putU64, putU8, putUint, resetWriter,
} from './attrs/writer';
export {
  type View, attrLen, attrType, getBytes, getS32, getS64, getString, getU16, getU32, getU64, getU8, getUint, parseInto,
  payload, payloadLen, view, walk,
} from './attrs/reader';
export { type Policy, type PolicyEntry, pol, policy } from './attrs/policy';
export { NL_VALIDATE, validate } from './attrs/validate';
export { errnoName, strerror } from './attrs/errno';

// Defining a family from a YNL spec, and serving it (with nlctrl) on a NETLINK_USERSOCK port.
export {
  type FamilyOptions, type Handlers, type OpHandlers, type Spec, SpecError, familyFromSpec, loadSpec, loadSpecFile,
  notifyEvent, readAttrs, readRequest, writeAttrs,
} from './genl/ynl';
export { type ServerBinding, addFamily, createGenlServer, serve } from './genl/serve';
export { type DoCtx, type DumpCtx, type Family } from './genl/family';
export { type DoResult, type DumpResult, type Result, done, fail, more } from './genl/result';

// The matrix engine the daemon's jobs run on, in-process: GEMM on this thread or on a pool of
// worker threads (docs/compute.md).
export {
  type DType, type GemmDesc, type GemmF32, type GemmF64, type GemmI8, type Pool, type PoolOptions, closeDefaultPool, createPool,
  gemm, gemmAsync,
} from './compute';

// The daemon itself (the emulated accelerators behind the accel, drm-ras families), in-process.
export { type Daemon, type DaemonOptions, startDaemon } from './device/daemon';

export * as attrs from './attrs';
export * as genl from './genl';
export * as device from './device';
export * as compute from './compute';
