// RAS behaviour: recording errors (counters, log, storm limiting), their consequences on the
// device (reset needed, retired rows, RMA, throttling) and clearing. Device reset is reset.ts,
// which health reporters use too.
import { EBUSY, EINVAL, ENODEV } from '../attrs/errno';
import { type Emulator, emitRas, setState } from './emulator';
import { type Action, BLOCKS, type Block, REPORTER_OF, SEVERITIES, type Severity, THROTTLE } from './enums';
import { report } from './health';
import { type RasEvent, append } from './log';
import { BAD_PAGE_CAPACITY, type Device, U64_MAX, counterIndex, touch } from './model';

export { resetDevice } from './reset';

export interface Injection {
  block: Block;
  severity: Severity;
  subBlock?: number;
  address?: bigint;
  /** How many errors this report stands for (amdgpu's `value`). */
  count?: number;
  syndrome?: Uint8Array;
}

/** drm-ras style error ids: one per block, 1-based, named after the block. */
export const errorIdOf = (b: Block): number => BLOCKS.indexOf(b) + 1;

const sat = (a: bigint, b: bigint): bigint => (a + b > U64_MAX ? U64_MAX : a + b);

function actionFor(block: Block, sev: Severity): Action {
  switch (sev) {
    case 'uncorrectable-fatal': return block === 'pcie' || block === 'soc-fabric' ? 'reboot' : 'reset-device';
    case 'uncorrectable-nonfatal': return 'restart-app';
    case 'deferred': return block === 'hbm' || block === 'sram' ? 'restart-app' : 'none';
    default: return 'none';
  }
}

const NO_SYNDROME = new Uint8Array(0);

function record(emu: Emulator, d: Device, e: Omit<RasEvent, 'seq' | 'dev' | 'tsNs'>): RasEvent {
  const r = e as RasEvent;
  r.dev = d.index;
  r.tsNs = emu.clock.nowNs();
  const rec = append(d.log, r);
  emitRas(emu, d, rec);
  return rec;
}

/** Close a block's storm window, emitting the overflow record for what it folded. */
function closeStorm(emu: Emulator, d: Device, bi: number): RasEvent | undefined {
  const s = d.storms[bi];
  d.storms[bi] = undefined;
  if (!s || !s.folded) return undefined;
  const block = BLOCKS[bi];
  return record(emu, d, {
    kind: 'storm-overflow', block, severity: 'correctable', errorId: errorIdOf(block), errorName: block,
    count: s.folded, address: 0n, syndrome: new Uint8Array(0), action: 'none', folded: s.folded,
    firstTsNs: s.firstNs, lastTsNs: s.lastNs,
  });
}

/** Emit overflow records for storm windows that have ended (called from the daemon's tick). */
export function flushStorms(emu: Emulator, d: Device): void {
  const now = emu.clock.nowMs();
  d.storms.forEach((s, bi) => { if (s && now - s.windowStartMs >= emu.cfg.stormIntervalMs) closeStorm(emu, d, bi); });
}

/** Whether a correctable event may be logged now; otherwise it is folded into the window's count. */
function admit(emu: Emulator, d: Device, bi: number, count: number): boolean {
  const now = emu.clock.nowMs();
  let s = d.storms[bi];
  if (s && now - s.windowStartMs >= emu.cfg.stormIntervalMs) { closeStorm(emu, d, bi); s = undefined; }
  if (!s) d.storms[bi] = s = { windowStartMs: now, emitted: 0, folded: 0, firstNs: 0n, lastNs: 0n };
  if (s.emitted < emu.cfg.stormBurst) { s.emitted++; return true; }
  const t = emu.clock.nowNs();
  if (!s.folded) s.firstNs = t;
  s.lastNs = t;
  s.folded += count;
  return false;
}

/** A correctable error the storm limiter folded: the block's open window, as it stands now. */
export interface Folded {
  block: Block;
  /** Errors folded into the window so far, this one included. */
  folded: number;
  firstTsNs: bigint;
  lastTsNs: bigint;
  /** When the window closes and its storm-overflow record is logged (emulator clock, ms). */
  closesAtMs: number;
}

/**
 * Record an error as hardware would report it. Counters stay exact even when the storm limiter
 * folds events. Returns the log records produced (possibly none, when folded), or -errno.
 * `onFold` hears when the error itself was folded into a storm window instead of logged: an
 * injection is an admin's request and its answer must say so (finding F6/M7).
 */
export function inject(emu: Emulator, d: Device, inj: Injection, onFold?: (f: Folded) => void): RasEvent[] | number {
  if (d.state === 'offline') return -ENODEV;
  if (d.state === 'in-reset') return -EBUSY;
  const bi = BLOCKS.indexOf(inj.block);
  const si = SEVERITIES.indexOf(inj.severity);
  if (bi < 0 || si < 0) return -EINVAL;
  const count = inj.count ?? 1;
  const n = BigInt(count);
  const ci = counterIndex(bi, si);
  d.counters.volatile[ci] = sat(d.counters.volatile[ci], n);
  d.counters.aggregate[ci] = sat(d.counters.aggregate[ci], n);
  d.generation++;
  touch(d); // and consequences below: throttling, temperature, retired rows
  emu.journal?.(d, { k: 'count', ci, n });
  const out: RasEvent[] = [];
  if (inj.severity !== 'correctable' || admit(emu, d, bi, count)) {
    out.push(record(emu, d, {
      kind: 'error', block: inj.block, severity: inj.severity, errorId: bi + 1, errorName: inj.block, count,
      address: inj.address ?? 0n, syndrome: inj.syndrome ?? NO_SYNDROME, action: actionFor(inj.block, inj.severity),
      folded: 0, firstTsNs: 0n, lastTsNs: 0n,
    }));
  } else if (onFold) {
    const w = d.storms[bi]!;
    onFold({ block: inj.block, folded: w.folded, firstTsNs: w.firstNs, lastTsNs: w.lastNs, closesAtMs: w.windowStartMs + emu.cfg.stormIntervalMs });
  }
  consequences(emu, d, inj, out);
  return out;
}

function consequences(emu: Emulator, d: Device, inj: Injection, out: RasEvent[]): void {
  const { block, severity } = inj;
  const memBlock = block === 'hbm' || block === 'sram';
  const address = inj.address ?? 0n;
  if (memBlock && (severity === 'uncorrectable-nonfatal' || severity === 'uncorrectable-fatal')) retire(emu, d, inj, out);
  if (block === 'hbm' && severity === 'correctable') {
    const key = `${d.index}:${address >> 12n}`;
    const n = (emu.ceByPage.get(key) ?? 0) + 1;
    emu.ceByPage.set(key, n);
    if (n === emu.cfg.ceRetireThreshold) retire(emu, d, inj, out);
  }
  if (block === 'thermal' && severity !== 'correctable') {
    d.tel.throttle |= THROTTLE['hw-thermal'];
    d.tel.tempMc = Math.max(d.tel.tempMc, 95000);
  }
  if (block === 'power' && severity !== 'correctable') d.tel.throttle |= THROTTLE['hw-power-brake'];
  if (severity === 'uncorrectable-fatal' && (d.state === 'operational' || d.state === 'malfunction')) setState(emu, d, 'needs-reset');
  if (severity !== 'correctable') report(emu, d, REPORTER_OF[block], `${severity} error in ${block}`);
}

/**
 * Retire the row behind `address`: pending until the next reset, a bad page, maybe RMA. With the
 * bad page table full (BAD_PAGE_CAPACITY), nothing more is retired: the error stays as logged.
 */
function retire(emu: Emulator, d: Device, inj: Injection, out: RasEvent[]): void {
  const address = inj.address ?? 0n;
  const page = address & ~0xfffn;
  if (d.mem.badPages.length >= BAD_PAGE_CAPACITY || d.mem.badPages.includes(page)) return;
  d.mem.badPages.push(page);
  d.mem.rowsPending++;
  touch(d);
  const becameRma = !d.mem.rma && d.mem.rowsActive + d.mem.rowsPending >= d.mem.rmaThreshold;
  if (becameRma) d.mem.rma = true;
  emu.journal?.(d, { k: 'mem', page });
  const base = {
    block: inj.block, severity: inj.severity, errorId: errorIdOf(inj.block), errorName: inj.block, count: 1,
    address: page, syndrome: new Uint8Array(0), folded: 0, firstTsNs: 0n, lastTsNs: 0n,
  };
  out.push(record(emu, d, { ...base, kind: 'row-retired', action: 'reset-device' }));
  if (becameRma) out.push(record(emu, d, { ...base, kind: 'rma', action: 'replace' }));
}

/** Clear volatile counters, and the lifetime ones too when `aggregate`. */
export function clearCounters(emu: Emulator, d: Device, aggregate: boolean): void {
  d.counters.volatile.fill(0n);
  if (aggregate) d.counters.aggregate.fill(0n);
  d.generation++;
  touch(d);
  emu.journal?.(d, { k: 'clear', aggregate });
}
