// Every spec in docs/netlink/specs/ (also ones added later) validates against the kernel's genetlink
// schema for its protocol level, with ajv, and has the SPDX first line that ynl's loader requires.
import { readFileSync, readdirSync } from 'fs';
import { join } from 'path';
import { parse } from 'yaml';
import { SCHEMA_DIR, describeErrors, upstreamCheck, upstreamValidator } from './helpers/upstream-schema';

const SPECS = join(__dirname, '../docs/netlink/specs');
const files = readdirSync(SPECS).filter((f) => f.endsWith('.yaml')).sort();
const it_ = SCHEMA_DIR ? it : it.skip;
if (!SCHEMA_DIR) console.warn('spec-schema: ../shared/peers/ynl is absent, the upstream schema checks are skipped');

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
