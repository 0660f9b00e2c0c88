// Dumps: a full device dump with 1024 emulated devices and a RAS-log dump of 100k events from our
// daemon, against the kernel dumping its own families (GETFAMILY, GETPOLICY of every family)
// through the same client code path, compared per byte. The client's decode is included.
import * as fs from 'fs';
import * as G from '../genl';
import { putU16 } from '../attrs';
import { readAttrs, writeAttrs } from '../genl/ynl';
import { connectAccel } from '../device/client';
import { CMD, spec } from '../device/gen/accel';
import { startChild } from './_daemon';
import { fmt, quick, smoke, report, table } from './_lib';

interface Run { msgs: number; bytes: number; ms: number }

async function timeDump(c: G.Client, type: number, cmd: number, fill: G.RequestOptions['fill'], decode: (m: G.Message) => unknown): Promise<Run> {
  const t0 = process.hrtime.bigint();
  let msgs = 0;
  let bytes = 0;
  for await (const m of c.dump(type, cmd, { fill, timeoutMs: 30000 })) {
    msgs++;
    bytes += m.len;
    decode(m);
  }
  return { msgs, bytes, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

/**
 * The median of `n` runs after warming up (JIT on both sides): `warm` runs, and more until
 * `warmMs` have passed. Never the best; the run carries the spread of the times (msMin, msMax).
 */
async function median(n: number, f: () => Promise<Run>, warm = 1, warmMs = 0): Promise<Run & { msMin: number; msMax: number }> {
  const until = performance.now() + warmMs;
  for (let i = 0; i < warm || performance.now() < until; i++) await f();
  const runs: Run[] = [];
  for (let i = 0; i < n; i++) runs.push(await f());
  runs.sort((x, y) => x.ms - y.ms);
  return { ...runs[runs.length >> 1], msMin: runs[0].ms, msMax: runs[runs.length - 1].ms };
}

async function main(): Promise<void> {
  const port = 0x41470000 + (process.pid & 0xffff);
  const ndev = smoke ? 16 : quick ? 128 : 1024;
  const nev = smoke ? 1000 : quick ? 10000 : 100000;
  const file = `/tmp/accelnl-dump-${process.pid}.yaml`;
  fs.writeFileSync(file, `storm: { burst: 1000000 }\ndevices:\n  - { log-capacity: 131072 }\n${'  - {}\n'.repeat(ndev - 1)}`);
  const child = await startChild(port, ['--config', file]);
  const kernel = G.createClient({ protocol: G.NETLINK_GENERIC, serverPort: 0, rcvbuf: 8 << 20 });
  const ac = await connectAccel({ serverPort: port, rcvbuf: 8 << 20 });
  try {
    // Fill device 0's log: injections pipelined 256 at a time.
    for (let i = 0; i < nev; i += 256) {
      const batch = [];
      for (let j = i; j < Math.min(nev, i + 256); j++) batch.push(ac.do(CMD.RAS_INJECT, { devIndex: 0, block: 'pcie', severity: 'correctable' }));
      await Promise.all(batch);
    }
    const decodeAccel = (m: G.Message) => readAttrs(m.v, m.attrs, m.end, spec, 'accel');
    const fams: G.FamilyInfo[] = [];
    for await (const m of kernel.dump(G.GENL_ID_CTRL, G.CTRL_CMD.GETFAMILY)) fams.push(G.parseFamily(m));
    // DUMP_ROUNDS=N: more rounds (for a steadier median, or a profile with ACCELNL_BENCH_PROF);
    // DUMP_ONLY=dev|log: profile one of our two dumps alone (the other is then not timed).
    const rounds = Number(process.env.DUMP_ROUNDS) || (smoke ? 1 : quick ? 3 : 5);
    const only = process.env.DUMP_ONLY;
    // A 128-device dump is under 1 ms once compiled; its first 50-odd runs (1-18 ms, 2-4 typical)
    // measure V8 compiling the daemon's dump path and the client's decoder in tiers (on the same
    // two cores), not the steady state of a polling agent. So it warms up for a second of dumps
    // first (a 1024-device dump, 8 times longer, warms up in fewer runs), then takes more rounds.
    // The log dump warms up the same way.
    const devRounds = Number(process.env.DUMP_ROUNDS) || (smoke ? 1 : quick ? 15 : 9);
    const devDump = await median(only === 'log' ? 1 : devRounds, () => timeDump(ac.genl, ac.family.id, CMD.DEV_GET, undefined, decodeAccel),
      1, smoke ? 0 : 1000);
    const logDump = await median(only === 'dev' ? 1 : rounds, () => timeDump(ac.genl, ac.family.id, CMD.RAS_LOG_GET,
      (w) => writeAttrs(w, spec, 'accel', { devIndex: 0 }), decodeAccel), 1, smoke ? 0 : 1000);
    const famDump = await median(rounds * 4, () => timeDump(kernel, G.GENL_ID_CTRL, G.CTRL_CMD.GETFAMILY, undefined, G.parseFamily));
    // Every family's policy, one dump each: the kernel's biggest dumps.
    const polDump = await median(rounds, async () => {
      const tot: Run = { msgs: 0, bytes: 0, ms: 0 };
      for (const f of fams) {
        try {
          const r = await timeDump(kernel, G.GENL_ID_CTRL, G.CTRL_CMD.GETPOLICY,
            (w) => putU16(w, G.CTRL_ATTR.FAMILY_ID, f.id), () => 0);
          tot.msgs += r.msgs; tot.bytes += r.bytes; tot.ms += r.ms;
        } catch { /* families without policies: ENODATA */ }
      }
      return tot;
    });
    const kernelNsPerByte = ((famDump.ms + polDump.ms) * 1e6) / (famDump.bytes + polDump.bytes);
    const row = (name: string, r: Run & { msMin: number; msMax: number }, ref: number) => ({
      dump: name, messages: fmt(r.msgs), bytes: fmt(r.bytes), 'ms median (min-max)': `${fmt(r.ms, 1)} (${fmt(r.msMin, 1)}-${fmt(r.msMax, 1)})`, 'msg/s': fmt(r.msgs / (r.ms / 1000)),
      'MB/s': fmt(r.bytes / 1e6 / (r.ms / 1000), 1), 'ns/byte': fmt((r.ms * 1e6) / r.bytes, 1), 'vs kernel/byte': fmt(((r.ms * 1e6) / r.bytes) / ref, 2),
    });
    table(`Dumps through one client (decode included)${quick ? ' (quick)' : ''}`, [
      row(`accel dev-get, ${ndev} devices`, devDump, kernelNsPerByte),
      row(`accel ras-log-get, ${fmt(nev)} events`, logDump, kernelNsPerByte),
      row('kernel nlctrl GETFAMILY (all families)', famDump, kernelNsPerByte),
      row('kernel nlctrl GETPOLICY (every family)', polDump, kernelNsPerByte),
    ]);
    report('dump', { ndev, nev, devDump, logDump, famDump, polDump, kernelNsPerByte });
  } finally {
    kernel.close();
    ac.close();
    await child.stop();
    fs.rmSync(file, { force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
