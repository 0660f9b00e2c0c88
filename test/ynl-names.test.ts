// The generated name tables and typed readers/writers (genl/ynl/gen.ts), checked against the spec
// and against the codec itself for every family the repository generates: a table row whose field
// the codec does not write under the row's type id, or a typed function that encodes differently
// from writeAttrs, fails here.
import * as A from '../attrs';
import * as accel from '../device/gen/accel';
import * as devlink from '../device/gen/devlink';
import * as drm from '../device/gen/drm-ras';
import fc from 'fast-check';
import { type AttrName, type AttrType, type Spec, readAttrs, writeAttrs } from '../genl/ynl';
import { camel, pascal } from '../genl/ynl/model';

type Mod = Record<string, unknown> & { spec: Spec; OP_NAMES: Record<number, string>; ATTR_NAMES: Record<string, Record<number, AttrName>> };
const MODULES: [string, Mod][] = [['accel', accel as unknown as Mod], ['drm-ras', drm as unknown as Mod], ['devlink', devlink as unknown as Mod]];

/** A valid value of each type, enough to make the codec emit the attribute. */
const SAMPLE: Partial<Record<AttrType, unknown>> = {
  flag: true, u8: 1, s8: 1, u16: 1, s16: 1, u32: 1, s32: 1, u64: 1, s64: 1n, uint: 1, sint: 1, string: 'x', binary: new Uint8Array([1]),
  nest: {},
};

describe.each(MODULES)('%s: generated name tables', (_name, mod) => {
  const { spec } = mod;

  test('OP_NAMES maps every command id to its op, and CMD keys to the same ids', () => {
    expect(Object.keys(mod.OP_NAMES).length).toBe(spec.operations.length);
    for (const op of spec.operations) expect(mod.OP_NAMES[op.value]).toBe(op.name);
    const cmd = mod.CMD as Record<string, number>;
    expect(Object.values(cmd).map((v) => mod.OP_NAMES[v]).sort()).toEqual(spec.operations.map((o) => o.name).sort());
  });

  test('ATTR_NAMES: constant keys index the set constants, fields are what the codec writes and reads', () => {
    for (const set of spec.attributeSets) {
      const rows = mod.ATTR_NAMES[set.name];
      expect(Object.keys(rows).map(Number).sort((a, b) => a - b)).toEqual(set.attributes.map((a) => a.value).sort((a, b) => a - b));
      const consts = Object.values(mod).find((v) => typeof v === 'object' && v !== null && 'MAX' in v &&
        set.attributes.every((a) => (v as Record<string, number>)[rows[a.value].constant] === a.value)) as Record<string, number> | undefined;
      expect(consts).toBeDefined();
      for (const a of set.attributes) {
        const row = rows[a.value];
        expect(row.name).toBe(a.name);
        expect(row.nested).toBe(a.nestedAttributes);
        const t = a.type === 'indexed-array' ? 'indexed-array' : a.type;
        const sample = t === 'indexed-array' ? [] : SAMPLE[t];
        if (sample === undefined) continue; // pad, unused: never written
        const w = A.newWriter(64);
        writeAttrs(w, spec, set.name, { [row.field]: a.multiAttr ? [sample] : sample });
        expect(A.bytes(w).length).toBeGreaterThan(0);
        expect(w.dv.getUint16(2, true) & A.NLA_TYPE_MASK).toBe(a.value);
        expect(Object.keys(readAttrs(A.view(A.bytes(w)), 0, w.len, spec, set.name))).toEqual([row.field]);
      }
    }
  });

  test('<DEF>_NAMES lists every enum entry in value order, <DEF>_VALUES gives each one\'s wire value', () => {
    for (const d of spec.definitions) {
      if (d.type === 'const') continue;
      const pair = Object.entries(mod).filter(([k]) => k.endsWith('_NAMES') && k !== 'OP_NAMES' && k !== 'ATTR_NAMES')
        .find(([, v]) => JSON.stringify(v) === JSON.stringify([...d.entries!].sort((x, y) => x.value - y.value).map((e) => e.name)));
      expect(pair).toBeDefined();
      const values = mod[pair![0].replace(/_NAMES$/, '_VALUES')] as Record<string, number>;
      expect(values).toEqual(Object.fromEntries(d.entries!.map((e) => [e.name, e.value])));
    }
  });

  test('typed readX/writeX per set encode as writeAttrs does and decode what it wrote', () => {
    for (const set of spec.attributeSets) {
      const t = Object.keys(mod).find((k) => k.startsWith('write') && mod[`read${k.slice(5)}`] &&
        (mod.ATTR_NAMES[set.name] && k === `write${pascal(set.name)}`));
      expect(t).toBeDefined();
      const write = mod[t!] as (w: A.Writer, o: object) => void;
      const read = mod[`read${t!.slice(5)}`] as (v: A.View, s: number, e: number) => Record<string, unknown>;
      const obj = Object.fromEntries(set.attributes.filter((a) => SAMPLE[a.type] !== undefined && a.type !== 'nest')
        .map((a) => [mod.ATTR_NAMES[set.name][a.value].field, a.multiAttr ? [SAMPLE[a.type]] : SAMPLE[a.type]]));
      const w1 = A.newWriter(16);
      const w2 = A.newWriter(16);
      write(w1, obj);
      writeAttrs(w2, spec, set.name, obj);
      expect(A.bytes(w1)).toEqual(A.bytes(w2));
      // A copy of the spec has no generated readers: readAttrs compiles its reader from readerSource.
      expect(read(A.view(A.bytes(w1)), 0, w1.len)).toEqual(readAttrs(A.view(A.bytes(w2)), 0, w2.len, structuredClone(spec), set.name));
    }
  });

  test('every set\'s reader is generated: a fresh module reads each set without compiling code', () => {
    const compiled = jest.spyOn(globalThis, 'Function');
    try {
      jest.isolateModules(() => {
        const fresh = require(`../device/gen/${_name}`) as Record<string, unknown>;
        const empty = A.view(new Uint8Array(8));
        for (const set of spec.attributeSets) {
          const read = Object.entries(fresh).find(([k, v]) => k.startsWith('read') && typeof v === 'function' &&
            k === `read${pascal(set.name)}`)?.[1] as (v: A.View, s: number, e: number) => unknown;
          expect(read(empty, 0, 8)).toEqual({});
        }
      });
      expect(compiled).not.toHaveBeenCalled();
    } finally {
      compiled.mockRestore();
    }
  });
});

test('a bad value through a typed writer throws the codec\'s message, naming the field', () => {
  const w = A.newWriter(16);
  expect(() => accel.writeAccel(w, { devIndex: -1 })).toThrow('accel.devIndex: -1 does not fit u32');
  expect(() => drm.writeErrorCounterAttrs(w, { errorName: 7 as never })).toThrow('error-counter-attrs.errorName: expected a string');
});

test('camel: the words split at runs of - and _, each after the first with its first letter upper-cased', () => {
  expect(['dev-index', 'bo_handle', '-lead', 'a--b_c', 'x', 'tail-', ''].map(camel)).toEqual(['devIndex', 'boHandle', 'lead', 'aBC', 'x', 'tail', '']);
  const words = (n: string): string => n.split(/[-_]+/).filter(Boolean).map((w, i) => (i ? w[0].toUpperCase() + w.slice(1) : w)).join('');
  fc.assert(fc.property(fc.stringMatching(/^[a-z0-9_-]{0,12}$/), (n) => camel(n) === words(n)));
});
