// Collects the JSON reports of a benchmark run into bench/results/summary.json (each figure with
// its goal and anchor) and draws the main figures as an SVG bar chart of "how far past the goal".
// Every figure is a median (the reports hold the spreads); the goals are issue 17's.
'use strict';
const fs = require('fs');
const path = require('path');

function load(dir, name) {
  try { return JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), 'utf8')); } catch { return undefined; }
}

/** {label, value (a median), goal, unit, higher (is better), detail (anchor, spread)} from whatever reports exist. */
function figures(dir) {
  const out = [];
  const add = (label, value, goal, unit, higher, detail = '') => {
    if (typeof value === 'number' && Number.isFinite(value)) out.push({ label, value, goal, unit, higher, detail });
  };
  const kf = (x) => Math.round(x).toLocaleString('en-US');
  const r2 = (x) => x.toFixed(2);
  const codec = load(dir, 'codec');
  if (codec) add('TLV codec vs netlink pkg', codec.data.ratio, 5, 'x', true);
  const rate = load(dir, 'rate');
  if (rate) {
    const st = rate.data.stats || {};
    const sp = (key) => (st[key] ? `${kf(st[key].median)}/s (${kf(st[key].min)}-${kf(st[key].max)})` : `${kf(rate.data[key])}/s`);
    add('sequential requests vs C userspace floor', rate.data.ours_1 / rate.data.floor_1, 0.85, 'x', true,
      `ours ${sp('ours_1')}, floor ${sp('floor_1')}, kernel ${sp('kernel_1')} (ours/kernel ${r2(rate.data.ours_1 / rate.data.kernel_1)})`);
    add('pipelined requests (32) vs kernel', rate.data.ours_32 / rate.data.kernel_32, 1.2, 'x', true, `ours ${sp('ours_32')}, kernel ${sp('kernel_32')}`);
    if (rate.data.joined_1) {
      add('sequential, answers joined (our client\'s default) vs floor', rate.data.joined_1 / rate.data.floor_1, 0.85, 'x', true,
        `joined ${sp('joined_1')}, floor ${sp('floor_1')}`);
      add('pipelined (32), answers joined (our client\'s default) vs kernel', rate.data.joined_32 / rate.data.kernel_32, 1.2, 'x', true,
        `joined ${sp('joined_32')}, kernel ${sp('kernel_32')}`);
    }
    if (rate.data.busy_1) {
      const us = rate.data.busyPollUs;
      add(`sequential, daemon with --busy-poll ${us} vs floor`, rate.data.busy_1 / rate.data.floor_1, 0.85, 'x', true,
        `busy ${sp('busy_1')}, joined ${r2(rate.data.busyjoined_1 / rate.data.floor_1)}x, C client ${r2(rate.data.cbusy_1 / rate.data.floor_1)}x; floor ${sp('floor_1')}`);
      add(`pipelined (32), daemon with --busy-poll ${us} vs kernel`, rate.data.busy_32 / rate.data.kernel_32, 1.2, 'x', true,
        `busy ${sp('busy_32')}, joined ${r2(rate.data.busyjoined_32 / rate.data.kernel_32)}x; kernel ${sp('kernel_32')}`);
    }
    if (rate.data.pollclient_1 && rate.data.floorpoll_1) {
      // Like for like: our client and daemon both polling, against the C pair both polling.
      add(`sequential, client and daemon polling ${rate.data.busyPollUs} µs vs polling floor`, rate.data.pollclient_1 / rate.data.floorpoll_1, 0.85, 'x', true,
        `ours ${sp('pollclient_1')}, polling floor ${sp('floorpoll_1')}, C client ${r2(rate.data.cpoll_1 / rate.data.floorpoll_1)}x; ours/floor ${r2(rate.data.pollclient_1 / rate.data.floor_1)}x`);
    }
    if (rate.data.cgenl_1) {
      // The daemon alone, like for like: the C client against ours and against a C server that sends
      // the same two datagrams (bench/floor.c genl-server).
      add('sequential, daemon vs C genl server (same C client, same datagrams)', rate.data.cours_1 / rate.data.cgenl_1, 0.85, 'x', true,
        `ours ${sp('cours_1')}, C genl server ${sp('cgenl_1')}; both polling ${r2(rate.data.cpoll_1 / rate.data.cgenlpoll_1)}x (${sp('cpoll_1')} / ${sp('cgenlpoll_1')})`);
    }
  }
  const dump = load(dir, 'dump');
  if (dump) {
    const k = dump.data.kernelNsPerByte;
    const per = (r) => (r.ms * 1e6) / r.bytes / k;
    const ms = (r) => `${r.ms.toFixed(1)} ms${r.msMin !== undefined ? ` (${r.msMin.toFixed(1)}-${r.msMax.toFixed(1)})` : ''}, ${kf(r.bytes)} B`;
    add(`device dump (${dump.data.ndev}) per byte vs kernel`, per(dump.data.devDump), 1, 'x', false, `${ms(dump.data.devDump)}; kernel ${dump.data.kernelNsPerByte.toFixed(1)} ns/B`);
    add(`RAS-log dump (${dump.data.nev}) per byte vs kernel`, per(dump.data.logDump), 1, 'x', false, ms(dump.data.logDump));
  }
  const fan = load(dir, 'fanout');
  if (fan) {
    const eight = fan.data.find((r) => r.nsubs === 8);
    if (eight) add('RAS deliveries/s to 8 subscribers', eight.deliveredPerSec, 1000000, '/s', true,
      `${eight.mode}, ${kf(eight.eventsPerSec)} events/s produced, one run`);
    const lost = fan.data.reduce((n, r) => n + r.unrecovered, 0);
    add('events lost beyond recovery', lost, 0, '', false);
  }
  const gemm = load(dir, 'gemm');
  if (gemm) {
    const r = (impl, n) => gemm.data.results.find((x) => x.impl === impl && x.n === n);
    for (const n of gemm.data.sizes.filter((x) => x >= 256)) {
      const f32 = r('ours f32', n), pool = r('ours f32 pool', n), i8 = r('ours i8', n);
      const q = (x) => (x.q1 !== undefined ? ` [${r2(x.q1)}-${r2(x.q3)}]` : '');
      const tf = r('tfjs-cpu f32', n);
      const cpu = (x) => (x.cpuMedian !== undefined ? `; per CPU time ${r2(x.cpuMedian)}` : '');
      const ratios = gemm.data.ratios[`n=${n}`] || {};
      // The two ceilings per CPU time: the register-only anchor, and the engine's own micro-kernel in L1.
      const peak = r('scalar peak (anchor)', n), micro = r('micro-kernel alone, in L1', n);
      const ceilings = peak?.cpuMedian !== undefined && micro?.cpuMedian !== undefined
        ? `; anchor ${r2(peak.cpuMedian)}, micro-kernel in L1 ${r2(micro.cpuMedian)} (${r2(ratios['f32 vs micro-kernel in L1 (CPU time)'] ?? NaN)}x of it)` : '';
      if (f32) add(`GEMM f32 1 thread GFLOP/s (n=${n})`, f32.median, 12, '', true, `quartiles${q(f32)}${cpu(f32)}${ceilings}${tf ? `; ${r2(f32.median / tf.median)}x tfjs-cpu` : ''}`);
      const anchor = ratios[`scalar peak ${gemm.data.threads} threads/1 thread`];
      if (f32 && pool) add(`GEMM f32 2-worker pool / 1 thread (n=${n})`, pool.median / f32.median, 1.8, 'x', true, `pool ${r2(pool.median)} GFLOP/s${q(pool)}; paired per rep ${r2(ratios['f32 pool/single paired median'] ?? NaN)}${anchor !== undefined ? `; the ${gemm.data.threads}-thread anchor scaled ${r2(anchor)}x in the same rounds` : ''}`);
      if (f32 && i8) add(`GEMM i8 / f32, 1 thread (n=${n})`, i8.median / f32.median, 2, 'x', true, `i8 ${r2(i8.median)} GOP/s${q(i8)}${i8.cpuMedian && f32.cpuMedian ? `; per CPU time ${r2(i8.cpuMedian / f32.cpuMedian)}x` : ''}`);
    }
  }
  const job = load(dir, 'job');
  if (job) {
    const st = job.data.stats;
    if (job.data.uploadMBps) add(`BO upload MB/s (A+B, ${(2 * job.data.n * job.data.n * 4 / 1048576).toFixed(0)} MiB in bo-writes of up to 195,000 bytes, all in flight)`, job.data.uploadMBps, 1000, '', true,
      st ? `${st.upload.median.toFixed(1)} ms (${st.upload.min.toFixed(1)}-${st.upload.max.toFixed(1)})` : '');
    if (job.data.mappedMBps) add(`BO upload MB/s into BOs mapped with bo-map (A+B; the first fill of a new mapping apart)`, job.data.mappedMBps, 1000, '', true,
      st?.mapped ? `${st.mapped.median.toFixed(2)} ms (${st.mapped.min.toFixed(2)}-${st.mapped.max.toFixed(2)}); bo-map + first fill ${job.data.freshMappedMBps.toFixed(0)} MB/s, ${st.fresh.median.toFixed(1)} ms (${st.fresh.min.toFixed(1)}-${st.fresh.max.toFixed(1)})` : '');
    add(`job over netlink, overhead beyond upload (n=${job.data.n})`, Math.max(0, job.data.overhead * 100), 5, '%', false,
      st ? `submit->done ${st.job.median.toFixed(1)} ms (${st.job.min.toFixed(1)}-${st.job.max.toFixed(1)}), direct ${st.direct.median.toFixed(1)} ms (${st.direct.min.toFixed(1)}-${st.direct.max.toFixed(1)}); per round ${(st.overhead.median * 100).toFixed(1)}% (${(st.overhead.min * 100).toFixed(1)} to ${(st.overhead.max * 100).toFixed(1)}%)` : '');
  }
  const scale = load(dir, 'scale');
  if (scale) {
    const big = scale.data.runs[scale.data.runs.length - 1];
    if (big) add(`daemon ready with ${big.devices} devices`, big.readyMs, 300, 'ms', false, big.readyMinMs !== undefined ? `(${Math.round(big.readyMinMs)}-${Math.round(big.readyMaxMs)}) ms` : '');
    add('memory per idle device (KiB)', scale.data.perDeviceMiB * 1024, 32, 'KiB', false);
  }
  const cli = load(dir, 'cli');
  if (cli) {
    const row = cli.data.rows.find((r) => r.command === 'accel dev show');
    const node = cli.data.rows.find((r) => r.command === 'node -e 0');
    const num = (x) => Number(String(x).replace(/,/g, ''));
    if (row && node) add('accel dev show / node -e 0 (medians)', num(row['median ms']) / num(node['median ms']), 1.2, 'x', false, `${row['median ms']} ms / ${node['median ms']} ms, ${row.runs} runs`);
  }
  return out;
}

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');
const fmtv = (f) => (f.unit === '/s' ? `${Math.round(f.value).toLocaleString('en-US')}/s` : `${+f.value.toFixed(f.value < 10 ? 2 : 0)}${f.unit === 'x' ? 'x' : f.unit ? ' ' + f.unit : ''}`);

/** Bars of goal attainment: value/goal (higher is better) or goal/value, 1.0 = goal, capped at 4. */
function svg(figs, title) {
  const W = 900, row = 26, top = 56, left = 330, barW = 420;
  const H = top + figs.length * row + 40;
  const x = (a) => left + (Math.min(a, 4) / 4) * barW;
  let s = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">\n`;
  s += `<rect width="100%" height="100%" fill="white"/>\n<text x="10" y="22" font-size="15" font-weight="bold">${esc(title)}</text>\n`;
  s += `<text x="10" y="40" fill="#555">bar = how far past the goal (goal/value when lower is better); the line is the goal; capped at 4x</text>\n`;
  figs.forEach((f, i) => {
    const y = top + i * row;
    const att = f.goal === 0 ? (f.value === 0 ? 4 : 0) : f.higher ? f.value / f.goal : f.goal / Math.max(f.value, 1e-9);
    const ok = f.goal === 0 ? f.value === 0 : f.higher ? f.value >= f.goal : f.value <= f.goal;
    s += `<text x="10" y="${y + 15}">${esc(f.label)}</text>\n`;
    s += `<rect x="${left}" y="${y + 4}" width="${Math.max(1, x(att) - left).toFixed(1)}" height="16" fill="${ok ? '#3a8f3a' : '#c0504d'}"/>\n`;
    s += `<text x="${x(att) + 6}" y="${y + 16}">${esc(fmtv(f))} (goal ${f.higher ? '≥' : '≤'} ${esc(f.goal)}${f.unit === 'x' ? 'x' : f.unit === '/s' ? '/s' : f.unit ? ' ' + f.unit : ''})</text>\n`;
  });
  s += `<line x1="${x(1)}" y1="${top - 4}" x2="${x(1)}" y2="${top + figs.length * row}" stroke="#333" stroke-dasharray="4,3"/>\n`;
  s += `<text x="${x(1) - 12}" y="${top + figs.length * row + 16}">goal</text>\n</svg>\n`;
  return s;
}

/** The figures as a markdown table (pasted into docs/performance.md). */
function markdown(figs) {
  const met = (f) => (f.goal === 0 ? f.value === 0 : f.higher ? f.value >= f.goal : f.value <= f.goal);
  const unit = (f) => (f.unit === 'x' ? 'x' : f.unit === '/s' ? '/s' : f.unit ? ' ' + f.unit : '');
  const rows = figs.map((f) => `| ${f.label} | **${fmtv(f)}** | ${f.higher ? '≥' : '≤'} ${f.goal}${unit(f)} | ${met(f) ? 'yes' : 'no'} | ${f.detail || ''} |`);
  return ['| figure (median) | value | goal | met | anchor, spread |', '|---|---|---|---|---|', ...rows].join('\n') + '\n';
}

function summarize(dir, svgFile, label) {
  const figs = figures(dir);
  fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify({ date: new Date().toISOString(), label, figures: figs }, null, 2));
  fs.writeFileSync(path.join(dir, 'summary.md'), markdown(figs));
  fs.writeFileSync(svgFile, svg(figs, `accelnl benchmarks (${label})`));
  return figs;
}

module.exports = { summarize, figures, markdown };
if (require.main === module) {
  const dir = process.argv[2] ?? path.join(__dirname, 'results');
  const out = process.argv[3] ?? path.join(__dirname, '../docs/performance.svg');
  for (const f of summarize(dir, out, process.argv[4] ?? 'last run')) console.log(`${f.label}: ${fmtv(f)} (goal ${f.goal})`);
}
