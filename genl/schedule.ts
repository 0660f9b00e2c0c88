// When the server works on its own: dump continuation and queue retries run from a pump that is
// scheduled here, either on the next turn (kick) or at a time (kickAt), never twice at once.

export interface Schedule {
  readonly run: () => void;
  timer: NodeJS.Timeout | undefined;
  timerAt: number;
  scheduled: boolean;
}

export const newSchedule = (run: () => void): Schedule => ({ run, timer: undefined, timerAt: 0, scheduled: false });

/** Run the pump on the next turn (setImmediate), or after `delay` ms. */
export function kick(s: Schedule, delay = 0): void {
  if (delay === 0) {
    if (s.scheduled) return;
    s.scheduled = true;
    setImmediate(() => { s.scheduled = false; s.run(); });
  } else kickAt(s, Date.now() + delay);
}

/** Run the pump at `at` (ms) or earlier. */
export function kickAt(s: Schedule, at: number): void {
  if (s.timer && s.timerAt <= at) return;
  if (s.timer) clearTimeout(s.timer);
  s.timerAt = at;
  s.timer = setTimeout(() => { s.timer = undefined; s.run(); }, Math.max(0, at - Date.now()));
  s.timer.unref?.();
}
