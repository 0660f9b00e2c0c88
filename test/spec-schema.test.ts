// Every spec in docs/netlink/specs/ (also ones added later) validates against the kernel's genetlink
// schema for its protocol level, with ajv, and has the SPDX first line that ynl's loader requires.
import { spawnSync } from 'child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { parse } from 'yaml';
import { SCHEMA_DIR, YNL_DIR, describeErrors, upstreamCheck, upstreamValidator } from './helpers/upstream-schema';

const SPECS = join(__dirname, '../docs/netlink/specs');
const files = readdirSync(SPECS).filter((f) => f.endsWith('.yaml')).sort();
const it_ = SCHEMA_DIR ? it : it.skip;
if (!SCHEMA_DIR) console.warn('spec-schema: ../shared/peers/ynl is absent, the upstream schema checks are skipped');
const PY = '/usr/bin/python3';
const pyOk = !!SCHEMA_DIR && spawnSync(PY, ['-c', 'import jsonschema, yaml']).status === 0;
if (SCHEMA_DIR && !pyOk) console.warn('spec-schema: python3-jsonschema or python3-yaml missing, ynl\'s own loader is not run');

/** ynl's own loader (nlspec.SpecFamily) on each text: null when it accepts, else its complaint. */
function nlspec(texts: string[]): (string | null)[] {
  const scratch = mkdtempSync(join(tmpdir(), 'accelnl-nlspec-'));
  const r = spawnSync(PY, [join(__dirname, 'spec-py/nlspec_verdicts.py'), YNL_DIR!, scratch], {
    input: texts.map((text) => JSON.stringify({ text })).join('\n') + '\n', encoding: 'utf8', timeout: 120000,
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
  rmSync(scratch, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`nlspec_verdicts.py: ${r.stderr}`);
  return r.stdout.trim().split('\n').map((l) => { const v = JSON.parse(l); return v.ok ? null : `${v.stage}: ${v.msg}`; });
}

describe('specs against the kernel genetlink schemas', () => {
  it('finds the specs', () => {
    expect(files).toEqual(expect.arrayContaining(['accel.yaml', 'drm-ras.yaml']));
  });

  it_('the schemas compile (draft-07) and reject what they should', () => {
    for (const p of ['genetlink', 'genetlink-c', 'genetlink-legacy']) expect(upstreamValidator(p)).toBeDefined();
    // Proves the validator is live: an op without doc fails, naming it.
    const v = upstreamValidator('genetlink')!;
    expect(v({ name: 'x', doc: 'd', 'attribute-sets': [], operations: { list: [{ name: 'a' }] } })).toBe(false);
    expect(v.errors![0]).toMatchObject({ instancePath: '/operations/list/0', params: { missingProperty: 'doc' } });
  });

  (pyOk ? it : it.skip)('ynl\'s own loader (nlspec.py: SPDX, PyYAML, jsonschema, references) loads every spec, and refuses a broken one', () => {
    const texts = files.map((f) => readFileSync(join(SPECS, f), 'utf8'));
    expect(nlspec([...texts, texts[0].replace(/^# SPDX[^\n]*\n/, '')])).toEqual([...files.map(() => null), expect.stringContaining('SPDX')]);
  });

  describe.each(files)('%s', (file) => {
    const text = readFileSync(join(SPECS, file), 'utf8');
    it('starts with an SPDX line', () => {
      expect(text.split('\n', 1)[0]).toMatch(/^# SPDX-License-Identifier: \S/);
    });
    it_('validates against the schema of its protocol', () => {
      const spec = parse(text);
      const r = upstreamCheck(text, spec);
      if (!r.ok) throw new Error(`${file} fails ${spec.protocol ?? 'genetlink'}.yaml:\n${describeErrors(r.errors)}`);
      expect(r).toMatchObject({ ok: true, spdx: true });
    });
  });
});
