// The mutation fuzzer in CI: every regression file under test/fuzz/corpus/ replays cleanly, the seed
// corpus covers every op of nlctrl, accel and drm-ras and passes the oracle unmutated, and a short
// seeded run (a few seconds; `npm run fuzz -- --seconds N` runs longer) finds nothing.
import { rng } from './gen';
import { closeTarget, newTarget, runOne, seedCorpus, type Target } from './harness';
import { fuzz, loadCorpus } from './fuzz';
import { mutate, parse, serialize } from './mutate';

const SECONDS = Number(process.env.FUZZ_SECONDS ?? 4);

let t: Target;
beforeEach(() => { t = newTarget(); });
afterEach(() => closeTarget(t));

test('regression corpus: each saved input now gets well-formed, complete answers', () => {
  const corpus = loadCorpus();
  expect(corpus.length).toBeGreaterThan(0);
  const bad = corpus.map((e) => {
    const fresh = newTarget();
    try { return { e, v: runOne(fresh, e.data, e.nobody) }; } finally { closeTarget(fresh); }
  }).filter((x) => x.v.problems.length);
  expect(bad.map((x) => `${x.e.file}: ${x.v.problems.join('; ')}`)).toEqual([]);
});

test('the seed corpus has valid requests for every op of every family, and each passes the oracle', () => {
  const seeds = seedCorpus(t, rng(1));
  const named = new Set(t.halves.map((h) => `${h.fam.name}/${h.op.name ?? h.op.cmd}/${h.dump ? 'dump' : 'do'}`));
  expect([...named].filter((n) => n.startsWith('nlctrl')).length).toBeGreaterThanOrEqual(3);
  expect([...named].some((n) => n.startsWith('accel/ras-inject'))).toBe(true);
  expect([...named].some((n) => n.startsWith('drm-ras/get-error-counter/dump'))).toBe(true);
  expect(seeds.length).toBe(t.halves.length * 3);
  for (const s of seeds) {
    expect(runOne(t, s).problems).toEqual([]);
    expect(runOne(t, s, true).problems).toEqual([]);
  }
});

test('the mutator keeps structure when asked to: parse/serialize round-trips every seed', () => {
  const r = rng(2);
  for (const s of seedCorpus(t, r)) expect(Array.from(serialize(parse(s)))).toEqual(Array.from(s));
  const pool = seedCorpus(t, r);
  let changed = 0;
  for (let i = 0; i < 2000; i++) {
    const { data } = mutate(r, pool[i % pool.length], pool);
    if (data.length !== pool[i % pool.length].length || data.some((b, j) => b !== pool[i % pool.length][j])) changed++;
  }
  expect(changed).toBeGreaterThan(1500);
});

test(`a ${SECONDS}-second seeded run finds no problem`, async () => {
  const r = await fuzz({ seconds: SECONDS, seed: Number(process.env.FUZZ_SEED ?? 20260707), saveDir: null });
  console.log(`fuzz: ${r.inputs} inputs in ${r.seconds.toFixed(1)} s, ${r.outcomes} distinct outcomes, findings: ${r.findings.length}`);
  expect(r.findings.map((f) => f.problems.join('; '))).toEqual([]);
  expect(r.inputs).toBeGreaterThan(1000);
}, 30000);
