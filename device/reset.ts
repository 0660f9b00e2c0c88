// Device reset, which dev-set and health recover trigger: a module of its own so that health
// reporters (recover) do not depend on the RAS module, which reports to them.
import { EBUSY, ENODEV } from '../attrs/errno';
import { type Emulator, later, setState } from './emulator';
import { THROTTLE } from './enums';
import { type Device, touch } from './model';

/**
 * Reset a device: in-reset for resetMs, then operational with volatile counters cleared, pending
 * row remaps applied and throttling released. Returns 0 or -errno.
 */
export function resetDevice(emu: Emulator, d: Device, done?: () => void): number {
  if (d.state === 'offline') return -ENODEV;
  if (d.state === 'in-reset') return -EBUSY;
  setState(emu, d, 'in-reset');
  later(emu, emu.cfg.resetMs, () => {
    if (d.state !== 'in-reset') return;
    d.counters.volatile.fill(0n);
    d.mem.rowsActive += d.mem.rowsPending;
    d.mem.rowsPending = 0;
    emu.journal?.(d, { k: 'mem' });
    d.tel.throttle &= ~(THROTTLE['hw-thermal'] | THROTTLE['hw-power-brake']);
    d.resets++;
    touch(d);
    setState(emu, d, 'operational');
    done?.();
  });
  return 0;
}
