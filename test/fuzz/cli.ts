// `npm run fuzz -- [--seconds N] [--iterations N] [--seed S] [--no-save]`: the mutation fuzzer for
// longer than CI runs it. `npm run fuzz -- --diff [--cases N] [--chunk N] [--seed S]`: the kernel
// differential test (test/kernel-diff.test.ts) for N cases, in chunks with consecutive seeds.
// Prints a summary line per run and exits 1 on any finding or mismatch.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { fuzz } from './fuzz';

const ROOT = process.env.ACCELNL_ROOT ?? path.resolve(__dirname, '../..');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<number> {
  const seed = arg('seed') !== undefined ? Number(arg('seed')) : undefined;
  if (process.argv.includes('--diff')) return diff(Number(arg('cases') ?? 1e6), Number(arg('chunk') ?? 100000), seed ?? 0x5eed2026);
  const seconds = Number(arg('seconds') ?? 60);
  const r = await fuzz({
    seconds, seed, iterations: arg('iterations') ? Number(arg('iterations')) : undefined,
    saveDir: process.argv.includes('--no-save') ? null : path.join(ROOT, 'test/fuzz/corpus'),
    log: (l) => process.stderr.write(`fuzz: ${l}\n`),
  });
  const mem = process.memoryUsage();
  console.log(`fuzz: ${r.inputs} inputs in ${r.seconds.toFixed(1)} s (${Math.round(r.inputs / r.seconds)}/s), ` +
    `${r.outcomes} distinct outcomes, pool ${r.pool}, findings ${r.findings.length}, rss ${(mem.rss / 2 ** 20).toFixed(0)} MiB`);
  for (const f of r.findings) console.log(`  ${f.problems[0]}${f.file ? ` (${path.relative(ROOT, f.file)})` : ''}`);
  return r.findings.length ? 1 : 0;
}

/** Run the differential test in chunks; each prints "mismatches: N" lines that are summed here. */
function diff(cases: number, chunk: number, seed: number): number {
  let done = 0, nlctrl = 0, getOps = 0, bad = 0;
  const t0 = Date.now();
  for (let s = seed; done < cases; s++) {
    const n = Math.min(chunk, cases - done);
    // The test is one jest test per part: it may run far longer than the configured 30 s timeout.
    const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/jest/bin/jest.js'), '--testTimeout=86400000',
      'test/kernel-diff.test.ts'], { cwd: ROOT, env: { ...process.env, DIFF_SEED: String(s >>> 0), DIFF_CASES: String(n) },
      encoding: 'utf8', maxBuffer: 1 << 28 });
    const out = `${r.stdout}\n${r.stderr}`;
    const a = /differential: (\d+) cases.*mismatches: (\d+)/.exec(out);
    const b = /GET ops: (\d+) cases.*mismatches: (\d+)/.exec(out);
    if (!a || !b) {
      process.stderr.write(out.slice(-4000));
      console.log(`fuzz --diff: chunk with seed ${s} did not report (exit ${r.status})`);
      return 1;
    }
    nlctrl += Number(a[1]); getOps += Number(b[1]);
    bad += Number(a[2]) + Number(b[2]);
    done += n;
    if (Number(a[2]) + Number(b[2]) || r.status) process.stderr.write(out.slice(-8000));
    process.stderr.write(`fuzz --diff: seed 0x${(s >>> 0).toString(16)}: ${done}/${cases}, mismatches so far ${bad}, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  }
  console.log(`fuzz --diff: ${nlctrl} nlctrl cases + ${getOps} netdev/ethtool GET cases against the kernel, ` +
    `${bad} mismatches, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return bad ? 1 : 0;
}

main().then((code) => { process.exitCode = code; }, (e: Error) => { console.error(e.stack); process.exitCode = 2; });
