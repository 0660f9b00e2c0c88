// The running emulator: devices from the configuration, a periodic tick that moves telemetry,
// closes storm windows and (when configured) injects background errors from seeded randomness.
import { type Clock, realClock } from './clock';
import type { Config, SimRates } from './config';
import { type Emulator, addDevice, newEmulator, stopEmulator } from './emulator';
import type { Block, Severity } from './enums';
import type { Device } from './model';
import { flushStorms, inject } from './ras';
import { tick } from './telemetry';

export interface Runtime {
  emu: Emulator;
  cfg: Config;
  /** Busy fraction per device index, when nothing better is known (tests, demos). */
  busy: Map<number, number>;
  /** Real busy fraction of a device over the last `dtMs` (the compute engine's tally). */
  busySource?: (dev: number, dtMs: number) => number;
  simulate: SimRates | undefined;
  timer: NodeJS.Timeout | undefined;
}

export function createRuntime(cfg: Config, clock: Clock = realClock): Runtime {
  const emu = newEmulator(clock, cfg.emulator);
  for (const d of cfg.devices) addDevice(emu, d);
  return { emu, cfg, busy: new Map(), simulate: cfg.simulate, timer: undefined };
}

/** Poisson-distributed count with mean `lambda`, from the device's PRNG (Knuth; lambda is small). */
function poisson(rand: () => number, lambda: number): number {
  if (lambda <= 0) return 0;
  if (lambda > 30) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * (rand() + rand() + rand() - 1.5) * 2));
  const l = Math.exp(-lambda);
  let k = 0;
  let p = 1;
  do { k++; p *= rand(); } while (p > l);
  return k - 1;
}

function simulate(d: Device, rates: SimRates, dtMs: number, rt: Runtime): void {
  for (const [block, sev] of Object.entries(rates) as [Block, Partial<Record<Severity, number>>][]) {
    for (const [severity, rate] of Object.entries(sev) as [Severity, number][]) {
      const n = poisson(d.rand, (rate * dtMs) / 1000);
      for (let i = 0; i < n; i++) {
        const address = block === 'hbm' || block === 'sram' ? BigInt(Math.floor(d.rand() * Number(d.memTotal))) & ~0x3fn : 0n;
        inject(rt.emu, d, { block, severity, address, count: 1 });
      }
    }
  }
}

/** One step of every device, as the timer does it (tests call this directly with a manual clock). */
export function step(rt: Runtime, dtMs: number): void {
  for (const d of rt.emu.devices.values()) {
    tick(d, dtMs, rt.busySource ? rt.busySource(d.index, dtMs) : rt.busy.get(d.index) ?? 0);
    flushStorms(rt.emu, d);
    if (rt.simulate) simulate(d, rt.simulate, dtMs, rt);
  }
}

export function startTicking(rt: Runtime): void {
  if (rt.timer) return;
  // Step by the time that passed, not by the nominal period: setInterval fires late under load,
  // and a configured rate of simulated errors is a rate per second of real time. A step covers at
  // most two periods, though: a daemon that cannot keep up sheds simulated load instead of
  // spending every wake-up on it (requests and dumps must still be served in a storm).
  let last = rt.emu.clock.nowMs();
  rt.timer = setInterval(() => {
    const now = rt.emu.clock.nowMs();
    const dt = Math.min(Math.max(now - last, 0), 2 * rt.cfg.tickMs);
    last = now;
    if (dt > 0) step(rt, dt);
  }, rt.cfg.tickMs);
  rt.timer.unref?.();
}

export function stopRuntime(rt: Runtime): void {
  if (rt.timer) clearInterval(rt.timer);
  rt.timer = undefined;
  stopEmulator(rt.emu);
}
