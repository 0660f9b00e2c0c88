// Health reporters with devlink health semantics: report, grace period, auto-dump, auto-recover,
// and the diagnose/dump/recover/test operations.
import { EBUSY, ENODEV } from '../attrs/errno';
import { type Emulator, emitConfig } from './emulator';
import type { ReporterName } from './enums';
import { type Device, type Reporter, versionList } from './model';
import { resetDevice } from './reset';

function changed(emu: Emulator, d: Device, r: Reporter): void {
  emitConfig(emu, { kind: 'health', dev: d, reporter: r.name });
}

/** devlink_health_report(): count, go to error, maybe dump, maybe recover (unless within grace). */
export function report(emu: Emulator, d: Device, name: ReporterName, msg: string): void {
  const r = d.reporters.get(name)!;
  const now = emu.clock.nowMs();
  r.errCount++;
  r.lastMsg = msg;
  r.lastErrorMs = now;
  const wasHealthy = r.healthy;
  r.healthy = false;
  changed(emu, d, r);
  // As devlink: no auto-recovery while the previous error is unrecovered or within the grace
  // period. A device that needs a reset waits for the operator (dev set reset, health recover).
  const abort = !wasHealthy || (r.gracePeriodMs > 0 && now - r.lastRecoverMs < r.gracePeriodMs) ||
    d.state === 'needs-reset';
  if (r.autoDump && !r.dump) takeDump(emu, d, r);
  if (r.autoRecover && !abort) recover(emu, d, name);
}

/** Recover a reporter: a device needing a reset gets one. Returns 0 or -errno. */
export function recover(emu: Emulator, d: Device, name: ReporterName): number {
  const r = d.reporters.get(name)!;
  if (d.state === 'offline') return -ENODEV;
  if (d.state === 'in-reset') return -EBUSY;
  if (d.state === 'needs-reset') {
    const e = resetDevice(emu, d);
    if (e) return e;
  }
  r.healthy = true;
  r.recoverCount++;
  r.lastRecoverMs = emu.clock.nowMs();
  changed(emu, d, r);
  return 0;
}

/** What diagnose reports: live state relevant to the reporter, as key/value pairs. */
export function diagnose(d: Device, name: ReporterName): [string, string][] {
  const r = d.reporters.get(name)!;
  const kv: [string, string][] = [
    ['state', r.healthy ? 'healthy' : 'error'], ['device_state', d.state], ['last_error', r.lastMsg || 'none'],
  ];
  switch (name) {
    case 'mem':
      kv.push(['rows_active', String(d.mem.rowsActive)], ['rows_pending', String(d.mem.rowsPending)],
        ['bad_pages', String(d.mem.badPages.length)], ['rma', String(d.mem.rma)]);
      break;
    case 'thermal':
      kv.push(['temp_mc', String(d.tel.tempMc)], ['power_mw', String(d.tel.powerMw)], ['throttle', `0x${d.tel.throttle.toString(16)}`]);
      break;
    case 'fw':
      for (const v of versionList(d)) if (v.kind === 'running') kv.push([v.name, v.value]);
      break;
    case 'pcie':
      kv.push(['bus', `${d.busName}/${d.busAddr}`], ['link', d.state === 'offline' ? 'down' : 'up']);
      break;
    case 'core':
      kv.push(['compute_units', String(d.computeUnits)], ['util_pct', String(d.tel.utilPct)]);
      break;
  }
  return kv;
}

function takeDump(emu: Emulator, d: Device, r: Reporter): void {
  r.dump = [['reporter', r.name], ['error_count', String(r.errCount)], ...diagnose(d, r.name)];
  r.dumpTsNs = emu.clock.nowNs();
}

/** The stored dump, taken now when there is none (devlink does the same on `dump show`). */
export function getDump(emu: Emulator, d: Device, name: ReporterName): [string, string][] {
  const r = d.reporters.get(name)!;
  if (!r.dump) takeDump(emu, d, r);
  return r.dump!;
}

export function clearDump(d: Device, name: ReporterName): void {
  const r = d.reporters.get(name)!;
  r.dump = undefined;
  r.dumpTsNs = 0n;
}

/** devlink health test: the reporter reports a synthetic error. */
export function testReporter(emu: Emulator, d: Device, name: ReporterName): number {
  if (d.state === 'offline') return -ENODEV;
  report(emu, d, name, 'test error');
  return 0;
}

/** Overall health: critical for RMA or a device needing reset, warning for unhealthy reporters or pending rows. */
export function overallHealth(d: Device): 'ok' | 'warning' | 'critical' {
  if (d.mem.rma || d.state === 'needs-reset' || d.state === 'malfunction') return 'critical';
  for (const r of d.reporters.values()) if (!r.healthy) return 'warning';
  if (d.mem.rowsPending || d.tel.throttle & ~0x1) return 'warning';
  return 'ok';
}
