// Durable RAS state in the daemon's state directory, as a device's RAS EEPROM or InfoROM keeps it:
// lifetime counters, retired rows and bad pages, and the RAS log. A snapshot (written atomically)
// plus a journal of changes since. A device's state is found by its bus address (the slot), and
// belongs to the board that wrote it (its serial): another board in the slot (another --seed, say)
// starts clean, and the first board's state is kept aside under `ADDR@SERIAL` until it is back.
import * as fs from 'fs';
import * as path from 'path';
import { type Change, type ConfigEvent, type Emulator } from './emulator';
import { EVENT_KINDS, BLOCKS, SEVERITIES, ACTIONS } from './enums';
import { type Journal, appendRecord, closeJournal, openJournal, recover, syncJournal, writeAtomic } from './journal';
import { type RasEvent, allRecords, put } from './log';
import { BAD_PAGE_CAPACITY, type Device, NCOUNTERS, U64_MAX, newDevice, touch } from './model';

interface DevState {
  /** The board the state belongs to (absent in snapshots from before serials were kept). */
  serial?: string;
  aggregate: string[];
  mem: { rowsActive: number; rowsPending: number; badPages: string[]; rma: boolean };
  next: string;
  events: unknown[];
}

/** `gen` numbers compactions; the journal's first record names the generation it continues. */
interface Snapshot { version: 1; gen?: number; devices: Record<string, DevState> }

export interface Persistence {
  dir: string;
  journal: Journal;
  /** What recovery found: truncated tails, set-aside files, records replayed. */
  report: string[];
  replayed: number;
  dirty: boolean;
  /** Every board's state as of start-up, and of devices unplugged since: what a hot-plugged board gets back. */
  saved: Record<string, DevState>;
  /** The emulator listener that restores a hot-plugged board and keeps an unplugged one's state. */
  onConfig: (e: ConfigEvent) => void;
  /** The snapshot's generation; the journal continues it. */
  gen: number;
  /** Journal size (bytes) past which a sync folds it into a new snapshot. */
  compactBytes: number;
  /** Fold the journal into a new snapshot now. */
  compact: () => void;
}

/**
 * A journal past this is folded into a new snapshot at the next sync. Only start-up did it before:
 * a storm of 4,000 events a second grew the journal by 2.9 MB/s until the daemon restarted.
 */
export const COMPACT_BYTES = 64 << 20;

const enc = new TextEncoder();
const dec = new TextDecoder();

const evOut = (e: RasEvent) => ({
  seq: String(e.seq), ts: String(e.tsNs), kind: e.kind, block: e.block, severity: e.severity, id: e.errorId,
  name: e.errorName, count: e.count, addr: String(e.address), syn: Buffer.from(e.syndrome).toString('base64'),
  action: e.action, folded: e.folded, first: String(e.firstTsNs), last: String(e.lastTsNs),
});

function evIn(dev: number, o: Record<string, unknown>): RasEvent | undefined {
  const kind = o.kind as RasEvent['kind'];
  if (!EVENT_KINDS.includes(kind) || !BLOCKS.includes(o.block as never) || !SEVERITIES.includes(o.severity as never) ||
    !ACTIONS.includes(o.action as never)) return undefined;
  return {
    dev, seq: BigInt(o.seq as string), tsNs: BigInt(o.ts as string), kind, block: o.block as RasEvent['block'],
    severity: o.severity as RasEvent['severity'], errorId: Number(o.id), errorName: String(o.name), count: Number(o.count),
    address: BigInt(o.addr as string), syndrome: new Uint8Array(Buffer.from(String(o.syn ?? ''), 'base64')),
    action: o.action as RasEvent['action'], folded: Number(o.folded), firstTsNs: BigInt(o.first as string),
    lastTsNs: BigInt(o.last as string),
  };
}

function restoreEvent(d: Device, e: RasEvent): void {
  if (e.seq < d.log.next) return; // already present (replayed twice): exactly once
  put(d.log, e);
  d.log.next = e.seq + 1n;
}

/** The memory part of a device's state, as a snapshot keeps it. */
const memState = (d: Device): DevState['mem'] =>
  ({ rowsActive: d.mem.rowsActive, rowsPending: d.mem.rowsPending, badPages: d.mem.badPages.map(String), rma: d.mem.rma });

function devState(d: Device): DevState {
  const events: unknown[] = [];
  for (const e of allRecords(d.log)) events.push(evOut(e)); // oldest first
  return { serial: d.serial, aggregate: Array.from(d.counters.aggregate, String), mem: memState(d), next: String(d.log.next), events };
}

/**
 * Restore the memory part: `m` lists every bad page (a snapshot, or a journal written before
 * session 10), or none, and then `page` is the one a journaled retirement added.
 */
function applyMem(d: Device, m: Omit<DevState['mem'], 'badPages'> & { badPages?: string[] }, page?: bigint): void {
  d.mem.rowsActive = m.rowsActive;
  d.mem.rowsPending = m.rowsPending;
  d.mem.rma = m.rma;
  if (Array.isArray(m.badPages)) d.mem.badPages = m.badPages.slice(0, BAD_PAGE_CAPACITY).map((x) => BigInt(x));
  else if (page !== undefined && d.mem.badPages.length < BAD_PAGE_CAPACITY && !d.mem.badPages.includes(page)) d.mem.badPages.push(page);
  touch(d);
}

function applyState(d: Device, s: DevState): void {
  s.aggregate.slice(0, NCOUNTERS).forEach((v, i) => { d.counters.aggregate[i] = BigInt(v); });
  applyMem(d, s.mem);
  for (const o of s.events) {
    const e = evIn(d.index, o as Record<string, unknown>);
    if (e) restoreEvent(d, e);
  }
  if (BigInt(s.next) > d.log.next) d.log.next = BigInt(s.next);
}

/** Where a board's state waits while another board is in its slot. */
const asideKey = (addr: string, serial: string): string => `${addr}@${serial}`;

/** A device standing for a board that is not hosted now, to carry its state and journal tail forward. */
function absentBoard(addr: string, s: DevState): Device {
  const d = newDevice({ index: -1, busAddr: addr, serial: s.serial ?? '', logCapacity: Math.max(65536, s.events.length), rand: () => 0 });
  applyState(d, s);
  return d;
}

/** Nothing recorded yet, for a board first seen in the journal. */
const emptyState = (serial: string | undefined): DevState =>
  ({ serial, aggregate: [], mem: { rowsActive: 0, rowsPending: 0, badPages: [], rma: false }, next: '1', events: [] });

/** Whether the state in slot `addr` may be board `serial`'s: there is none, or it is its own (or predates serials). */
function slotIsFor(states: Record<string, DevState>, addr: string, serial: string): boolean {
  const here = states[addr];
  return !here || here.serial === undefined || here.serial === serial;
}

/** Where board (addr, serial)'s state is kept: its slot, else aside; undefined when there is none. */
function stateKey(saved: Record<string, DevState>, addr: string, serial: string): string | undefined {
  if (saved[addr] && slotIsFor(saved, addr, serial)) return addr;
  return saved[asideKey(addr, serial)] ? asideKey(addr, serial) : undefined;
}

/** Keep board (addr, serial)'s state `s`: in its slot when the slot is free or its own (the copy aside goes), else aside. */
function keep(states: Record<string, DevState>, addr: string, serial: string, s: DevState): void {
  if (!slotIsFor(states, addr, serial)) { states[asideKey(addr, serial)] = s; return; }
  states[addr] = s;
  delete states[asideKey(addr, serial)];
}

function applyChange(d: Device, c: Record<string, unknown>): void {
  switch (c.k) {
    case 'count': {
      const ci = Number(c.ci);
      if (ci >= 0 && ci < NCOUNTERS) {
        const v = d.counters.aggregate[ci] + BigInt(c.n as string);
        d.counters.aggregate[ci] = v > U64_MAX ? U64_MAX : v;
      }
      break;
    }
    case 'clear': if (c.aggregate) d.counters.aggregate.fill(0n); break;
    // Only the memory part: the whole state (every record of the RAS log, serialized) per retired
    // row made replaying a storm's journal quadratic: 34 s for 25 s of one.
    case 'mem': applyMem(d, c.mem as DevState['mem'], typeof c.page === 'string' ? BigInt(c.page) : undefined); break;
    case 'event': { const e = evIn(d.index, c.e as Record<string, unknown>); if (e) restoreEvent(d, e); break; }
  }
}

/**
 * Open the state directory: restore every device's durable state (snapshot, then the journal),
 * compact into a fresh snapshot, and journal changes from now on. Never throws on damaged files:
 * what was found is in `report`.
 */
export function openPersistence(emu: Emulator, dir: string, opts: { compactBytes?: number } = {}): Persistence {
  makeDirs(dir);
  const snapFile = path.join(dir, 'state.json');
  const jFile = path.join(dir, 'journal.bin');
  const report: string[] = [];
  const byAddr = new Map([...emu.devices.values()].map((d) => [d.busAddr, d]));
  let snap: Snapshot | undefined;
  try {
    snap = JSON.parse(fs.readFileSync(snapFile, 'utf8')) as Snapshot;
    if (snap.version !== 1 || typeof snap.devices !== 'object') throw new Error('unknown snapshot format');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      const aside = `${snapFile}.corrupt-${Date.now()}`;
      try { fs.renameSync(snapFile, aside); } catch { /* keep going */ }
      report.push(`snapshot unreadable (${(e as Error).message}); set aside as ${path.basename(aside)}`);
    }
    snap = undefined;
  }
  const saved = snap?.devices ?? {};
  // Boards whose state is kept but who are not hosted now: displaced from their slot by another
  // board, or not configured (hot-plugged last time). They carry their state and journal tail
  // forward. By asideKey(addr, serial); '' for a board from before serials were kept.
  const absent = new Map<string, Device>();
  const absentOf = (addr: string, serial: string | undefined): Device => {
    const k = asideKey(addr, serial ?? '');
    let b = absent.get(k);
    if (!b) {
      const key = serial === undefined ? addr : stateKey(saved, addr, serial);
      b = absentBoard(addr, (key && saved[key]) || emptyState(serial));
      absent.set(k, b);
    }
    return b;
  };
  for (const d of emu.devices.values()) {
    const here = saved[d.busAddr];
    if (here?.serial !== undefined && here.serial !== d.serial) {
      report.push(`state for ${d.busAddr} belongs to board ${here.serial}, not ${d.serial}: kept as ${asideKey(d.busAddr, here.serial)}`);
      try { absentOf(d.busAddr, here.serial); } catch (e) { report.push(`state for ${d.busAddr} unusable: ${(e as Error).message}`); }
    }
    const key = stateKey(saved, d.busAddr, d.serial);
    if (!key) continue;
    try { applyState(d, saved[key]); } catch (e) { report.push(`state for ${key} unusable: ${(e as Error).message}`); }
  }
  for (const addr of Object.keys(saved)) {
    if (!addr.includes('@') && !byAddr.has(addr)) report.push(`state for ${addr} kept, no such device configured`);
  }
  const rec = recover(jFile);
  report.push(...rec.problems);
  const gen = snap?.gen ?? 0;
  let records = rec.records;
  const head = records.length ? journalGen(records[0]) : undefined;
  if (head !== undefined) {
    records = records.slice(1);
    // A crash between writing the snapshot and emptying the journal leaves a journal the snapshot
    // already holds: replaying it would count its changes twice.
    if (snap && head !== gen) {
      report.push(`journal of generation ${head} already in the snapshot (generation ${gen}): not replayed`);
      records = [];
    }
  }
  let replayed = 0;
  for (const r of records) {
    try {
      const c = JSON.parse(dec.decode(r)) as Record<string, unknown>;
      const addr = String(c.dev);
      // The board that wrote it: named in the record, else (older journals) the one in the slot.
      const serial = typeof c.serial === 'string' ? c.serial : saved[addr]?.serial;
      const d = byAddr.get(addr);
      const to = d && (serial === undefined || serial === d.serial) ? d : absentOf(addr, serial);
      applyChange(to, c);
      replayed++;
    } catch (e) { report.push(`journal record skipped: ${(e as Error).message}`); }
  }
  // Compact: everything is in memory now. Hosted boards take their slots; a board not hosted
  // keeps its slot if nobody else holds it, else waits aside.
  const devices = withHosted(saved, emu);
  for (const b of absent.values()) {
    const st = devState(b);
    if (b.serial === '') delete st.serial;
    keep(devices, b.busAddr, b.serial, st);
  }
  const journal = newGeneration(dir, gen + 1, devices);
  const p: Persistence = {
    dir, journal, report, replayed, dirty: false, saved: devices, onConfig: (e) => hotplug(p, e), gen: gen + 1,
    compactBytes: opts.compactBytes ?? COMPACT_BYTES, compact: () => compact(p, emu),
  };
  // First, so that the device's record, when the families announce it, already shows its history.
  emu.onConfig.unshift(p.onConfig);
  emu.journal = (d, c) => journalChange(p, d, c);
  emu.sync = () => syncPersistence(p);
  return p;
}

/** `saved` with every hosted board's state as it is now, in its slot (or aside, see keep). */
function withHosted(saved: Record<string, DevState>, emu: Emulator): Record<string, DevState> {
  const devices: Record<string, DevState> = { ...saved };
  for (const d of emu.devices.values()) {
    delete devices[d.busAddr];
    keep(devices, d.busAddr, d.serial, devState(d));
  }
  return devices;
}

/**
 * Write generation `gen`'s snapshot, then empty the journal and start it with `gen`: a crash in
 * between leaves a journal of the previous generation, which is then not replayed.
 */
function newGeneration(dir: string, gen: number, devices: Record<string, DevState>): Journal {
  const jFile = path.join(dir, 'journal.bin');
  writeAtomic(path.join(dir, 'state.json'), JSON.stringify({ version: 1, gen, devices } satisfies Snapshot));
  try { fs.truncateSync(jFile, 0); } catch { /* absent */ }
  const journal = openJournal(jFile);
  appendRecord(journal, enc.encode(JSON.stringify({ k: 'gen', gen })), true);
  return journal;
}

/** Fold the journal into a new snapshot, as start-up does: everything it holds is in memory. */
function compact(p: Persistence, emu: Emulator): void {
  syncJournal(p.journal);
  const devices = withHosted(p.saved, emu);
  closeJournal(p.journal);
  p.journal = newGeneration(p.dir, p.gen + 1, devices);
  p.gen++;
  p.saved = devices;
  p.dirty = false;
}

/**
 * mkdir -p, one level at a time. Node's own recursive mkdir loops forever where a parent exists
 * but refuses children with ENOENT (/proc/nope): here every failure is an error naming the path.
 */
export function makeDirs(dir: string): void {
  const full = path.resolve(dir);
  const parts = full.split(path.sep).filter(Boolean);
  let at = path.parse(full).root;
  for (const p of parts) {
    at = path.join(at, p);
    try {
      fs.mkdirSync(at);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let isDir = false;
      try { isDir = fs.statSync(at).isDirectory(); } catch { /* dangling link: report EEXIST */ }
      if (!isDir) throw e;
    }
  }
}

/** The generation a journal's first record names, if it is a generation header. */
function journalGen(r: Uint8Array): number | undefined {
  try {
    const o = JSON.parse(dec.decode(r)) as { k?: string; gen?: unknown };
    return o.k === 'gen' && typeof o.gen === 'number' ? o.gen : undefined;
  } catch { return undefined; }
}

function journalChange(p: Persistence, d: Device, c: Change): void {
  let o: Record<string, unknown>;
  switch (c.k) {
    case 'count': o = { k: 'count', ci: c.ci, n: String(c.n) }; break;
    case 'clear': o = { k: 'clear', aggregate: c.aggregate }; break;
    // The counts, and the page added (not the list: a storm retiring rows fast wrote megabytes a
    // second of lists).
    case 'mem': {
      const counts = { rowsActive: d.mem.rowsActive, rowsPending: d.mem.rowsPending, rma: d.mem.rma };
      o = { k: 'mem', mem: counts, page: c.page === undefined ? undefined : String(c.page) };
      break;
    }
    case 'event': o = { k: 'event', e: evOut(c.e) }; break;
  }
  o.dev = d.busAddr;
  o.serial = d.serial;
  appendRecord(p.journal, enc.encode(JSON.stringify(o)), false);
  p.dirty = true;
}

/** fsync what was journaled; called before an injection is acknowledged, and on every tick. */
export function syncPersistence(p: Persistence): void {
  if (!p.dirty) return;
  if (p.journal.size > p.compactBytes) {
    p.compact();
    return;
  }
  syncJournal(p.journal);
  p.dirty = false;
}

/**
 * A board plugged in at run time gets its state back, if one was kept for it (its journal records
 * then continue it); one unplugged leaves its state here, for when it comes back in this run.
 */
function hotplug(p: Persistence, e: ConfigEvent): void {
  const d = e.dev;
  if (e.kind === 'new') {
    const key = stateKey(p.saved, d.busAddr, d.serial);
    if (!key) return;
    try { applyState(d, p.saved[key]); } catch (err) { p.report.push(`state for ${key} unusable: ${(err as Error).message}`); }
  } else if (e.kind === 'del') keep(p.saved, d.busAddr, d.serial, devState(d));
}

export function closePersistence(emu: Emulator, p: Persistence): void {
  const i = emu.onConfig.indexOf(p.onConfig);
  if (i >= 0) emu.onConfig.splice(i, 1);
  syncPersistence(p);
  closeJournal(p.journal);
  emu.journal = undefined;
  emu.sync = undefined;
}
