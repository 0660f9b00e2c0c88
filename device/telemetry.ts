// Telemetry that moves: load raises power, power raises temperature, heat throttles clocks.
// Deterministic: each device's noise comes from its seeded PRNG, one step per tick.
import { THROTTLE } from './enums';
import { type Device, touch } from './model';

const AMBIENT_MC = 30000;
const THROTTLE_AT_MC = 85000;
const RELEASE_AT_MC = 80000;
const IDLE_MW = 40000;

/** Advance one tick of `dtMs`, given the fraction of time the device was busy (0..1). */
export function tick(d: Device, dtMs: number, busy: number): void {
  const t = d.tel;
  if (d.state === 'offline' || d.state === 'in-reset') busy = 0;
  const load = Math.min(1, Math.max(0, Math.max(busy, d.load) + (d.rand() - 0.5) * 0.02));
  t.utilPct = Math.round(Math.max(busy, d.load) * 100);
  const thermal = (t.throttle & (THROTTLE['hw-thermal'] | THROTTLE['sw-thermal'])) !== 0;
  const clockFrac = thermal ? 0.6 : load > 0.01 ? 1 : 0.25;
  t.clockMhz = Math.round(t.clockMaxMhz * clockFrac);
  const target = IDLE_MW + (t.powerLimitMw - IDLE_MW) * load * clockFrac * 0.9;
  t.powerMw = Math.round(t.powerMw + (target - t.powerMw) * Math.min(1, dtMs / 500));
  if (t.powerMw > t.powerLimitMw) t.powerMw = t.powerLimitMw;
  t.energyMj += (t.powerMw * dtMs) / 1000;
  // Temperature relaxes toward ambient plus a rise proportional to power (about 0.2 °C per W).
  const tempTarget = AMBIENT_MC + t.powerMw * 0.2;
  t.tempMc = Math.round(t.tempMc + (tempTarget - t.tempMc) * Math.min(1, dtMs / 4000) + (d.rand() - 0.5) * 200);
  let th = t.throttle & ~(THROTTLE.idle | THROTTLE['sw-thermal'] | THROTTLE['sw-power-cap']);
  if (t.tempMc >= THROTTLE_AT_MC || ((t.throttle & THROTTLE['sw-thermal']) && t.tempMc > RELEASE_AT_MC)) th |= THROTTLE['sw-thermal'];
  if (t.powerMw >= t.powerLimitMw * 0.98) th |= THROTTLE['sw-power-cap'];
  if (load <= 0.01) th |= THROTTLE.idle;
  t.throttle = th;
  touch(d);
}
