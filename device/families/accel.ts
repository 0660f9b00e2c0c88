// The accel family: devices, RAS counters and log, injection, health reporters, subscriptions.
// Everything on the wire (ids, policies, attribute encodings) comes from the spec via gen/accel.ts.
import { putRaw, setAttrMissing, setErrAttr, setErrMsg } from '../../attrs';
import { EBUSY, EEXIST, EINVAL, EMSGSIZE, ENODEV, ENOENT, ENOSPC, EOPNOTSUPP } from '../../attrs/errno';
import type { DoCtx, DumpCtx, Family } from '../../genl';
import {
  type DumpResult, type Failed, type Result, NATIVE_FORMAT, done, fail, fromStatus, isFailed, more, notify, serverStats,
  isAdmin, subscribe, subscribersOf, subscriptionsOf, unsubscribe,
} from '../../genl';
import { type Handlers, familyFromSpec, notifyEvent, readRequest, writeAttrs } from '../../genl/ynl';
import { addDevice, emitConfig, removeDevice, setState } from '../emulator';
import { BLOCKS, REPORTERS, SEVERITIES, type ReporterName, stateSays } from '../enums';
import { FORMATS, FRAGMENT, LOG_BATCH, countersOf, encodePayload, fragments } from '../formats';
import { formatMask, namesOf, supports } from '../formats/support';
import { type Accel, ACCEL, CMD, type Event, RAS_FORMAT_VALUES, type RasFormat, type Server, spec } from '../gen/accel';
import { clearDump, diagnose, getDump, overallHealth, recover, testReporter } from '../health';
import { type RasEvent, readFrom } from '../log';
import { type Device, counterIndex, versionList } from '../model';
import { type Folded, clearCounters, errorIdOf, inject, resetDevice } from '../ras';
import { capsAttrs } from './caps';
import { encodedRecord } from './records';
import { type Served, dumpByKey, sortedDevices, targetDevice } from './common';

const HANDLE = { index: ACCEL.DEV_INDEX, name: ACCEL.DEV_NAME, addr: ACCEL.BUS_ADDR };
/** Log records read per step of a ras-log-get chunk: a little more than one datagram holds. */
const LOG_READ_BATCH = 32;
/** Unicast subscribers allowed per group (documented limit; ENOSPC beyond). */
export const MAX_SUBSCRIBERS = 1024;
/** Unicast subscribers to one group from one non-admin uid (each costs a send per event batch). */
export const MAX_SUBSCRIBERS_PER_UID = 64;

export function devAttrs(d: Device): Accel {
  const t = d.tel;
  return {
    devIndex: d.index, devName: d.name, devPath: d.path, busName: d.busName, busAddr: d.busAddr, driver: d.driver,
    vendorId: d.vendorId, deviceId: d.deviceId, serial: d.serial, boardSerial: d.boardSerial, state: d.state,
    version: versionList(d), memTotal: d.memTotal, memUsed: d.memUsed, computeUnits: d.computeUnits,
    clockMhz: t.clockMhz, clockMaxMhz: t.clockMaxMhz, memClockMhz: t.memClockMhz, tempMc: t.tempMc, powerMw: t.powerMw,
    powerLimitMw: t.powerLimitMw, utilPct: t.utilPct, throttle: t.throttle, health: overallHealth(d),
    energyMj: Math.floor(t.energyMj), resets: d.resets, memory: memAttrs(d),
  };
}

const memAttrs = (d: Device): Accel['memory'] => ({
  rowsActive: d.mem.rowsActive, rowsPending: d.mem.rowsPending, badPage: d.mem.badPages,
  rmaThreshold: d.mem.rmaThreshold, rma: d.mem.rma ? 1 : 0,
});

export function rasAttrs(d: Device): Accel {
  const counter: NonNullable<Accel['counter']> = [];
  BLOCKS.forEach((block, b) => SEVERITIES.forEach((severity, s) => {
    const i = counterIndex(b, s);
    counter.push({ block, severity, volatile: d.counters.volatile[i], aggregate: d.counters.aggregate[i] });
  }));
  // serial: whose log `cursor` counts in (a board's state follows its serial; docs/reliability.md).
  return { devIndex: d.index, devName: d.name, busAddr: d.busAddr, serial: d.serial, counter, memory: memAttrs(d), cursor: d.log.next };
}

export const eventAttrs = (e: RasEvent): Event => {
  // One object shape for every event (the overflow fields are undefined, so not written).
  const over = e.kind === 'storm-overflow';
  return {
    devIndex: e.dev, seq: e.seq, tsNs: e.tsNs, kind: e.kind, block: e.block, severity: e.severity, errorId: e.errorId,
    errorName: e.errorName, count: e.count, address: e.address, syndrome: e.syndrome, action: e.action,
    folded: over ? e.folded : undefined, firstTsNs: over ? e.firstTsNs : undefined, lastTsNs: over ? e.lastTsNs : undefined,
  };
};

/**
 * The answer to an injection the storm limiter folded: the block's storm-overflow record as it will
 * be logged when the window closes, so far (`folded`, first and last time), without `seq`, which
 * only logged records have; count, address and syndrome are the injection's.
 */
function foldedAttrs(d: Device, f: Folded, a: Accel): Event {
  return {
    devIndex: d.index, tsNs: f.lastTsNs, kind: 'storm-overflow', block: f.block, severity: 'correctable',
    errorId: errorIdOf(f.block), errorName: f.block, count: a.count ?? 1, address: a.address === undefined ? 0n : BigInt(a.address),
    syndrome: a.syndrome ?? new Uint8Array(0), action: 'none', folded: f.folded, firstTsNs: f.firstTsNs, lastTsNs: f.lastTsNs,
  };
}

/** The server's counters and queues, as stats-get reports them. */
function serverAttrs(st: ReturnType<typeof serverStats>): Server {
  return {
    datagrams: st.datagrams, messages: st.messages, errors: st.errors, truncated: st.truncated, malformed: st.malformed,
    dumps: st.dumps, sendFailures: st.sendFailures, dropped: st.dropped, overruns: st.overruns, stalled: st.stalled,
    dumpsRunning: st.dumpsRunning, backlogPorts: st.backlogPorts, backlogDatagrams: st.backlogDatagrams,
    backlogBytes: st.backlogBytes, subscriptions: Object.values(st.subscribers).reduce((a, n) => a + n, 0),
    rejected: Object.entries(st.rejected).sort(([a], [b]) => a.localeCompare(b)).map(([errnoName, count]) => ({ errnoName, count })),
    racedSends: st.racedSends, unprovenSends: st.unprovenSends, busyPollUs: st.busyPollUs, busyPolled: st.busyPolled,
  };
}

function healthAttrs(d: Device, only?: ReporterName): Accel {
  const reporter = [...d.reporters.values()].filter((r) => !only || r.name === only).map((r) => ({
    name: r.name, state: r.healthy ? 'healthy' as const : 'error' as const, errCount: r.errCount,
    recoverCount: r.recoverCount, gracePeriodMs: r.gracePeriodMs, autoRecover: r.autoRecover ? 1 : 0,
    autoDump: r.autoDump ? 1 : 0, dumpTsNs: r.dumpTsNs, ...(r.lastMsg ? { lastError: r.lastMsg } : {}),
  }));
  return { devIndex: d.index, busAddr: d.busAddr, health: overallHealth(d), reporter };
}

/**
 * One device-keyed message per device (optionally only those `keep` accepts), resumed after the
 * last device index sent (devices removed between chunks shift nothing out).
 */
function dumpDevices(c: DumpCtx, s: Served, fill: (d: Device) => Accel, keep?: (d: Device) => boolean): DumpResult {
  const devs = sortedDevices(s.rt);
  return dumpByKey(c, keep ? devs.filter(keep) : devs, (d) => d.index, (w, d) => writeAttrs(w, spec, 'accel', fill(d)));
}

/** dev-get's record of `d`, encoded once per change of the device (records.ts). */
export const devRecord = (d: Device): Uint8Array => encodedRecord(d, (w, x) => writeAttrs(w, spec, 'accel', devAttrs(x)));

function reporterOf(c: DoCtx, name: string | undefined): ReporterName | Failed {
  if (name === undefined) { setAttrMissing(c.ext, -1, ACCEL.REPORTER_NAME); return fail(EINVAL); }
  if (!(REPORTERS as readonly string[]).includes(name)) {
    setErrAttr(c.ext, c.attrs[ACCEL.REPORTER_NAME], `no reporter "${name}" (${REPORTERS.join(', ')})`);
    return fail(ENOENT);
  }
  return name as ReporterName;
}

/**
 * The accel family. `extra` adds handlers implemented elsewhere (payload formats, buffers and jobs);
 * ops of the spec that nobody implements are left out rather than stubbed. `unimplemented` names
 * the ops of the spec that `extra` leaves out (bo-map without the shm addon).
 */
export function accelFamily(s: Served, extra: Handlers = {}, unimplemented: readonly string[] = []): Family {
  const { rt, srv } = s;
  const emu = rt.emu;
  const req = (c: DoCtx | DumpCtx): Accel => readRequest<Accel>(c, spec, 'accel');
  const dev = (c: DoCtx | DumpCtx, a: Accel): Device | Failed => targetDevice(rt, a, c.attrs, c.ext, HANDLE);
  const reply = (c: DoCtx, a: Accel): Result => { writeAttrs(c.reply(), spec, 'accel', a); c.end(); return done(); };
  /** A do on one device: resolve it, then run `f`. */
  const onDev = (f: (c: DoCtx, d: Device, a: Accel) => Result) => (c: DoCtx): Result => {
    const a = req(c);
    const d = dev(c, a);
    if (isFailed(d)) return d;
    const r = f(c, d, a);
    // An op refused because of the device's state says so (the errno alone reads "No such device").
    if (r.kind === 'error' && (r.errno === ENODEV || r.errno === EBUSY) && !c.ext.msg && (d.state === 'offline' || d.state === 'in-reset')) {
      setErrMsg(c.ext, stateSays(d.name, d.state));
    }
    return r;
  };
  const groupId = (c: DoCtx, name: string | undefined): number | Failed => {
    if (name === undefined) { setAttrMissing(c.ext, -1, ACCEL.GROUP); return fail(EINVAL); }
    const g = fam.mcgrps?.find((m) => m.name === name);
    if (!g) { setErrAttr(c.ext, c.attrs[ACCEL.GROUP], `no group "${name}"`); return fail(ENOENT); }
    return g.id!;
  };
  /** EOPNOTSUPP naming the format, when `d` does not offer it. */
  const unsupported = (c: DoCtx | DumpCtx, d: Device, f: RasFormat): Failed => {
    // Extack messages stay within the kernel's 80 bytes (NL_SET_ERR_MSG_FMT): a long list gives way to a pointer.
    const full = `${d.name} does not support format ${f} (has ${namesOf(formatMask(rt, d)).join(' ') || 'none'})`;
    setErrAttr(c.ext, c.attrs[ACCEL.FORMAT], full.length < 80 ? full : `${d.name} does not support format ${f} (caps-get lists its formats)`);
    return fail(EOPNOTSUPP);
  };
  const counterPayload = (d: Device, f: RasFormat): Accel =>
    ({ devIndex: d.index, format: f, payload: encodePayload(f, { type: 'counters', counters: countersOf(d, emu.clock.nowNs()) }) });
  // A subscriber's format is the server's concept (genl/subscriptions.ts): the ras-format value.
  const formatName = new Map(FORMATS.map((f) => [RAS_FORMAT_VALUES[f], f]));

  /**
   * A formatted log dump: up to LOG_BATCH records per payload document, each document cut into
   * FRAGMENT-sized payload attributes, every one but a document's last flagged payload-more.
   */
  function logPayloads(c: DumpCtx, d: Device, st: { cursor: bigint; limit: number; f: RasFormat; frags?: Uint8Array[]; fi?: number; next?: bigint; n?: number }): DumpResult {
    for (;;) {
      if (!st.frags) {
        if (st.limit <= 0) return done();
        const { events } = readFrom(d.log, st.cursor, Math.min(st.limit, LOG_BATCH));
        if (!events.length) return done();
        st.frags = fragments(encodePayload(st.f, { type: 'events', events }));
        st.fi = 0;
        st.next = events[events.length - 1].seq + 1n;
        st.n = events.length;
      }
      for (; st.fi! < st.frags.length; st.fi!++) {
        const notLast = st.fi! < st.frags.length - 1;
        writeAttrs(c.start(), spec, 'accel', { devIndex: d.index, format: st.f, payload: st.frags[st.fi!], payloadMore: notLast });
        if (!c.end()) return more();
      }
      st.cursor = st.next!;
      st.limit -= st.n!;
      st.frags = undefined;
    }
  }

  const fam: Family = familyFromSpec(spec, {
    'dev-get': {
      do: onDev((c, d) => { putRaw(c.reply(), devRecord(d)); c.end(); return done(); }),
      dump: (c) => {
        const st = c.state as { want?: Accel['state'] | null };
        if (st.want === undefined) st.want = req(c).state ?? null; // the request is parsed once, not per chunk
        const devs = sortedDevices(s.rt);
        return dumpByKey(c, st.want === null ? devs : devs.filter((d) => d.state === st.want), (d) => d.index,
          (w, d) => putRaw(w, devRecord(d)));
      },
    },
    'dev-set': {
      do: onDev((c, d, a) => {
        switch (a.action) {
          case 'reset': { const e = resetDevice(emu, d); emu.sync?.(); return fromStatus(e); }
          case 'offline': setState(emu, d, 'offline'); return done();
          case 'online':
            if (d.state === 'offline') setState(emu, d, 'operational');
            return done();
          default:
            setAttrMissing(c.ext, -1, ACCEL.ACTION);
            return fail(EINVAL);
        }
      }),
    },
    'dev-new': {
      do: (c) => {
        const a = req(c);
        try {
          const d = addDevice(emu, {
            index: a.devIndex, busAddr: a.busAddr?.replace(/^pci\//, ''),
            memTotal: a.memTotal === undefined ? undefined : BigInt(a.memTotal), computeUnits: a.computeUnits,
          });
          return reply(c, devAttrs(d));
        } catch (e) {
          return fail((e as { errno?: number }).errno || EEXIST, c.ext, (e as Error).message);
        }
      },
    },
    'dev-del': { do: onDev((_c, d) => { removeDevice(emu, d); return done(); }) },
    'ras-get': {
      do: onDev((c, d, a) => {
        if (a.format === undefined) return reply(c, rasAttrs(d));
        const f = a.format as RasFormat;
        if (!supports(rt, d, f)) return unsupported(c, d, f);
        const r = counterPayload(d, f);
        if (r.payload!.length > FRAGMENT) return fail(EMSGSIZE, c.ext, 'counter payload over one attribute');
        return reply(c, r);
      }),
      dump: (c) => {
        const f = req(c).format as RasFormat | undefined;
        if (f === undefined) return dumpDevices(c, s, rasAttrs);
        if (c.state.i === undefined) {
          const bad = sortedDevices(rt).find((d) => !supports(rt, d, f));
          if (bad) return unsupported(c, bad, f);
        }
        return dumpDevices(c, s, (d) => counterPayload(d, f));
      },
    },
    'ras-clear': {
      do: onDev((_c, d, a) => {
        clearCounters(emu, d, !!a.aggregate);
        emu.sync?.();
        return done();
      }),
    },
    'ras-inject': {
      do: onDev((c, d, a) => {
        if (a.block === undefined) { setAttrMissing(c.ext, -1, ACCEL.BLOCK); return fail(EINVAL); }
        if (a.severity === undefined) { setAttrMissing(c.ext, -1, ACCEL.SEVERITY); return fail(EINVAL); }
        if (typeof a.block === 'number' || typeof a.severity === 'number') {
          setErrAttr(c.ext, c.attrs[typeof a.block === 'number' ? ACCEL.BLOCK : ACCEL.SEVERITY], 'unknown block or severity');
          return fail(EINVAL);
        }
        let folded: Folded | undefined;
        const out = inject(emu, d, {
          block: a.block, severity: a.severity, subBlock: a.subBlock, count: a.count,
          address: a.address === undefined ? undefined : BigInt(a.address), syndrome: a.syndrome,
        }, (f) => { folded = f; });
        if (typeof out === 'number') return fail(-out, c.ext, stateSays(d.name, d.state));
        emu.sync?.(); // durable before it is acknowledged
        const event = out.map(eventAttrs);
        // Folded by the storm limiter: the counters have it, the log will have it in the window's
        // storm-overflow record. Say so rather than answer nothing (F6): that record as it stands,
        // without a seq (it is not in the log yet), carrying this injection's own fields.
        if (folded) event.unshift(foldedAttrs(d, folded, a));
        return reply(c, { devIndex: d.index, event });
      }),
    },
    'ras-log-get': {
      dump: (c) => {
        const st = c.state as { d?: Device; cursor?: bigint; lost?: bigint; limit?: number; f?: RasFormat; frags?: Uint8Array[]; fi?: number; next?: bigint; n?: number };
        if (!st.d) {
          const a = req(c);
          const d = dev(c, a);
          if (isFailed(d)) return d;
          const f = a.format as RasFormat | undefined;
          if (f !== undefined && !supports(rt, d, f)) return unsupported(c, d, f);
          const cursor = a.cursor === undefined ? 1n : BigInt(a.cursor);
          const lost = readFrom(d.log, cursor, 0).lost;
          // The dump ends where the log ended when it started: in a storm it would never finish otherwise.
          const avail = Number(d.log.next - (cursor + lost > d.log.next ? d.log.next : cursor + lost));
          Object.assign(st, { d, f, cursor: cursor + lost, lost, limit: Math.min(a.limit ?? Infinity, avail) });
        }
        const d = st.d!;
        if (st.lost) {
          writeAttrs(c.start(), spec, 'accel', { devIndex: d.index, lost: st.lost, format: st.f });
          if (!c.end()) return more();
          st.lost = 0n;
        }
        if (st.f !== undefined) return logPayloads(c, d, st as Required<typeof st>);
        // Read a few more records than one datagram holds (about 26 of 140 bytes), batch after
        // batch until the datagram is full: reading 256 per chunk read ten times what was sent.
        for (;;) {
          const { events, lost } = readFrom(d.log, st.cursor!, Math.min(st.limit!, LOG_READ_BATCH));
          if (lost) {
            // The ring overtook the dump: say how many records it overwrote before they were read.
            writeAttrs(c.start(), spec, 'accel', { devIndex: d.index, lost });
            if (!c.end()) return more();
            st.cursor = st.cursor! + lost;
            st.limit = st.limit! - Number(lost);
          }
          if (!events.length) return done();
          for (const e of events) {
            if (st.limit! <= 0) return done();
            writeAttrs(c.start(), spec, 'accel', { devIndex: d.index, event: [eventAttrs(e)] });
            if (!c.end()) return more();
            st.cursor = e.seq + 1n;
            st.limit!--;
          }
          if (st.limit! <= 0) return done();
        }
      },
    },
    'health-get': {
      do: onDev((c, d, a) => {
        let only: ReporterName | undefined;
        if (a.reporterName !== undefined) {
          const r = reporterOf(c, a.reporterName);
          if (isFailed(r)) return r;
          only = r;
        }
        return reply(c, healthAttrs(d, only));
      }),
      dump: (c) => dumpDevices(c, s, (d) => healthAttrs(d)),
    },
    'health-set': {
      do: onDev((c, d, a) => {
        const name = reporterOf(c, a.reporterName);
        if (isFailed(name)) return name;
        const r = d.reporters.get(name)!;
        if (a.gracePeriodMs !== undefined) r.gracePeriodMs = Number(a.gracePeriodMs);
        if (a.autoRecover !== undefined) r.autoRecover = !!a.autoRecover;
        if (a.autoDump !== undefined) r.autoDump = !!a.autoDump;
        emitConfig(emu, { kind: 'health', dev: d, reporter: name });
        return done();
      }),
    },
    'health-recover': {
      do: onDev((c, d, a) => { const r = reporterOf(c, a.reporterName); return isFailed(r) ? r : fromStatus(recover(emu, d, r)); }),
    },
    'health-diagnose': {
      do: onDev((c, d, a) => {
        const r = reporterOf(c, a.reporterName);
        if (isFailed(r)) return r;
        return reply(c, { devIndex: d.index, reporterName: r, kv: diagnose(d, r).map(([key, value]) => ({ key, value })) });
      }),
    },
    'health-dump': {
      do: onDev((c, d, a) => {
        const r = reporterOf(c, a.reporterName);
        if (isFailed(r)) return r;
        if (a.aggregate) { clearDump(d, r); return done(); }
        return reply(c, { devIndex: d.index, reporterName: r, kv: getDump(emu, d, r).map(([key, value]) => ({ key, value })) });
      }),
    },
    'health-test': {
      do: onDev((c, d, a) => { const r = reporterOf(c, a.reporterName); return isFailed(r) ? r : fromStatus(testReporter(emu, d, r)); }),
    },
    'subscribe': {
      do: (c) => {
        const a = req(c);
        const g = groupId(c, a.group);
        if (isFailed(g)) return g;
        const f = a.format as RasFormat | undefined;
        if (f !== undefined) {
          if (a.group !== 'ras') { setErrAttr(c.ext, c.attrs[ACCEL.FORMAT], 'format applies to the ras group only'); return fail(EINVAL); }
          const bad = sortedDevices(rt).find((d) => !supports(rt, d, f));
          if (bad) return unsupported(c, bad, f);
        }
        const me = c.owner();
        if (me.gone) return done(); // a closed socket's request: nothing to subscribe
        const subs = subscribersOf(subscriptionsOf(srv), g);
        if (subs.size - (subs.has(me) ? 1 : 0) >= MAX_SUBSCRIBERS) {
          return fail(ENOSPC, c.ext, `group already has ${MAX_SUBSCRIBERS} subscribers`);
        }
        const uid = me.uid;
        if (!isAdmin(srv, c.sender)) {
          let mine = 0;
          for (const o of subs.keys()) if (o !== me && o.uid === uid) mine++;
          if (mine >= MAX_SUBSCRIBERS_PER_UID) {
            return fail(ENOSPC, c.ext, `uid ${uid} already has ${MAX_SUBSCRIBERS_PER_UID} subscribers to ${a.group}`);
          }
        }
        // One subscription per socket and group: a new format replaces the old one.
        subscribe(subscriptionsOf(srv), me, g, f === undefined ? NATIVE_FORMAT : RAS_FORMAT_VALUES[f]);
        return done();
      },
    },
    'unsubscribe': {
      do: (c) => {
        const g = groupId(c, req(c).group);
        if (isFailed(g)) return g;
        unsubscribe(subscriptionsOf(srv), c.owner(), g);
        return done();
      },
    },
    'stats-get': { do: (c) => reply(c, { server: serverAttrs(serverStats(srv)) }) },
    'caps-get': {
      do: onDev((c, d) => reply(c, capsAttrs(rt, fam, d))),
      dump: (c) => dumpDevices(c, s, (d) => capsAttrs(rt, fam, d)),
    },
    ...extra,
  }, { unimplemented, generation: () => { let g = rt.emu.devices.size; for (const d of rt.emu.devices.values()) g += d.generation; return g; } });

  emu.onRas.push((d, e) => {
    const native: Accel = { devIndex: e.dev, event: [eventAttrs(e)] };
    // Formatted subscribers: the server asks once per format somebody asked for; a device without
    // the format sends its native form. An encoder that throws costs only its own subscribers.
    notify(srv, fam, 'ras', CMD.RAS_EVENT_NTF, (w) => writeAttrs(w, spec, 'accel', native), (code) => (w) => {
      const f = formatName.get(code);
      writeAttrs(w, spec, 'accel', f && supports(rt, d, f)
        ? { devIndex: e.dev, format: f, payload: encodePayload(f, { type: 'events', events: [e] }) }
        : native);
    });
  });
  emu.onConfig.push((e) => {
    const d = e.dev;
    switch (e.kind) {
      case 'new': notifyEvent(srv, fam, spec, 'dev-add-ntf', devAttrs(d)); break;
      case 'del': notifyEvent(srv, fam, spec, 'dev-del-ntf', { devIndex: d.index, devName: d.name, busAddr: d.busAddr }); break;
      case 'state': notifyEvent(srv, fam, spec, 'dev-state-ntf',
        { devIndex: d.index, devName: d.name, busAddr: d.busAddr, state: d.state, health: overallHealth(d) }); break;
      case 'health': notifyEvent(srv, fam, spec, 'health-ntf', healthAttrs(d, e.reporter)); break;
    }
  });
  return fam;
}
