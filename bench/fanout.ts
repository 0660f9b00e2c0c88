// Event fan-out: RAS events generated inside the daemon (a simulated storm), delivered to 1, 8 and
// 32 kernel-multicast subscribers in this process. Counts events per second delivered and events
// each subscriber missed (ENOBUFS), then reads the missed ones back from the RAS log to prove that
// no loss is unrecoverable.
import * as A from '../attrs';
import { connectAccel } from '../device/client';
import { ACCEL, CMD, EVENT } from '../device/gen/accel';
import { openSocket, NETLINK_USERSOCK } from '../genl';
import { startChild } from './_daemon';
import { fmt, quick, smoke, report, table } from './_lib';

interface Sub { seen: Map<number, Set<number>>; count: number; overruns: number; close(): void }

function subscriber(group: number, famId: number, serverPort: number): Sub {
  const s: Sub = { seen: new Map(), count: 0, overruns: 0, close: () => sock.close() };
  const sock = openSocket({
    protocol: NETLINK_USERSOCK, rcvbuf: 8 << 20, backend: 'native',
    onOverrun: () => { s.overruns++; },
    onBatch: (b) => {
      for (let i = 0; i < b.count; i++) {
        if (b.port(i) !== serverPort) continue;
        const v = A.view(b.data(i));
        let at = 0;
        while (at + 20 <= v.buf.length) {
          const len = v.dv.getUint32(at, true);
          if (len < 16 || at + len > v.buf.length) break;
          if (v.dv.getUint16(at + 4, true) === famId && v.buf[at + 16] === CMD.RAS_EVENT_NTF) {
            let dev = -1, seq = -1;
            A.walk(v, at + 20, at + len, (a, t) => {
              if (t === ACCEL.DEV_INDEX) dev = A.getU32(v, a);
              else if (t === ACCEL.EVENT) A.walk(v, a + 4, a + A.attrLen(v, a), (x, tt) => { if (tt === EVENT.SEQ) seq = Number(A.getU64(v, x)); });
            });
            let set = s.seen.get(dev);
            if (!set) s.seen.set(dev, (set = new Set()));
            set.add(seq);
            s.count++;
          }
          at += (len + 3) & ~3;
        }
      }
    },
  });
  sock.addMembership(group);
  return s;
}

async function run(nsubs: number, rate: number, ms: number, port: number) {
  const cfg = `tick-ms: 20\nstorm: { burst: 1000000 }\ndevices: [{ log-capacity: 1048576 }]\n`;
  const fs = await import('fs');
  const file = `/tmp/accelnl-fanout-${process.pid}.yaml`;
  fs.writeFileSync(file, cfg + `simulate: { pcie: { correctable: ${rate} } }\n`);
  const child = await startChild(port, ['--config', file]);
  const c = await connectAccel({ serverPort: port });
  const subs: Sub[] = [];
  try {
    const group = c.family.groups.get('ras')!;
    const [before] = await c.dump(CMD.RAS_GET);
    const first = Number(before.cursor);
    for (let i = 0; i < nsubs; i++) subs.push(subscriber(group, c.family.id, port));
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, ms));
    const [after] = await c.dump(CMD.RAS_GET);
    const el = (Date.now() - t0) / 1000;
    const last = Number(after.cursor) - 1;
    await new Promise((r) => setTimeout(r, 300)); // let the subscribers drain what is in flight
    for (const s of subs) s.close();
    const produced = last - first + 1;
    // Which events did each subscriber miss? They are read back from the log (the recovery path).
    let missed = 0, unrecovered = 0;
    const logSeqs = new Set<number>();
    for (const m of await c.dump(CMD.RAS_LOG_GET, { devIndex: 0, cursor: first })) {
      for (const e of m.event ?? []) logSeqs.add(Number(e.seq));
    }
    for (const s of subs) {
      const got = s.seen.get(0) ?? new Set();
      for (let q = first; q <= last; q++) {
        if (got.has(q)) continue;
        missed++;
        if (!logSeqs.has(q)) unrecovered++;
      }
    }
    let delivered = 0;
    for (const s of subs) for (const q of s.seen.get(0) ?? []) if (q >= first && q <= last) delivered++;
    return { nsubs, produced, eventsPerSec: produced / el, deliveredPerSec: delivered / el, missed, unrecovered,
      overruns: subs.reduce((a, s) => a + s.overruns, 0) };
  } finally {
    c.close();
    await child.stop();
    fs.rmSync(file, { force: true });
  }
}

async function main(): Promise<void> {
  const base = 0x41460000 + (process.pid & 0xfff);
  const rate = quick ? 20000 : 100000;
  const ms = smoke ? 150 : quick ? 500 : 3000;
  const out = [];
  // 32 subscribers in one process cannot keep up with the full storm on two cores: they get a
  // third of it, which still makes them miss (and recover) events.
  for (const [i, n] of (smoke ? [2] : quick ? [1, 8] : [1, 8, 32]).entries()) out.push(await run(n, n > 8 ? rate / 3 : rate, ms, base + i));
  table(`RAS event fan-out, kernel multicast (storm of ${fmt(rate)} events/s requested)${quick ? ' (quick)' : ''}`, out.map((r) => ({
    subscribers: r.nsubs, 'events/s': fmt(r.eventsPerSec), 'delivered/s (all subs)': fmt(r.deliveredPerSec),
    'missed (ENOBUFS)': r.missed, 'recovered from log': r.missed - r.unrecovered, unrecovered: r.unrecovered,
  })));
  report('fanout', out);
}

main().catch((e) => { console.error(e); process.exit(1); });
