// device/: emulated accelerators (RAS model, health, telemetry, persistence) and the accel and
// drm-ras families that expose them.
export * from './enums';
export * from './clock';
export * from './log';
export * from './model';
export * from './emulator';
export * from './ras';
export * from './health';
export * from './telemetry';
export * from './config';
export * from './runtime';
export * from './persist';
export * from './daemon';
export { accelFamily, devAttrs, rasAttrs, eventAttrs, MAX_SUBSCRIBERS } from './families/accel';
export { drmRasFamily } from './families/drm-ras';
export { devlinkFamily } from './families/devlink';
export * as accelSpec from './gen/accel';
export * as drmRasSpec from './gen/drm-ras';
export * as devlinkSpec from './gen/devlink';
export * from './jobs';
export { jobHandlers, jobAttrs, wireJobEvents } from './families/jobs';
export * from './bo-write';
export { type BoMaps, TOKEN_MS, offerMap } from './bomap';
export { type MapOptions, MapError, mapBo, shmStatus } from './bomap-client';
