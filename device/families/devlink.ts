// The kernel's devlink family, ABI-exact (ids, types, nesting from docs/netlink/specs/devlink.yaml),
// served for the emulated accelerators as a PCI driver would: handle pci/<PCI address>, info with
// driver, serials and versions, and the device's health reporters (the same Reporter objects the
// accel family shows) with diagnose, dump, recover and test. Errnos follow net/devlink/*.c.
import { NLA, type Writer, nestEnd, nestStart, putFlag, putString, putU64, putU8, setAttrMissing, setErrAttr, setErrMsg } from '../../attrs';
import { EAGAIN, EINVAL, ENODEV, EOPNOTSUPP } from '../../attrs/errno';
import type { DoCtx, DumpCtx, Family } from '../../genl';
import { dumpEach, notify } from '../../genl';
import { type DumpResult, type Failed, type Result, done, fail, fromStatus, isFailed, more } from '../../genl/result';
import { familyFromSpec, readRequest, writeAttrs } from '../../genl/ynl';
import { uptime } from 'os';
import { emitConfig } from '../emulator';
import { REPORTERS, type ReporterName, stateSays } from '../enums';
import { CMD, DEVLINK, type Devlink, GROUP, spec } from '../gen/devlink';
import { fmsgValue } from '../fmsg';
import { clearDump, diagnose, getDump, recover, testReporter } from '../health';
import type { Device, Reporter } from '../model';
import { type Served, dumpByKey, sortedDevices } from './common';

/** DEVLINK_HEALTH_REPORTER_STATE_* (the kernel's enum in include/net/devlink.h). */
const STATE_HEALTHY = 0;
const STATE_ERROR = 1;
/** fmsg items per dump message: small enough that a message always fits a datagram. */
const FMSG_ITEMS_PER_MSG = 16;

const handleOf = (d: Device): Devlink => ({ busName: d.busName, devName: d.busAddr });

/** CLOCK_BOOTTIME-style milliseconds of a wall-clock time, as DEVLINK_ATTR_HEALTH_REPORTER_DUMP_TS carries. */
const bootMs = (wallNs: bigint): number => Math.max(0, Math.floor(Number(wallNs / 1_000_000n) - (Date.now() - uptime() * 1000)));

function reporterAttrs(d: Device, r: Reporter): Devlink {
  const dumped = r.dump !== undefined;
  return {
    ...handleOf(d),
    healthReporter: {
      healthReporterName: r.name, healthReporterState: r.healthy ? STATE_HEALTHY : STATE_ERROR,
      healthReporterErrCount: r.errCount, healthReporterRecoverCount: r.recoverCount,
      healthReporterGracefulPeriod: r.gracePeriodMs, healthReporterAutoRecover: r.autoRecover ? 1 : 0,
      healthReporterAutoDump: r.autoDump ? 1 : 0,
      ...(dumped ? { healthReporterDumpTs: bootMs(r.dumpTsNs), healthReporterDumpTsNs: r.dumpTsNs } : {}),
    },
  };
}

function infoAttrs(d: Device): Devlink {
  const list = (o: Record<string, string>) => Object.entries(o).map(([infoVersionName, infoVersionValue]) => ({ infoVersionName, infoVersionValue }));
  return {
    ...handleOf(d), infoDriverName: d.driver, infoSerialNumber: d.serial, infoBoardSerialNumber: d.boardSerial,
    infoVersionFixed: list(d.versions.fixed), infoVersionRunning: list(d.versions.running), infoVersionStored: list(d.versions.stored),
  };
}

/** One fmsg item, as devlink_fmsg_prepare_skb() puts it. */
type Item = { k: 'start' | 'pair' | 'end' } | { k: 'name'; s: string } | { k: 'value'; v: string };

/** A diagnosis or dump as the kernel builds it: an object of name/value pairs. */
function fmsgItems(kv: [string, string][]): Item[] {
  const items: Item[] = [{ k: 'start' }];
  for (const [name, v] of kv) items.push({ k: 'pair' }, { k: 'name', s: name }, { k: 'value', v }, { k: 'end' });
  items.push({ k: 'end' });
  return items;
}

/** Values typed as a driver would put them: counts as u64, booleans as flags, the rest as strings. */
function putValue(w: Writer, s: string): void {
  const v = fmsgValue(s);
  if (typeof v === 'bigint') {
    putU8(w, DEVLINK.FMSG_OBJ_VALUE_TYPE, NLA.U64);
    putU64(w, DEVLINK.FMSG_OBJ_VALUE_DATA, v);
  } else if (typeof v === 'boolean') {
    putU8(w, DEVLINK.FMSG_OBJ_VALUE_TYPE, NLA.FLAG);
    putU8(w, DEVLINK.FMSG_OBJ_VALUE_DATA, v ? 1 : 0);
  } else {
    putU8(w, DEVLINK.FMSG_OBJ_VALUE_TYPE, NLA.NUL_STRING);
    putString(w, DEVLINK.FMSG_OBJ_VALUE_DATA, v);
  }
}

function putFmsg(w: Writer, items: Item[]): void {
  const nest = nestStart(w, DEVLINK.FMSG);
  for (const it of items) {
    switch (it.k) {
      case 'start': putFlag(w, DEVLINK.FMSG_OBJ_NEST_START); break;
      case 'pair': putFlag(w, DEVLINK.FMSG_PAIR_NEST_START); break;
      case 'end': putFlag(w, DEVLINK.FMSG_NEST_END); break;
      case 'name': putString(w, DEVLINK.FMSG_OBJ_NAME, it.s); break;
      case 'value': putValue(w, it.v); break;
    }
  }
  nestEnd(w, nest);
}

export function devlinkFamily(s: Served): Family {
  const { rt, srv } = s;
  const emu = rt.emu;
  const req = (c: DoCtx | DumpCtx): Devlink => readRequest<Devlink>(c, spec, 'devlink');

  /** devlink_get_from_attrs_lock(): both handle attributes, then the instance, or -errno. */
  const instance = (c: DoCtx | DumpCtx, a: Devlink): Device | Failed => {
    if (a.busName === undefined || a.devName === undefined) {
      setAttrMissing(c.ext, -1, a.busName === undefined ? DEVLINK.BUS_NAME : DEVLINK.DEV_NAME);
      return fail(EINVAL);
    }
    const d = a.busName === 'pci' ? sortedDevices(rt).find((x) => x.busAddr === a.devName) : undefined;
    if (!d) {
      setErrAttr(c.ext, c.attrs[DEVLINK.DEV_NAME], `no devlink instance ${a.busName}/${a.devName}`);
      return fail(ENODEV);
    }
    return d;
  };
  /** Accelerators have no devlink ports: a port index names nothing (devlink_port_get_from_attrs). */
  const noPort = (c: DoCtx | DumpCtx, a: Devlink): Failed | undefined => {
    if (a.portIndex === undefined) return undefined;
    setErrAttr(c.ext, c.attrs[DEVLINK.PORT_INDEX], `no port ${a.portIndex}`);
    return fail(ENODEV);
  };
  /** The reporter a request names: missing or unknown is EINVAL, as devlink_health_reporter_get_from_info() gives. */
  const reporter = (c: DoCtx | DumpCtx, d: Device, a: Devlink): Reporter | Failed => {
    const name = a.healthReporterName;
    if (name === undefined) { setAttrMissing(c.ext, -1, DEVLINK.HEALTH_REPORTER_NAME); return fail(EINVAL); }
    const r = (REPORTERS as readonly string[]).includes(name) ? d.reporters.get(name as ReporterName) : undefined;
    if (!r) {
      setErrAttr(c.ext, c.attrs[DEVLINK.HEALTH_REPORTER_NAME], `no reporter "${name}" (${REPORTERS.join(', ')})`);
      return fail(EINVAL);
    }
    return r;
  };
  /** A do naming a device and one of its reporters. */
  const onReporter = (f: (c: DoCtx, d: Device, r: Reporter, a: Devlink) => Result) => (c: DoCtx): Result => {
    const a = req(c);
    const d = instance(c, a);
    if (isFailed(d)) return d;
    const p = noPort(c, a);
    if (p) return p;
    const r = reporter(c, d, a);
    if (isFailed(r)) return r;
    const e = f(c, d, r, a);
    if (isFailed(e) && !c.ext.msg && (d.state === 'offline' || d.state === 'in-reset')) setErrMsg(c.ext, stateSays(d.busAddr, d.state));
    return e;
  };
  const replyWith = (c: DoCtx, cmd: number, a: Devlink): Result => { writeAttrs(c.reply(cmd), spec, 'devlink', a); c.end(); return done(); };

  /** An empty dump, of one instance (which must exist) or of all. */
  const noneDump = (c: DumpCtx): DumpResult => {
    const a = req(c);
    if (a.busName !== undefined || a.devName !== undefined) {
      const d = instance(c, a);
      if (isFailed(d)) return d;
    }
    return done();
  };

  const fam: Family = familyFromSpec(spec, {
    'get': {
      // Replies carry DEVLINK_CMD_NEW, as devlink_nl_get_doit()/dumpit fill them.
      do: (c) => { const d = instance(c, req(c)); return isFailed(d) ? d : replyWith(c, CMD.NEW, { ...handleOf(d), reloadFailed: 0 }); },
      dump: (c): DumpResult => {
        const devs = sortedDevices(rt);
        let i = (c.state.i as number) ?? 0;
        for (; i < devs.length; i++) {
          writeAttrs(c.start(CMD.NEW), spec, 'devlink', { ...handleOf(devs[i]), reloadFailed: 0 });
          if (!c.end()) break;
        }
        c.state.i = i;
        return i < devs.length ? more() : done();
      },
    },
    'port-get': {
      do: (c) => {
        const a = req(c);
        const d = instance(c, a);
        if (isFailed(d)) return d;
        if (a.portIndex === undefined) { setAttrMissing(c.ext, -1, DEVLINK.PORT_INDEX); return fail(EINVAL); }
        return noPort(c, a) ?? done();
      },
      dump: noneDump, // no ports anywhere
    },
    // Objects an accelerator has none of: the kernel dumps nothing for a driver that registers
    // none (`devlink dev param show`, `sb show`, ... print nothing and succeed).
    'sb-get': { dump: noneDump },
    'param-get': { dump: noneDump },
    'region-get': { dump: noneDump },
    'trap-get': { dump: noneDump },
    'trap-group-get': { dump: noneDump },
    'trap-policer-get': { dump: noneDump },
    'rate-get': { dump: noneDump },
    'linecard-get': { dump: noneDump },
    'info-get': {
      do: (c) => { const d = instance(c, req(c)); return isFailed(d) ? d : replyWith(c, CMD.INFO_GET, infoAttrs(d)); },
      dump: (c) => dumpByKey(c, sortedDevices(rt), (d) => d.index, (w, d) => writeAttrs(w, spec, 'devlink', infoAttrs(d))),
    },
    'health-reporter-get': {
      do: onReporter((c, d, r) => replyWith(c, CMD.HEALTH_REPORTER_GET, reporterAttrs(d, r))),
      dump: (c): DumpResult => {
        const a = req(c);
        let devs = sortedDevices(rt);
        if (a.busName !== undefined || a.devName !== undefined) {
          const d = instance(c, a);
          if (isFailed(d)) return d;
          const p = noPort(c, a);
          if (p) return p;
          devs = [d];
        } else if (a.portIndex !== undefined) return noPort(c, a)!;
        const pairs = devs.flatMap((d) => [...d.reporters.values()].map((r) => [d, r] as const));
        return dumpEach(c, pairs, (w, [d, r]) => writeAttrs(w, spec, 'devlink', reporterAttrs(d, r)));
      },
    },
    'health-reporter-set': {
      do: onReporter((c, d, r, a) => {
        if (a.healthReporterBurstPeriod !== undefined) {
          setErrAttr(c.ext, c.attrs[DEVLINK.HEALTH_REPORTER_BURST_PERIOD], 'burst period is not supported by this reporter');
          return fail(EOPNOTSUPP);
        }
        const grace = a.healthReporterGracefulPeriod;
        if (grace !== undefined && !Number.isSafeInteger(grace)) {
          // Held (and journaled) as a double, as accel's health-set holds it.
          setErrAttr(c.ext, c.attrs[DEVLINK.HEALTH_REPORTER_GRACEFUL_PERIOD], `grace period above ${Number.MAX_SAFE_INTEGER} ms`);
          return fail(EINVAL);
        }
        if (grace !== undefined) r.gracePeriodMs = Number(grace);
        if (a.healthReporterAutoRecover !== undefined) r.autoRecover = !!a.healthReporterAutoRecover;
        if (a.healthReporterAutoDump !== undefined) r.autoDump = !!a.healthReporterAutoDump;
        emitConfig(emu, { kind: 'health', dev: d, reporter: r.name });
        return done();
      }),
    },
    'health-reporter-recover': { do: onReporter((_c, d, r) => fromStatus(recover(emu, d, r.name))) },
    'health-reporter-diagnose': {
      do: onReporter((c, d, r) => {
        const w = c.reply(CMD.HEALTH_REPORTER_DIAGNOSE);
        putFmsg(w, fmsgItems(diagnose(d, r.name)));
        c.end();
        return done();
      }),
    },
    'health-reporter-dump-get': {
      // devlink_nl_health_reporter_dump_get_dumpit(): take the dump on the first call if there is
      // none, then send its items in order; a dump replaced meanwhile is EAGAIN ("trampled").
      dump: (c): DumpResult => {
        const st = c.state as { d?: Device; r?: Reporter; ts?: bigint; items?: Item[]; i?: number };
        if (!st.items) {
          const a = req(c);
          const d = instance(c, a);
          if (isFailed(d)) return d;
          const p = noPort(c, a);
          if (p) return p;
          const r = reporter(c, d, a);
          if (isFailed(r)) return r;
          st.items = fmsgItems(getDump(emu, d, r.name));
          Object.assign(st, { d, r, ts: r.dumpTsNs, i: 0 });
        }
        if (st.r!.dumpTsNs !== st.ts) return fail(EAGAIN, c.ext, 'Dump trampled, please retry');
        while (st.i! < st.items.length) {
          const chunk = st.items.slice(st.i!, st.i! + FMSG_ITEMS_PER_MSG);
          const w = c.start(CMD.HEALTH_REPORTER_DUMP_GET);
          putFmsg(w, chunk);
          if (!c.end()) return more();
          st.i! += chunk.length;
        }
        return done();
      },
    },
    'health-reporter-dump-clear': { do: onReporter((_c, d, r) => { clearDump(d, r.name); return done(); }) },
    'health-reporter-test': { do: onReporter((_c, d, r) => fromStatus(testReporter(emu, d, r.name))) },
  }, { generation: () => { let g = emu.devices.size; for (const d of emu.devices.values()) g += d.generation; return g; } });

  // Reporter events: the kernel multicasts DEVLINK_CMD_HEALTH_REPORTER_RECOVER (devlink_recover_notify)
  // when a reporter's state changes: an error reported, a recovery. Settings changes are not events.
  const seen = new WeakMap<Reporter, string>();
  const stamp = (r: Reporter) => `${r.healthy}/${r.errCount}/${r.recoverCount}`;
  for (const d of emu.devices.values()) for (const r of d.reporters.values()) seen.set(r, stamp(r));
  emu.onConfig.push((e) => {
    const d = e.dev;
    switch (e.kind) {
      case 'new':
        for (const r of d.reporters.values()) seen.set(r, stamp(r));
        notify(srv, fam, GROUP.CONFIG, CMD.NEW, (w) => writeAttrs(w, spec, 'devlink', { ...handleOf(d), reloadFailed: 0 }));
        break;
      case 'del':
        notify(srv, fam, GROUP.CONFIG, CMD.DEL, (w) => writeAttrs(w, spec, 'devlink', { ...handleOf(d), reloadFailed: 0 }));
        break;
      case 'health': {
        const r = d.reporters.get(e.reporter);
        if (!r || seen.get(r) === stamp(r)) break;
        seen.set(r, stamp(r));
        notify(srv, fam, GROUP.CONFIG, CMD.HEALTH_REPORTER_RECOVER, (w) => writeAttrs(w, spec, 'devlink', reporterAttrs(d, r)));
        break;
      }
      default: break;
    }
  });
  return fam;
}
