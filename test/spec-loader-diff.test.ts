// Differential test: our spec loader (genl/ynl/load.ts + shape.ts) against the kernel's own check
// (nlspec.py: SPDX first line, then the genetlink schema of the spec's protocol level, here with ajv).
// Every spec in docs/netlink/specs/, ynl's drm_ras.yaml and two specs covering the genetlink-c and
// genetlink-legacy keys are mutated systematically (each key dropped, an unknown key added, each
// value given a wrong type, a bogus string, a negative or fractional number, keys of other protocol
// levels added, names and limits bent, the SPDX line and YAML 1.1 words changed) and, for each:
//   - the schema rejects  => our loader (extensions off) rejects too, naming a key path ajv names;
//   - the schema accepts  => our loader accepts, or rejects for a reason beyond the schema that is in
//     the documented list (references, duplicates, features we do not support, names the generator
//     cannot use), never for a structural one.
// With extensions on, the only additional specs accepted are those using EXTENSIONS.
import { spawnSync } from 'child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import type { ErrorObject } from 'ajv';
import { SpecError, loadSpec } from '../genl/ynl';
import { EXTENSIONS } from '../genl/ynl/shape';
import { SCHEMA_DIR, YNL_DIR, upstreamCheck } from './helpers/upstream-schema';

const it_ = SCHEMA_DIR ? it : it.skip;
if (!SCHEMA_DIR) console.warn('spec-loader-diff: ../shared/peers/ynl is absent, the differential test is skipped');

type J = Record<string, any>;
const SPECS = join(__dirname, '../docs/netlink/specs');
const PY = '/usr/bin/python3';

const C_SPEC = `# SPDX-License-Identifier: MIT
name: c-test
protocol: genetlink-c
doc: Every genetlink-c key.
uapi-header: linux/c_test.h
c-family-name: C_TEST_FAMILY_NAME
c-version-name: C_TEST_FAMILY_VERSION
max-by-define: true
cmd-max-name: C_TEST_CMD_MAX
cmd-cnt-name: __C_TEST_CMD_MAX
definitions:
  - { type: const, name: max-len, value: 16, header: linux/c_test.h }
  - { type: enum, name: mode, enum-name: c-test-mode, name-prefix: c-test-mode-, value-start: 1, render-max: true, doc: Mode., entries: [a, { name: b, value: 3, doc: B. }] }
  - { type: flags, name: caps, entries: [x, y] }
attribute-sets:
  - name: main
    name-prefix: c-test-a-
    enum-name: c-test-attrs
    attr-cnt-name: __C_TEST_A_MAX
    attr-max-name: C_TEST_A_MAX
    doc: Main.
    attributes:
      - { name: id, type: u32, doc: Id., checks: { min: 1, max: u32-max } }
      - { name: label, type: string, checks: { max-len: 16 } }
      - { name: blob, type: binary, checks: { min-len: 4 }, display-hint: hex }
      - { name: mode, type: u8, enum: mode }
      - { name: caps, type: u32, enum: caps, enum-as-flags: true }
      - { name: port, type: u16, byte-order: big-endian }
      - { name: kids, type: nest, nested-attributes: kid, multi-attr: true }
      - { name: mask, type: u64, checks: { flags-mask: caps } }
      - { name: last, type: s32, value: 20, name-prefix: c-test-x- }
  - name: kid
    attributes:
      - { name: id, type: u32 }
  - name: main-lite
    subset-of: main
    attributes: [{ name: id }]
operations:
  name-prefix: c-test-cmd-
  enum-name: c-test-cmd
  async-prefix: c-test-ntf-
  async-enum: c-test-ntf
  list:
    - name: get
      doc: Get.
      value: 3
      attribute-set: main
      flags: [admin-perm]
      dont-validate: [strict, dump]
      config-cond: c-test
      do:
        pre: c-test-pre
        post: c-test-post
        request: { attributes: [id] }
        reply: { attributes: [id, label, blob, mode, caps, port, kids, mask] }
      dump:
        reply: { attributes: [id] }
    - name: changed
      doc: Changed.
      notify: get
      mcgrp: events
    - name: event
      doc: Event.
      attribute-set: main
      event: { attributes: [id] }
      mcgrp: events
mcast-groups:
  list:
    - { name: events, c-define-name: C_TEST_MCGRP_EVENTS, flags: [admin-perm] }
`;

const LEGACY_SPEC = `# SPDX-License-Identifier: MIT
name: legacy-test
protocol: genetlink-legacy
doc: Every genetlink-legacy key we support.
version: 2
kernel-policy: split
c-family-name: LEGACY_TEST_FAMILY_NAME
c-version-name: LEGACY_TEST_FAMILY_VERSION
max-by-define: false
definitions:
  - { type: enum, name: kind, entries: [one, two] }
attribute-sets:
  - name: main
    attributes:
      - { name: id, type: u32 }
      - { name: name, type: string }
      - { name: big, type: s64 }
operations:
  list:
    - name: get
      doc: Get.
      attribute-set: main
      flags: [uns-admin-perm]
      do:
        request: { attributes: [id] }
        reply: { attributes: [id, name, big] }
mcast-groups:
  list: [{ name: mon, flags: [uns-admin-perm] }]
`;

const read = (f: string): string => readFileSync(f, 'utf8');
function bases(): [string, string][] {
  const out: [string, string][] = readdirSync(SPECS).filter((f) => f.endsWith('.yaml')).sort().map((f) => [f, read(join(SPECS, f))]);
  if (YNL_DIR) {
    out.push(['ynl specs/drm_ras.yaml', read(join(YNL_DIR, 'Documentation/netlink/specs/drm_ras.yaml'))]);
    out.push(['ynl specs-event/drm_ras.yaml', read(join(YNL_DIR, 'Documentation/netlink/specs-event/drm_ras.yaml'))]);
  }
  out.push(['genetlink-c test', C_SPEC], ['genetlink-legacy test', LEGACY_SPEC]);
  return out;
}

// ---- ajv's error locations in our loader's path notation -----------------------------------------
const NAMED = new Set(['definitions', 'attribute-sets', 'attributes', 'list']);
/** JSON pointer (ajv's instancePath) to our path: named list items as [name], ops as operations[name]. */
function ourPath(raw: unknown, pointer: string): string {
  let path = '';
  let node: any = raw;
  let parentKey = '';
  for (const seg of pointer.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))) {
    if (Array.isArray(node)) {
      const item = node[Number(seg)];
      const named = NAMED.has(parentKey) && (parentKey !== 'list' || path === 'operations.list') && item && typeof item === 'object'
        && typeof item.name === 'string';
      path = named ? `${path === 'operations.list' ? 'operations' : path}[${item.name}]` : `${path}[${seg}]`;
      node = item;
    } else {
      path = path ? `${path}.${seg}` : seg;
      node = node?.[seg];
    }
    parentKey = seg;
  }
  return path;
}
function ajvPaths(raw: unknown, errs: ErrorObject[]): Set<string> {
  const out = new Set<string>();
  for (const e of errs) {
    const p = e.instancePath;
    if (e.keyword === 'required') out.add(ourPath(raw, `${p}/${(e.params as { missingProperty: string }).missingProperty}`));
    else if (e.keyword === 'additionalProperties') out.add(ourPath(raw, `${p}/${(e.params as { additionalProperty: string }).additionalProperty}`));
    else out.add(ourPath(raw, p));
  }
  return out;
}

// ---- mutations -----------------------------------------------------------------------------------
interface Mutation { what: string; raw?: J; text?: string }
/** Keys of every protocol level (and some of none), with plausible values, added everywhere. */
const POOL: Record<string, unknown> = {
  'c-define-name': 'X_Y', 'config-cond': 'x', 'fixed-header': 'x', struct: 'x', 'name-prefix': 'x-', version: 2,
  'kernel-policy': 'split', 'cmd-max-name': 'X', 'cmd-cnt-name': 'X', 'c-family-name': 'X', 'c-version-name': 'X',
  'max-by-define': true, 'enum-name': 'x', 'attr-cnt-name': 'X', 'attr-max-name': 'X', members: [], 'type-value': ['x'],
  'display-hint': 'hex', 'unterminated-ok': true, 'enum-cnt-name': 'X', 'kernel-family': {}, 'render-max': true,
  header: 'x.h', doc: 'x', value: 1, 'subset-of': 'x', checks: {}, 'sub-type': 'u32', 'dont-validate': ['strict'],
  flags: ['uns-admin-perm'], 'enum-model': 'directional', mcgrp: 'x', notify: 'x', 'nested-attributes': 'x',
};
const wrongType = (v: unknown): unknown => (typeof v === 'string' ? 7 : typeof v === 'number' ? 'seven' : typeof v === 'boolean' ? 'yes'
  : Array.isArray(v) ? {} : v && typeof v === 'object' ? [] : 'x');

function* objects(node: unknown, pointer: string[] = []): Generator<[string[], J]> {
  if (Array.isArray(node)) for (let i = 0; i < node.length; i++) yield* objects(node[i], [...pointer, String(i)]);
  else if (node && typeof node === 'object') {
    yield [pointer, node as J];
    for (const [k, v] of Object.entries(node)) yield* objects(v, [...pointer, k]);
  }
}
const at = (raw: J, pointer: string[]): J => pointer.reduce((n: any, k) => n[k], raw);

function mutations(name: string, text: string, raw: J, stride: number): Mutation[] {
  const out: Mutation[] = [];
  const mut = (what: string, pointer: string[], f: (o: J) => void) => {
    const copy = structuredClone(raw);
    f(at(copy, pointer));
    out.push({ what: `${name} /${pointer.join('/')}: ${what}`, raw: copy });
  };
  let n = 0;
  for (const [pointer, o] of objects(raw)) {
    if (n++ % stride) continue; // large specs: every stride-th object node (still hundreds per spec)
    mut('+ unknown key', pointer, (x) => { x['zz-unknown'] = 1; });
    for (const [k, v] of Object.entries(o)) {
      mut(`- ${k}`, pointer, (x) => { delete x[k]; });
      mut(`${k}: wrong type`, pointer, (x) => { x[k] = wrongType(v); });
      if (typeof v === 'string') {
        mut(`${k}: bogus string`, pointer, (x) => { x[k] = 'Bogus Value'; });
        mut(`${k}: u32-max`, pointer, (x) => { x[k] = 'u32-max'; });
      }
      if (typeof v === 'number') {
        mut(`${k}: -1`, pointer, (x) => { x[k] = -1; });
        mut(`${k}: 1.5`, pointer, (x) => { x[k] = 1.5; });
        mut(`${k}: "FOO - 1"`, pointer, (x) => { x[k] = 'FOO - 1'; });
      }
      if (Array.isArray(v)) {
        mut(`${k}: []`, pointer, (x) => { x[k] = []; });
        mut(`${k}: [7]`, pointer, (x) => { x[k] = [7]; });
        mut(`${k}: ['bogus']`, pointer, (x) => { x[k] = ['bogus']; });
      }
    }
    if (n % (3 * stride) === 1) for (const [k, v] of Object.entries(POOL)) if (!(k in o)) mut(`+ ${k}`, pointer, (x) => { x[k] = structuredClone(v); });
  }
  // Text-level: the SPDX line and YAML 1.1 words, as ynl reads files.
  const lines = text.split('\n');
  out.push({ what: `${name}: no SPDX line`, text: lines.slice(1).join('\n') });
  out.push({ what: `${name}: SPDX line second`, text: [lines[1], lines[0], ...lines.slice(2)].join('\n') });
  out.push({ what: `${name}: SPDX without the space`, text: text.replace('# SPDX-License-Identifier: ', '#SPDX-License-Identifier: ') });
  out.push({ what: `${name}: an op named on (YAML 1.1: true)`, text: text.replace(/^(\s+-?\s*name: )[a-z0-9-]+$/m, '$1on') });
  out.push({ what: `${name}: an op named "on"`, text: text.replace(/^(\s+-?\s*name: )[a-z0-9-]+$/m, "$1'on'") });
  return out;
}

// Reasons beyond the schema our loader may refuse a spec the schema accepts: the generator needs
// resolvable references, unique names and values, names it can turn into identifiers, and features
// it implements. Each is documented in docs/ynl.md ("Beyond the schema").
const BEYOND = [
  /is not a valid name/, /no attribute set/, /is not in "/, /no enum or flags definition/, /no flags definition/,
  /no mcast group/, /no operation/, /duplicate /, /already used by/, /is listed twice/, /clashes with/,
  /not supported/, /only for /, /not allowed for/, /is required for/, /needs do, dump, event or notify/,
  /has no do or dump/, /are exclusive/, /needs enum/, /cannot resolve/, /must be a length/, /must be an integer/,
  /at most one of/, /is above max/, /negative limit/, /attributes listed but the op has no attribute-set/,
  /an enum needs at least one entry/, /flag bit .* outside/, /a subset of a subset/, /only with protocol/,
  /is not one of const, enum, flags/, /only split/, /only unified/,
];

interface Outcome { ok: boolean; path?: string; msg?: string }
function ours(m: Mutation, extensions: boolean): Outcome {
  try {
    loadSpec(m.text ?? m.raw!, '', { extensions });
    return { ok: true };
  } catch (e) {
    if (!(e instanceof SpecError)) return { ok: false, path: '(not a SpecError)', msg: String(e) };
    return { ok: false, path: e.path, msg: e.message };
  }
}
function upstream(m: Mutation, base: string): { ok: boolean; paths: Set<string>; spdx: boolean; errors: ErrorObject[] } {
  const { parse } = require('yaml') as typeof import('yaml');
  const text = m.text ?? base;
  let raw: unknown = m.raw;
  if (m.text) {
    // PyYAML (YAML 1.1) reads an unquoted on as true; our loader does the same (tested below).
    raw = parse(text.replace(/^(\s+-?\s*name: )on$/m, '$1true'));
  }
  const r = upstreamCheck(text, raw);
  return { ok: r.ok, paths: ajvPaths(raw, r.errors), spdx: r.spdx, errors: r.errors };
}

describe('our loader against the kernel schema (ajv) and ynl\'s SPDX rule', () => {
  it_('every base spec is accepted by both', () => {
    for (const [name, text] of bases()) {
      const { parse } = require('yaml') as typeof import('yaml');
      expect([name, upstreamCheck(text, parse(text)).ok]).toEqual([name, true]);
      expect([name, ours({ what: name, text }, false)]).toEqual([name, { ok: true }]);
    }
  });

  it_('agree on every mutation, and name the same key', () => {
    const { parse } = require('yaml') as typeof import('yaml');
    const tally = { both_reject: 0, both_accept: 0, beyond_schema: 0 };
    const wrong: string[] = [];
    for (const [name, text] of bases()) {
      const raw = parse(text) as J;
      const size = [...objects(raw)].length;
      for (const m of mutations(name, text, raw, Math.max(1, Math.floor(size / 40)))) {
        const up = upstream(m, text);
        const me = ours(m, false);
        if (!up.ok) {
          if (me.ok) wrong.push(`${m.what}: upstream rejects (${[...up.paths].join(', ')}), ours accepts`);
          else if (!up.spdx) { if (me.path !== '' || !/SPDX/.test(me.msg!)) wrong.push(`${m.what}: no SPDX, ours says ${me.msg}`); }
          else if (!up.paths.has(me.path!)) wrong.push(`${m.what}: ours names ${me.path} (${me.msg}), ajv names ${[...up.paths].join(', ')}`);
          tally.both_reject++;
        } else if (me.ok) tally.both_accept++;
        else if (BEYOND.some((re) => re.test(me.msg!))) tally.beyond_schema++;
        else wrong.push(`${m.what}: upstream accepts, ours rejects for a reason not in the documented list: ${me.msg}`);
      }
    }
    console.log(`spec-loader-diff: ${JSON.stringify(tally)}`);
    if (process.env.DIFF_SUMMARY) { const k = new Map<string, number>(); for (const w of wrong) { const s = w.replace(/^[^:]*: /, "").replace(/\[[^\]]*\]/g, "[]"); k.set(s, (k.get(s) ?? 0) + 1); } console.log([...k].map(([s, n]) => `${n} x ${s}`).join("\n")); }
    expect(wrong).toEqual([]);
    expect(tally.both_reject).toBeGreaterThan(1000);
    expect(tally.both_accept).toBeGreaterThan(100);
  });

  it_('the extensions are exactly what the pinned schemas reject and we accept', () => {
    const base = (): J => ({
      name: 'x', doc: 'x', definitions: [{ type: 'const', name: 'name-len', value: 8 }],
      'attribute-sets': [{ name: 's', attributes: [{ name: 'a', type: 'u32' }, { name: 'n', type: 'nest', 'nested-attributes': 's' }] }],
      operations: { list: [{ name: 'op', doc: 'x', 'attribute-set': 's', do: { request: { attributes: ['a'] } } }] },
    });
    const cases: [string, (o: J) => void, string][] = [
      ...EXTENSIONS.types.map((t): [string, (o: J) => void, string] => [`type ${t}`, (o) => {
        Object.assign(o['attribute-sets'][0].attributes[0], t === 'indexed-array' ? { type: t, 'sub-type': 'u32' } : { type: t });
      }, 'attribute-sets[s].attributes[a].type']),
      ['sub-type s16', (o) => { Object.assign(o['attribute-sets'][0].attributes[0], { type: 'indexed-array', 'sub-type': 's16' }); }, 'attribute-sets[s].attributes[a].type'],
      ...EXTENSIONS.checks.map((k): [string, (o: J) => void, string] => [`checks.${k}`, (o) => {
        Object.assign(o['attribute-sets'][0].attributes[0], { type: 'string', checks: { [k]: true } });
      }, `attribute-sets[s].attributes[a].checks.${k}`]),
      ['negative min', (o) => { Object.assign(o['attribute-sets'][0].attributes[0], { type: 's32', checks: { min: -5 } }); }, 'attribute-sets[s].attributes[a].checks.min'],
      ['dashed const as a length', (o) => { Object.assign(o['attribute-sets'][0].attributes[0], { type: 'string', checks: { 'max-len': 'name-len' } }); }, 'attribute-sets[s].attributes[a].checks.max-len'],
    ];
    expect(cases).toHaveLength(EXTENSIONS.types.length + 1 + EXTENSIONS.checks.length + 2);
    for (const [what, f, path] of cases) {
      const o = base();
      f(o);
      const up = upstreamCheck('# SPDX-License-Identifier: MIT\n', o);
      expect([what, up.ok]).toEqual([what, false]);
      expect([what, ajvPaths(o, up.errors).has(path)]).toEqual([what, true]);
      expect([what, ours({ what, raw: o }, false)]).toMatchObject([what, { ok: false, path }]);
      expect([what, ours({ what, raw: o }, true)]).toEqual([what, { ok: true }]);
    }
  });

  const pyOk = SCHEMA_DIR && spawnSync(PY, ['-c', 'import jsonschema, yaml']).status === 0;
  if (SCHEMA_DIR && !pyOk) console.warn('spec-loader-diff: python3-jsonschema or python3-yaml missing, the check against ynl\'s own loader is skipped');
  (pyOk ? it : it.skip)('ynl\'s own loader (nlspec.py, jsonschema) gives the same verdicts on a sample of the mutations', () => {
    const { parse } = require('yaml') as typeof import('yaml');
    const sample: { m: Mutation; text: string; base: string }[] = [];
    for (const [name, text] of bases()) {
      const raw = parse(text) as J;
      const size = [...objects(raw)].length;
      mutations(name, text, raw, Math.max(1, Math.floor(size / 40))).forEach((m, i) => {
        // JSON is YAML to PyYAML, and quotes every string, so no YAML 1.1 word changes meaning.
        if (i % 16 === 0 || m.text) sample.push({ m, base: text, text: m.text ?? `# SPDX-License-Identifier: MIT\n${JSON.stringify(m.raw)}\n` });
      });
    }
    // The one place the two validators read the schema differently (see below), always in the sample.
    const sub = parse(C_SPEC) as J;
    sub['attribute-sets'][2]['name-prefix'] = 'c-test-lite-';
    sample.push({ m: { what: 'genetlink-c test: name-prefix in a subset', raw: sub }, base: C_SPEC, text: `# SPDX-License-Identifier: MIT\n${JSON.stringify(sub)}\n` });
    const scratch = mkdtempSync(join(tmpdir(), 'accelnl-nlspec-'));
    const r = spawnSync(PY, [join(__dirname, 'spec-py/nlspec_verdicts.py'), YNL_DIR!, scratch], {
      input: sample.map((x) => JSON.stringify({ text: x.text })).join('\n') + '\n', encoding: 'utf8', timeout: 300000,
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }, maxBuffer: 64 << 20,
    });
    rmSync(scratch, { recursive: true, force: true });
    expect(r.stderr).toBe('');
    const verdicts = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { ok: boolean; stage?: string; msg?: string });
    expect(verdicts).toHaveLength(sample.length);
    const tally = { agree: 0, draft07_dependencies: 0, ynl_load_refuses: 0 };
    const wrong: string[] = [];
    sample.forEach(({ m, base }, i) => {
      const py = verdicts[i];
      const up = upstream(m, base);
      const me = ours(m, false);
      if (py.stage === 'load' && up.ok) {
        // Past the schema, ynl's loader refused (a reference it cannot resolve): ours refuses too.
        if (me.ok) wrong.push(`${m.what}: ynl's loader refuses (${py.msg}), ours accepts`);
        tally.ynl_load_refuses++;
      } else if (py.ok === up.ok || (py.stage === 'load' && !up.ok)) tally.agree++;
      else if (py.ok && up.errors.every((e) => e.keyword === 'not' || e.keyword === 'dependencies')) {
        // jsonschema falls back to draft 2020-12 for the schemas' https $schema, where the draft-07
        // dependencies keyword (no name-prefix in a subset) does not exist; ours keeps draft-07's answer.
        tally.draft07_dependencies++;
      } else wrong.push(`${m.what}: ynl ${py.ok ? 'accepts' : `refuses (${py.msg})`}, ajv ${up.ok ? 'accepts' : 'refuses'}`);
    });
    console.log(`spec-loader-diff (nlspec.py): ${JSON.stringify(tally)}`);
    expect(wrong).toEqual([]);
    expect(tally.agree).toBeGreaterThan(300);
    expect(tally.draft07_dependencies).toBe(1); // the subset with a name-prefix: ajv and ours refuse, ynl accepts
  });

  it('YAML is read as PyYAML reads it: unquoted on/off/yes/no are booleans, 0777 octal', () => {
    const spec = (entries: string) => `# SPDX-License-Identifier: MIT
name: y
doc: x
definitions:
  - { type: enum, name: e, value-start: 0777, entries: ${entries} }
attribute-sets: [{ name: s, attributes: [{ name: a, type: u32, enum: e }] }]
operations: { list: [{ name: op, doc: x, attribute-set: s, do: { request: { attributes: [a] } } }] }
`;
    expect(() => loadSpec(spec('[off, on]'))).toThrow(/^definitions\[e\]\.entries\[0\]: must be a name or a mapping/);
    const s = loadSpec(spec("['off', 'on']"));
    expect(s.definitions[0].entries!.map((e) => [e.name, e.value])).toEqual([['off', 511], ['on', 512]]);
    expect(() => loadSpec(spec('[a]').replace('# SPDX', '#SPDX'))).toThrow(/^\(spec\): SPDX license tag required/);
  });
});
