// Spec loader: YAML text (or its parsed object) → the model in model.ts, with every default filled
// in. A spec is developer input, so anything malformed, unknown or unsupported throws a SpecError
// naming the offending path (e.g. `attribute-sets[node-attrs].attributes[node-type].enum`).
import { readFileSync } from 'fs';
import { type Scalar, parseDocument, visit } from 'yaml';
import { SpecError } from './errors';
import {
  ATTR_TYPES, type Attr, type AttrSet, type AttrType, type Checks, type Definition, type DontValidate,
  type EnumEntry, type Limit, type McastGroup, type OpFlag, type OpHalfSpec, type Operation, SCALAR_TYPES,
  type Spec, camel, resolveLimit, typeLimit,
} from './model';
import { SPDX_PREFIX, UNSUPPORTED_TYPES, YAML11_BOOL, checkShape } from './shape';

export { SpecError };

type Raw = Record<string, unknown>;

const NAME = /^[a-z0-9][a-z0-9_-]*$/;
const FAMILY_NAME = /^[0-9a-z-]+$/;
const at = (path: string, key: string | number): string =>
  typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key;

function obj(x: unknown, path: string): Raw {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) throw new SpecError(path, 'must be a mapping');
  return x as Raw;
}

function onlyKeys(o: Raw, path: string, allowed: readonly string[], unsupported: Record<string, string> = {}): void {
  for (const k of Object.keys(o)) {
    if (unsupported[k]) throw new SpecError(at(path, k), `not supported: ${unsupported[k]}`);
    if (!allowed.includes(k)) throw new SpecError(at(path, k), 'unknown key');
  }
}

function str(o: Raw, k: string, path: string, required = false): string | undefined {
  const v = o[k];
  if (v === undefined) {
    if (required) throw new SpecError(at(path, k), 'is required');
    return undefined;
  }
  if (typeof v !== 'string') throw new SpecError(at(path, k), 'must be a string');
  return v;
}

function name(o: Raw, path: string, re = NAME): string {
  const n = str(o, 'name', path, true)!;
  if (!re.test(n)) throw new SpecError(at(path, 'name'), `"${n}" is not a valid name (${re.source})`);
  return n;
}

function int(o: Raw, k: string, path: string, min = -Infinity): number | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new SpecError(at(path, k), `must be an integer${min > -Infinity ? ` >= ${min}` : ''}`);
  }
  return v;
}

function bool(o: Raw, k: string, path: string): boolean | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new SpecError(at(path, k), 'must be true or false');
  return v;
}

function list(o: Raw, k: string, path: string): unknown[] {
  const v = o[k];
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new SpecError(at(path, k), 'must be a list');
  return v;
}

function strList<T extends string>(o: Raw, k: string, path: string, allowed?: readonly T[]): T[] {
  const out = list(o, k, path).map((x, i) => {
    if (typeof x !== 'string') throw new SpecError(at(at(path, k), i), 'must be a string');
    if (allowed && !allowed.includes(x as T)) {
      throw new SpecError(at(at(path, k), i), `"${x}" is not one of ${allowed.join(', ')}`);
    }
    return x as T;
  });
  const dup = out.find((x, i) => out.indexOf(x) !== i);
  if (dup !== undefined) throw new SpecError(at(path, k), `"${dup}" is listed twice`);
  return out;
}

/** Drop undefined fields so the model (and its generated literal) stays minimal. */
function clean<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

function named<T extends { name: string }>(items: T[], path: string, what: string): void {
  const seen = new Set<string>();
  for (const it of items) {
    if (seen.has(it.name)) throw new SpecError(path, `duplicate ${what} "${it.name}"`);
    seen.add(it.name);
  }
}

const TOP_KEYS = ['name', 'doc', 'protocol', 'uapi-header', 'definitions', 'attribute-sets', 'operations',
  'mcast-groups'];
const C_KEYS = ['c-family-name', 'c-version-name', 'max-by-define', 'cmd-max-name', 'cmd-cnt-name'];
const LEGACY_KEYS = ['version', 'kernel-policy'];

export interface LoadOptions {
  /**
   * Accept the EXTENSIONS of shape.ts (s8, s16, indexed-array, unterminated-ok, negative min/max),
   * which later upstream schemas have and the pinned ones lack. On by default; off, the loader's
   * verdict is the pinned upstream schema's.
   */
  extensions?: boolean;
}

/**
 * YAML as ynl reads it (PyYAML's safe_load, YAML 1.1): unquoted yes/no/on/off are booleans, 0777
 * is octal, 1_000 an integer, 0o17 a string. The yaml package's 1.2 core schema reads them
 * otherwise, so plain scalars are re-read here.
 */
function parseYaml11(text: string): unknown {
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length) throw doc.errors[0];
  visit(doc, {
    Scalar(_, n: Scalar) {
      const src = (n as Scalar & { source?: string }).source;
      if (n.type !== 'PLAIN' || typeof src !== 'string') return;
      if (YAML11_BOOL.test(src)) n.value = /^(?:yes|true|on)$/i.test(src);
      else if (/^[-+]?0[0-7]+$/.test(src)) n.value = parseInt(src, 8);
      else if (/^[-+]?0o[0-7]+$/i.test(src)) n.value = src;
      else if (/^[-+]?(?:0|[1-9][0-9_]*)$/.test(src) && src.includes('_')) n.value = Number(src.replace(/_/g, ''));
    },
  });
  return doc.toJS();
}

/**
 * Load a spec from YAML text or an already parsed object. Text must start with the SPDX line ynl
 * requires; then the structure is checked against the upstream schema of the spec's protocol level
 * (shape.ts), then everything the generator needs (references, values, supported features).
 */
export function loadSpec(src: string | object, file = '', opts: LoadOptions = {}): Spec {
  let raw: unknown = src;
  if (typeof src === 'string') {
    if (!src.split('\n', 1)[0].trim().startsWith(SPDX_PREFIX)) {
      throw new SpecError(file, `SPDX license tag required in the spec (a first line "${SPDX_PREFIX}...")`);
    }
    try {
      raw = parseYaml11(src);
    } catch (e) {
      throw new SpecError(file, `YAML: ${(e as Error).message}`);
    }
  }
  checkShape(raw, opts.extensions ?? true);
  const top = obj(raw, file);
  const protocol = (str(top, 'protocol', '') ?? 'genetlink') as Spec['protocol'];
  if (!['genetlink', 'genetlink-c', 'genetlink-legacy'].includes(protocol)) {
    throw new SpecError('protocol', `"${protocol}" is not supported (genetlink, genetlink-c, genetlink-legacy)`);
  }
  const allowed = [...TOP_KEYS, ...(protocol === 'genetlink' ? [] : C_KEYS),
    ...(protocol === 'genetlink-legacy' ? LEGACY_KEYS : [])];
  onlyKeys(top, '', allowed, protocol === 'genetlink-legacy' ? {} : {
    version: 'only with protocol: genetlink-legacy', 'kernel-policy': 'only with protocol: genetlink-legacy',
  });
  const kp = str(top, 'kernel-policy', '');
  if (kp !== undefined && kp !== 'split') throw new SpecError('kernel-policy', `"${kp}" is not supported, only split`);
  if (top['kernel-family'] !== undefined) obj(top['kernel-family'], 'kernel-family');

  const spec: Spec = clean({
    name: name(top, '', FAMILY_NAME),
    doc: str(top, 'doc', ''),
    protocol,
    uapiHeader: str(top, 'uapi-header', ''),
    version: int(top, 'version', '', 1) ?? 1,
    definitions: [] as Definition[],
    attributeSets: [] as AttrSet[],
    operations: [] as Operation[],
    mcastGroups: [] as McastGroup[],
  });
  spec.definitions = list(top, 'definitions', '').map((d, i) => loadDefinition(d, at('definitions', i)));
  named(spec.definitions, 'definitions', 'definition');
  spec.mcastGroups = loadGroups(top['mcast-groups']);
  loadSets(spec, list(top, 'attribute-sets', ''));
  if (top['attribute-sets'] === undefined) throw new SpecError('attribute-sets', 'is required');
  if (top.operations === undefined) throw new SpecError('operations', 'is required');
  spec.operations = loadOps(spec, obj(top.operations, 'operations'));
  return spec;
}

export function loadSpecFile(path: string, opts: LoadOptions = {}): Spec {
  return loadSpec(readFileSync(path, 'utf8'), path, opts);
}

function loadDefinition(x: unknown, path: string): Definition {
  const o = obj(x, path);
  const n = name(o, path);
  path = `definitions[${n}]`;
  onlyKeys(o, path, ['name', 'type', 'doc', 'header', 'value', 'value-start', 'entries', 'render-max', 'enum-name',
    'name-prefix', 'enum-cnt-name'], { members: 'struct definitions are not supported' });
  const type = str(o, 'type', path, true)!;
  if (type === 'struct') throw new SpecError(at(path, 'type'), 'not supported: struct definitions');
  if (type !== 'const' && type !== 'enum' && type !== 'flags') {
    throw new SpecError(at(path, 'type'), `"${type}" is not one of const, enum, flags`);
  }
  const d: Definition = { name: n, type, doc: str(o, 'doc', path), header: str(o, 'header', path) };
  if (type === 'const') {
    for (const k of ['value-start', 'entries', 'render-max', 'enum-name', 'name-prefix', 'enum-cnt-name']) {
      if (o[k] !== undefined) throw new SpecError(at(path, k), 'only for enum and flags');
    }
    const v = o.value;
    if (typeof v === 'number' ? !Number.isSafeInteger(v) : typeof v !== 'string') {
      throw new SpecError(at(path, 'value'), 'must be an integer or a string');
    }
    d.value = v as number | string;
    return clean(d);
  }
  if (o.value !== undefined) throw new SpecError(at(path, 'value'), 'only for const (entries carry values)');
  const start = int(o, 'value-start', path) ?? 0;
  const entries: EnumEntry[] = [];
  let next = start;
  list(o, 'entries', path).forEach((e, i) => {
    const ep = at(at(path, 'entries'), i);
    const eo: Raw = typeof e === 'string' ? { name: e } : obj(e, ep);
    onlyKeys(eo, ep, ['name', 'value', 'doc']);
    const pos = int(eo, 'value', ep) ?? next;
    next = pos + 1;
    if (type === 'flags' && (pos < 0 || pos > 63)) throw new SpecError(ep, `flag bit ${pos} outside 0..63`);
    entries.push(clean({ name: name(eo, ep), value: type === 'flags' ? 2 ** pos : pos, doc: str(eo, 'doc', ep) }));
  });
  if (!entries.length) throw new SpecError(at(path, 'entries'), 'an enum needs at least one entry');
  named(entries, at(path, 'entries'), 'entry');
  return clean({
    ...d, valueStart: o['value-start'] === undefined ? undefined : start, entries,
    renderMax: bool(o, 'render-max', path), enumName: str(o, 'enum-name', path), namePrefix: str(o, 'name-prefix', path),
  });
}

function loadGroups(x: unknown): McastGroup[] {
  if (x === undefined) return [];
  const o = obj(x, 'mcast-groups');
  onlyKeys(o, 'mcast-groups', ['list']);
  const groups = list(o, 'list', 'mcast-groups').map((g, i) => {
    const p = at('mcast-groups.list', i);
    const go = obj(g, p);
    onlyKeys(go, p, ['name', 'flags', 'c-define-name']);
    return { name: name(go, p), flags: strList<OpFlag>(go, 'flags', p, ['admin-perm', 'uns-admin-perm']) };
  });
  named(groups, 'mcast-groups.list', 'group');
  return groups;
}

const ATTR_KEYS = ['name', 'type', 'doc', 'value', 'byte-order', 'multi-attr', 'nested-attributes', 'enum',
  'enum-as-flags', 'checks', 'sub-type', 'display-hint', 'name-prefix'];
const CHECK_KEYS = ['min', 'max', 'min-len', 'max-len', 'exact-len', 'flags-mask', 'unterminated-ok'];
const INT_TYPES = new Set<string>(SCALAR_TYPES);
const UNSIGNED = new Set<string>(['u8', 'u16', 'u32', 'u64', 'uint']);
const LEN_KEYS = { 'min-len': 'minLen', 'max-len': 'maxLen', 'exact-len': 'exactLen' } as const;

function loadSets(spec: Spec, raws: unknown[]): void {
  // Sets are built in two passes: full sets first, then subsets (which copy from their parent), then
  // every cross-reference is checked once all names exist.
  const pending = raws.map((x, i) => {
    const o = obj(x, at('attribute-sets', i));
    return { o, path: `attribute-sets[${name(o, at('attribute-sets', i))}]` };
  });
  for (const { o, path } of pending) {
    onlyKeys(o, path, ['name', 'name-prefix', 'enum-name', 'doc', 'subset-of', 'attributes', 'attr-cnt-name',
      'attr-max-name']);
    if (o.attributes === undefined) throw new SpecError(at(path, 'attributes'), 'is required');
    if (o['subset-of'] !== undefined && o['name-prefix'] !== undefined) {
      throw new SpecError(at(path, 'name-prefix'), 'a subset inherits its parent\'s naming');
    }
    const n = o.name as string;
    spec.attributeSets.push(clean({
      name: n, namePrefix: str(o, 'name-prefix', path) ?? `${spec.name}-a-${n}-`, doc: str(o, 'doc', path),
      subsetOf: str(o, 'subset-of', path), enumName: str(o, 'enum-name', path), attributes: [], max: 0,
    }));
  }
  named(spec.attributeSets, 'attribute-sets', 'attribute set');
  pending.forEach(({ o, path }, i) => { if (!o['subset-of']) loadAttrs(spec, spec.attributeSets[i], o, path); });
  pending.forEach(({ o, path }, i) => { if (o['subset-of']) loadSubset(spec, spec.attributeSets[i], o, path); });
  pending.forEach(({ path }, i) => {
    const set = spec.attributeSets[i];
    set.attributes.forEach((a) => checkAttr(spec, a, `${path}.attributes[${a.name}]`));
  });
}

function loadAttrs(spec: Spec, set: AttrSet, o: Raw, path: string): void {
  let next = 1;
  list(o, 'attributes', path).forEach((x, i) => {
    const ap = at(at(path, 'attributes'), i);
    const ao = obj(x, ap);
    const n = name(ao, ap);
    const p = `${path}.attributes[${n}]`;
    onlyKeys(ao, p, ATTR_KEYS, { struct: 'struct binaries are not supported', 'type-value': 'nest-type-value is not supported' });
    const type = attrType(str(ao, 'type', p, true)!, at(p, 'type'));
    const value = int(ao, 'value', p, 0) ?? next;
    next = value + 1;
    const byteOrder = str(ao, 'byte-order', p);
    if (byteOrder !== undefined && byteOrder !== 'little-endian' && byteOrder !== 'big-endian') {
      throw new SpecError(at(p, 'byte-order'), 'must be little-endian or big-endian');
    }
    const sub = str(ao, 'sub-type', p);
    set.attributes.push(clean({
      name: n, value, type, doc: str(ao, 'doc', p), nestedAttributes: str(ao, 'nested-attributes', p),
      multiAttr: bool(ao, 'multi-attr', p), enum: str(ao, 'enum', p), enumAsFlags: bool(ao, 'enum-as-flags', p),
      checks: loadChecks(ao.checks, at(p, 'checks')), byteOrder: byteOrder as Attr['byteOrder'],
      subType: sub === undefined ? undefined : attrType(sub, at(p, 'sub-type')), displayHint: str(ao, 'display-hint', p),
    }));
  });
  finishSet(set, path);
}

function loadSubset(spec: Spec, set: AttrSet, o: Raw, path: string): void {
  const parent = spec.attributeSets.find((s) => s.name === set.subsetOf);
  if (!parent) throw new SpecError(at(path, 'subset-of'), `no attribute set "${set.subsetOf}"`);
  if (parent.subsetOf) throw new SpecError(at(path, 'subset-of'), 'a subset of a subset is not supported');
  set.namePrefix = parent.namePrefix;
  list(o, 'attributes', path).forEach((x, i) => {
    const ap = at(at(path, 'attributes'), i);
    const ao = obj(x, ap);
    const n = name(ao, ap);
    const p = `${path}.attributes[${n}]`;
    // Only the nest target may be narrowed; ynl_gen_c refuses other overrides (the schema allows them).
    for (const k of Object.keys(ao)) {
      if (!['name', 'doc', 'nested-attributes'].includes(k)) {
        throw new SpecError(at(p, k), 'not supported: a subset attribute may only narrow nested-attributes');
      }
    }
    const real = parent.attributes.find((a) => a.name === n);
    if (!real) throw new SpecError(p, `"${n}" is not in "${parent.name}"`);
    set.attributes.push(clean({ ...real, doc: str(ao, 'doc', p) ?? real.doc,
      nestedAttributes: str(ao, 'nested-attributes', p) ?? real.nestedAttributes }));
  });
  finishSet(set, path);
}

function finishSet(set: AttrSet, path: string): void {
  named(set.attributes, at(path, 'attributes'), 'attribute');
  const byValue = new Map<number, string>();
  const byKey = new Map<string, string>();
  for (const a of set.attributes) {
    const prev = byValue.get(a.value);
    if (prev) throw new SpecError(`${path}.attributes[${a.name}]`, `value ${a.value} already used by "${prev}"`);
    byValue.set(a.value, a.name);
    const k = camel(a.name);
    if (byKey.has(k)) throw new SpecError(`${path}.attributes[${a.name}]`, `its field name "${k}" clashes with "${byKey.get(k)}"`);
    byKey.set(k, a.name);
  }
  set.max = set.attributes.reduce((m, a) => Math.max(m, a.value), 0);
}

function attrType(t: string, path: string): AttrType {
  if (UNSUPPORTED_TYPES[t]) throw new SpecError(path, `not supported: ${UNSUPPORTED_TYPES[t]}`);
  if (!(ATTR_TYPES as readonly string[]).includes(t)) throw new SpecError(path, `unknown attribute type "${t}"`);
  return t as AttrType;
}

function loadChecks(x: unknown, path: string): Checks | undefined {
  if (x === undefined) return undefined;
  const o = obj(x, path);
  onlyKeys(o, path, CHECK_KEYS);
  const limit = (k: string): Limit | undefined => {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v === 'string' || (typeof v === 'number' && Number.isSafeInteger(v))) return v;
    throw new SpecError(at(path, k), 'must be an integer, a const name or a type limit such as u32-max');
  };
  return clean({
    min: limit('min'), max: limit('max'), minLen: limit('min-len'), maxLen: limit('max-len'),
    exactLen: limit('exact-len'), flagsMask: str(o, 'flags-mask', path), unterminatedOk: bool(o, 'unterminated-ok', path),
  });
}

/** Cross-references and per-type rules, once every set and definition exists. */
function checkAttr(spec: Spec, a: Attr, p: string): void {
  const t = a.type;
  const c = a.checks ?? {};
  const isInt = INT_TYPES.has(t);
  const setRef = (k: string, n: string | undefined): void => {
    if (n !== undefined && !spec.attributeSets.some((s) => s.name === n)) {
      throw new SpecError(at(p, k), `no attribute set "${n}"`);
    }
  };
  const needsNest = t === 'nest' || (t === 'indexed-array' && a.subType === 'nest');
  if (needsNest && a.nestedAttributes === undefined) throw new SpecError(at(p, 'nested-attributes'), `is required for ${t}`);
  if (!needsNest && a.nestedAttributes !== undefined) throw new SpecError(at(p, 'nested-attributes'), `not allowed for ${t}`);
  setRef('nested-attributes', a.nestedAttributes);
  if (t === 'indexed-array') {
    if (!a.subType) throw new SpecError(at(p, 'sub-type'), 'is required for indexed-array');
    if (a.subType !== 'nest' && a.subType !== 'binary' && !INT_TYPES.has(a.subType)) {
      throw new SpecError(at(p, 'sub-type'), `"${a.subType}" is not supported (nest, binary or an integer type)`);
    }
  } else if (a.subType) throw new SpecError(at(p, 'sub-type'), 'only for indexed-array');
  if (a.multiAttr && (t === 'pad' || t === 'unused' || t === 'indexed-array')) {
    throw new SpecError(at(p, 'multi-attr'), `not allowed for ${t}`);
  }
  if (a.byteOrder && (!isInt || t === 'uint' || t === 'sint')) {
    throw new SpecError(at(p, 'byte-order'), 'only for fixed-width integer types');
  }
  if (a.enum !== undefined) {
    if (!isInt) throw new SpecError(at(p, 'enum'), 'only for integer types');
    const d = spec.definitions.find((x) => x.name === a.enum);
    if (!d || d.type === 'const') throw new SpecError(at(p, 'enum'), `no enum or flags definition "${a.enum}"`);
  }
  if (a.enumAsFlags && a.enum === undefined) throw new SpecError(at(p, 'enum-as-flags'), 'needs enum');
  const cp = at(p, 'checks');
  for (const k of ['min', 'max'] as const) {
    if (c[k] === undefined) continue;
    if (!isInt) throw new SpecError(at(cp, k), 'only for integer types');
    if (resolveLimit(spec, c[k]) === undefined) throw new SpecError(at(cp, k), `cannot resolve "${c[k]}"`);
  }
  const lens = Object.entries(LEN_KEYS).filter(([, f]) => c[f] !== undefined);
  for (const [k, f] of lens) {
    if (t !== 'string' && t !== 'binary') throw new SpecError(at(cp, k), 'only for string and binary');
    const raw = c[f]!;
    const v = typeof raw === 'string' && typeLimit(raw) !== undefined ? undefined : resolveLimit(spec, raw);
    if (typeof v !== 'number' || v < 0 || v > 0xffff) throw new SpecError(at(cp, k), 'must be a length (an integer or a numeric const)');
  }
  if (t === 'binary' && lens.length > 1) throw new SpecError(cp, 'a binary takes at most one of min-len, max-len, exact-len');
  if (c.flagsMask !== undefined) {
    if (!UNSIGNED.has(t)) throw new SpecError(at(cp, 'flags-mask'), 'only for unsigned integer types');
    const d = spec.definitions.find((x) => x.name === c.flagsMask);
    if (!d || d.type !== 'flags') throw new SpecError(at(cp, 'flags-mask'), `no flags definition "${c.flagsMask}"`);
  }
  if (c.unterminatedOk !== undefined && t !== 'string') throw new SpecError(at(cp, 'unterminated-ok'), 'only for string');
  // ynl_gen_c's _init_checks() refusals.
  const min = resolveLimit(spec, c.min);
  const max = resolveLimit(spec, c.max);
  if (min !== undefined && max !== undefined && min > max) throw new SpecError(cp, `min ${min} is above max ${max}`);
  if (UNSIGNED.has(t) && ((min ?? 0) < 0 || (max ?? 0) < 0)) throw new SpecError(cp, 'negative limit for an unsigned type');
}

const HALF_KEYS = ['request', 'reply', 'pre', 'post'];

function loadOps(spec: Spec, o: Raw): Operation[] {
  onlyKeys(o, 'operations', ['enum-model', 'name-prefix', 'enum-name', 'async-prefix', 'async-enum', 'list'],
    { 'fixed-header': 'fixed headers are not supported' });
  const model = str(o, 'enum-model', 'operations');
  if (model !== undefined && model !== 'unified') {
    throw new SpecError('operations.enum-model', `"${model}" is not supported, only unified`);
  }
  let next = 1;
  const ops = list(o, 'list', 'operations').map((x, i): Operation => {
    const ip = at('operations.list', i);
    const oo = obj(x, ip);
    const n = name(oo, ip);
    const p = `operations[${n}]`;
    onlyKeys(oo, p, ['name', 'doc', 'value', 'attribute-set', 'flags', 'dont-validate', 'config-cond', 'do', 'dump',
      'notify', 'event', 'mcgrp'], { 'fixed-header': 'fixed headers are not supported' });
    const value = int(oo, 'value', p, 1) ?? next;
    next = value + 1;
    const set = str(oo, 'attribute-set', p);
    if (set !== undefined && !spec.attributeSets.some((s) => s.name === set)) {
      throw new SpecError(at(p, 'attribute-set'), `no attribute set "${set}"`);
    }
    const attrs = (x2: unknown, ap: string): string[] => {
      const ao = obj(x2, ap);
      onlyKeys(ao, ap, ['attributes'], { value: 'directional messages are not supported' });
      const names = strList<string>(ao, 'attributes', ap);
      names.forEach((an, j) => {
        if (set === undefined) throw new SpecError(ap, 'attributes listed but the op has no attribute-set');
        if (!spec.attributeSets.find((s) => s.name === set)!.attributes.some((a) => a.name === an)) {
          throw new SpecError(at(at(ap, 'attributes'), j), `"${an}" is not in "${set}"`);
        }
      });
      return names;
    };
    const half = (k: 'do' | 'dump'): OpHalfSpec | undefined => {
      if (oo[k] === undefined) return undefined;
      const hp = at(p, k);
      const ho = obj(oo[k] ?? {}, hp);
      onlyKeys(ho, hp, HALF_KEYS);
      return clean({
        request: ho.request === undefined ? undefined : attrs(ho.request, at(hp, 'request')),
        reply: ho.reply === undefined ? undefined : attrs(ho.reply, at(hp, 'reply')),
        pre: str(ho, 'pre', hp), post: str(ho, 'post', hp),
      });
    };
    const op: Operation = clean({
      name: n, value, doc: str(oo, 'doc', p), attributeSet: set,
      flags: strList<OpFlag>(oo, 'flags', p, ['admin-perm', 'uns-admin-perm']),
      dontValidate: strList<DontValidate>(oo, 'dont-validate', p, ['strict', 'dump', 'dump-strict']),
      configCond: str(oo, 'config-cond', p), do: half('do'), dump: half('dump'), notify: str(oo, 'notify', p),
      event: oo.event === undefined ? undefined : { attributes: attrs(oo.event, at(p, 'event')) },
      mcgrp: str(oo, 'mcgrp', p),
    });
    const sync = op.do || op.dump;
    if (!sync && !op.event && op.notify === undefined) throw new SpecError(p, 'needs do, dump, event or notify');
    if (sync && (op.event || op.notify !== undefined)) throw new SpecError(p, 'an event or notification has no do or dump');
    if (op.event && op.notify !== undefined) throw new SpecError(p, 'event and notify are exclusive');
    if (op.mcgrp !== undefined) {
      if (sync) throw new SpecError(at(p, 'mcgrp'), 'only for events and notifications');
      if (!spec.mcastGroups.some((g) => g.name === op.mcgrp)) throw new SpecError(at(p, 'mcgrp'), `no mcast group "${op.mcgrp}"`);
    }
    return op;
  });
  named(ops, 'operations.list', 'operation');
  const ids = new Map<number, string>();
  for (const op of ops) {
    if (ids.has(op.value)) throw new SpecError(`operations[${op.name}]`, `value ${op.value} already used by "${ids.get(op.value)}"`);
    ids.set(op.value, op.name);
    if (op.notify !== undefined) {
      const target = ops.find((x) => x.name === op.notify);
      if (!target || !(target.do || target.dump)) {
        throw new SpecError(`operations[${op.name}].notify`, `no operation "${op.notify}" with do or dump`);
      }
    }
  }
  return ops;
}
