// Scale and memory: daemon start-up time (spawn to ready line) and resident memory with 1, 64 and
// 1024 devices, and the per-device cost derived from them.
import * as fs from 'fs';
import { startChild } from './_daemon';
import { fmt, quick, smoke, report, table } from './_lib';

/**
 * CPU time of the daemon's main thread so far (ms), from /proc/<pid>/schedstat: beside the wall
 * time to ready, because on a shared machine the wall time measures the neighbours' load first.
 */
function mainCpuMs(pid: number): number {
  try { return Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6; } catch { return NaN; }
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

async function one(n: number, port: number): Promise<{ devices: number; readyMs: number; cpuMs: number; rssMiB: number }> {
  const file = `/tmp/accelnl-scale-${process.pid}-${n}.yaml`;
  fs.writeFileSync(file, `devices:\n${'  - {}\n'.repeat(n)}`);
  const t0 = process.hrtime.bigint();
  const c = await startChild(port, ['--config', file]);
  const readyMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpuMs = mainCpuMs(c.proc.pid!);
  await new Promise((r) => setTimeout(r, 300)); // let start-up garbage settle
  const rss = rssKiB(c.proc.pid!) / 1024;
  await c.stop();
  fs.rmSync(file, { force: true });
  return { devices: n, readyMs, cpuMs, rssMiB: rss };
}

async function main(): Promise<void> {
  const base = 0x41480000 + (process.pid & 0xfff);
  const sizes = smoke ? [1, 4] : quick ? [1, 64] : [1, 64, 1024];
  const rounds = smoke ? 1 : 3;
  const out = [];
  for (const [i, n] of sizes.entries()) {
    // The median round (by ready time), never the best; the spread of ready times beside it.
    const xs = [];
    for (let r = 0; r < rounds; r++) xs.push(await one(n, base + i * 8 + r));
    xs.sort((x, y) => x.readyMs - y.readyMs);
    const cpu = xs.map((x) => x.cpuMs).sort((a, b) => a - b);
    out.push({ ...xs[xs.length >> 1], readyMinMs: xs[0].readyMs, readyMaxMs: xs[xs.length - 1].readyMs, cpuMedianMs: cpu[cpu.length >> 1] });
  }
  const perDev = (out[out.length - 1].rssMiB - out[0].rssMiB) / (out[out.length - 1].devices - 1);
  table(`Daemon start-up and memory${quick ? ' (quick)' : ''}`, out.map((r) => ({
    devices: r.devices, 'ready ms, spawn to ready line: median (min-max)': `${fmt(r.readyMs)} (${fmt(r.readyMinMs)}-${fmt(r.readyMaxMs)})`,
    'main-thread CPU ms to ready, median': fmt(r.cpuMedianMs), 'RSS (MiB)': fmt(r.rssMiB, 1),
  })));
  console.log(`per idle device: ${fmt(perDev * 1024)} KiB`);
  report('scale', { runs: out, perDeviceMiB: perDev });
}

main().catch((e) => { console.error(e); process.exit(1); });
