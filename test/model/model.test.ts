// The multi-client model test (issue 13): a real daemon, client processes as root and as nobody,
// random requests, BOs, jobs, subscriptions and injections, sockets closed and their ports rebound
// by other users, the daemon killed with SIGKILL and restarted; every answer checked against a
// model (test/model/model.ts). ACCELNL_MODEL_SEED replays a seed; ACCELNL_MODEL_SECONDS runs
// longer (CI: 45 s); ACCELNL_MODEL_REPORT=FILE writes the result as JSON. docs/reliability.md
// describes it.
import * as fs from 'fs';
import { KINDS, type Kind, type ModelResult, runModel } from './run';

const SECONDS = Number(process.env.ACCELNL_MODEL_SECONDS ?? 45);
// A fixed seed, so that every CI run takes the same sequence of steps (the timing between the
// processes still varies); ACCELNL_MODEL_SEED=S tries another.
const SEED = process.env.ACCELNL_MODEL_SEED ? Number(process.env.ACCELNL_MODEL_SEED) : 20261207;
const canRun = process.getuid?.() === 0 && fs.existsSync('/usr/sbin/runuser');
if (!canRun) console.warn('model test skipped: it needs root (to run clients as nobody with runuser)');
const it_ = canRun ? test : test.skip;

/**
 * Checks whose violations the server still shows (findings in docs/reliability.md, "Model test").
 * The run still counts and prints them; only their test is skipped, saying why. Remove an entry
 * once its fix has landed.
 */
const KNOWN_UNFIXED: Partial<Record<Kind, string>> = {};

let result: ModelResult | undefined;

beforeAll(async () => {
  if (!canRun) return;
  await require('../../bin/build.js').build();
  process.stderr.write(`model: seed ${SEED} (ACCELNL_MODEL_SEED=${SEED} replays it), ${SECONDS} s\n`);
  result = await runModel({ seed: SEED, seconds: SECONDS, log: (l) => process.stderr.write(l + '\n') });
  const r = result;
  console.log(`model: seed ${SEED}, ${r.seconds.toFixed(0)} s, ${r.stats.steps} steps, ${r.stats.requests} requests, ` +
    `${r.clients.procs} processes (${r.clients.root} root, ${r.clients.nobody} nobody), ${r.clients.slots} concurrent sockets ` +
    `(${r.clients.sockets} over the run), ${r.stats.restarts} restarts, ${r.stats.rebinds} rebinds ` +
    `(${r.stats.rebindsOtherUser} by the other user), ${r.stats.optedIn} sockets with joined answers, ${r.stats.records} acknowledged records, ${r.stats.jobs} jobs, ` +
    `${r.stats.jobProbes} probes of other users' jobs, ${r.stats.jobEvents} job events (${r.stats.ownJobEvents} of its own user's jobs to a non-root socket), ` +
    `${r.stats.watchesChecked} subscription intervals checked; raced sends the daemon reported: ${r.raced.lines} ` +
    `(${r.raced.messages} messages seen by successors${r.raced.examples.length ? `, e.g. ${r.raced.examples[0]}` : ''}); violations ` +
    `${JSON.stringify(Object.fromEntries(Object.entries(r.violations).map(([k, x]) => [k, x!.count])))}\n` +
    Object.entries(r.violations).map(([k, x]) => `  ${k} ${JSON.stringify(x!.variants)}:\n    ${x!.examples.join('\n    ')}`).join('\n'));
  if (process.env.ACCELNL_MODEL_REPORT) fs.writeFileSync(process.env.ACCELNL_MODEL_REPORT, JSON.stringify(r, null, 2));
}, SECONDS * 1000 + 180000);

it_('the run itself worked: clients as root and nobody, restarts, rebinds by the other user, steps of every kind', () => {
  const r = result!;
  expect(r.errors).toEqual([]);
  expect(r.clients.root).toBeGreaterThanOrEqual(4);
  expect(r.clients.nobody).toBeGreaterThanOrEqual(4);
  expect(r.clients.slots).toBeGreaterThanOrEqual(8);
  expect(r.stats.restarts).toBeGreaterThanOrEqual(2);
  expect(r.stats.rebindsOtherUser).toBeGreaterThan(0);
  expect(r.stats.optedIn).toBeGreaterThan(0);
  expect(r.stats.records).toBeGreaterThan(50);
  expect(r.stats.jobs).toBeGreaterThan(5);
  expect(r.stats.watchesChecked).toBeGreaterThan(5);
  expect(r.stats.jobProbes).toBeGreaterThan(0);
  expect(r.stats.jobEvents).toBeGreaterThan(0);
  expect(r.stats.ownJobEvents).toBeGreaterThan(0); // the audience filter lets a user's own jobs through
  expect(Object.keys(r.stats.stepsByName).length).toBeGreaterThanOrEqual(18); // every step and close+rebind
});

for (const kind of Object.keys(KINDS) as Kind[]) {
  const known = KNOWN_UNFIXED[kind];
  if (known && canRun) console.warn(`model test: the "${kind}" check is skipped, known unfixed: ${known}`);
  (known ? test.skip : it_)(`no violation: ${kind} (${KINDS[kind]})`, () => {
    expect(result!.violations[kind]?.examples ?? []).toEqual([]);
  });
}
