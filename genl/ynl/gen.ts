// Code generator: a spec → a TypeScript module with the spec model as a literal, typed constants
// (CMD, one object per attribute set, enums, consts, GROUP) and one interface per attribute set.
// `npm run gen` (genl/ynl/gen-cli.js) writes every TARGETS entry; a test fails when one is stale.
import { readFileSync } from 'fs';
import { dirname, join, relative, sep } from 'path';
import { readerSource } from './decoder';
import { fieldSet } from './fields';
import { loadSpec } from './load';
import { type Attr, type AttrType, type Spec, camel, pascal, upperSnake } from './model';

export interface GenTarget {
  /** The spec, relative to the repository root. */
  spec: string;
  /** The generated module, next to the spec's users. */
  out: string;
}

/** Every spec in the repository and where its module goes. */
export const TARGETS: readonly GenTarget[] = [
  { spec: 'docs/netlink/specs/accel.yaml', out: 'device/gen/accel.ts' },
  { spec: 'docs/netlink/specs/drm-ras.yaml', out: 'device/gen/drm-ras.ts' },
  { spec: 'docs/netlink/specs/devlink.yaml', out: 'device/gen/devlink.ts' },
];

/** The text of `t.out` as generated from `t.spec`. */
export function renderTarget(root: string, t: GenTarget): string {
  const spec = loadSpec(readFileSync(join(root, t.spec), 'utf8'), t.spec);
  let from = relative(dirname(join(root, t.out)), join(root, 'genl/ynl')).split(sep).join('/');
  if (!from.startsWith('.')) from = `./${from}`;
  return generate(spec, { source: t.spec, importFrom: from });
}

const IDENT = /^[A-Za-z_$][\w$]*$/;
const prop = (k: string): string => (IDENT.test(k) ? k : `'${k}'`);
const typeName = (n: string): string => (/^\d/.test(n) ? `_${pascal(n)}` : pascal(n));

/** A JSDoc block at `indent`, wrapped at 100 columns; nothing for an empty doc. */
function jsdoc(doc: string | undefined, indent = ''): string[] {
  if (!doc?.trim()) return [];
  const width = 100 - indent.length - 3;
  const lines: string[] = [];
  for (const para of doc.replace(/\*\//g, '*\\/').trim().split('\n')) {
    let line = '';
    for (const word of para.trim().split(/\s+/)) {
      if (line && line.length + 1 + word.length > width) { lines.push(line); line = word; } else line = line ? `${line} ${word}` : word;
    }
    lines.push(line);
  }
  if (lines.length === 1) return [`${indent}/** ${lines[0]} */`];
  return [`${indent}/**`, ...lines.map((l) => (l ? `${indent} * ${l}` : `${indent} *`)), `${indent} */`];
}

/**
 * Export names: sets take UPPER_SNAKE / PascalCase of their name; an enum that collides gets an
 * `_ENUM` / `Enum` suffix, a const a `_CONST` suffix; anything still colliding is an error.
 */
function names(spec: Spec): {
  setConst: Map<string, string>; setType: Map<string, string>; defConst: Map<string, string>; defType: Map<string, string>;
  defNames: Map<string, string>; defValues: Map<string, string>; setRead: Map<string, string>; setWrite: Map<string, string>;
} {
  const taken = new Set(['FAMILY_NAME', 'FAMILY_VERSION', 'CMD', 'GROUP', 'OpName', 'OP_NAMES', 'ATTR_NAMES', 'SetName', 'AttrName', 'Spec', 'spec', 'setCodec', 'setReaders']);
  const claim = (n: string, alt: string, what: string): string => {
    const pick = taken.has(n) ? alt : n;
    if (taken.has(pick)) throw new Error(`${spec.name}: generated name ${pick} (${what}) collides; rename it in the spec`);
    taken.add(pick);
    return pick;
  };
  const setConst = new Map<string, string>();
  const setType = new Map<string, string>();
  const defConst = new Map<string, string>();
  const defType = new Map<string, string>();
  for (const s of spec.attributeSets) {
    setConst.set(s.name, claim(upperSnake(s.name), upperSnake(s.name), `attribute set ${s.name}`));
    setType.set(s.name, claim(typeName(s.name), typeName(s.name), `attribute set ${s.name}`));
  }
  for (const d of spec.definitions) {
    if (d.type === 'const') defConst.set(d.name, claim(upperSnake(d.name), `${upperSnake(d.name)}_CONST`, `const ${d.name}`));
    else {
      defConst.set(d.name, claim(upperSnake(d.name), `${upperSnake(d.name)}_ENUM`, `${d.type} ${d.name}`));
      defType.set(d.name, claim(typeName(d.name), `${typeName(d.name)}Enum`, `${d.type} ${d.name}`));
    }
  }
  // The name tables and typed functions take their names from the claims above, so they cannot clash
  // with each other's bases; anything else that collides is an error, as above.
  const defNames = new Map<string, string>();
  const defValues = new Map<string, string>();
  for (const d of spec.definitions) {
    if (d.type === 'const') continue;
    defNames.set(d.name, claim(`${defConst.get(d.name)}_NAMES`, `${defConst.get(d.name)}_NAMES`, `${d.type} ${d.name} names`));
    defValues.set(d.name, claim(`${defConst.get(d.name)}_VALUES`, `${defConst.get(d.name)}_VALUES`, `${d.type} ${d.name} values`));
  }
  const setRead = new Map<string, string>();
  const setWrite = new Map<string, string>();
  for (const s of spec.attributeSets) {
    setRead.set(s.name, claim(`read${setType.get(s.name)}`, `read${setType.get(s.name)}`, `reader of ${s.name}`));
    setWrite.set(s.name, claim(`write${setType.get(s.name)}`, `write${setType.get(s.name)}`, `writer of ${s.name}`));
  }
  return { setConst, setType, defConst, defType, defNames, defValues, setRead, setWrite };
}

const WIDE = new Set<AttrType>(['u64', 's64', 'uint', 'sint']);

function fieldType(spec: Spec, a: Attr, t: AttrType, n: ReturnType<typeof names>): string {
  switch (t) {
    case 'flag': return 'boolean';
    case 'string': return 'string';
    case 'binary': return 'Uint8Array';
    case 'nest': return n.setType.get(a.nestedAttributes!)!;
  }
  const base = WIDE.has(t) ? 'number | bigint' : 'number';
  if (a.enum === undefined) return base;
  const def = spec.definitions.find((d) => d.name === a.enum)!;
  const en = n.defType.get(def.name)!;
  return def.type === 'flags' || a.enumAsFlags ? `${base} | ${en}[]` : `${en} | ${base}`;
}

function attrField(spec: Spec, a: Attr, n: ReturnType<typeof names>): string {
  if (a.type === 'indexed-array' || a.multiAttr) {
    const el = fieldType(spec, a, a.type === 'indexed-array' ? a.subType! : a.type, n);
    return el.includes(' ') ? `Array<${el}>` : `${el}[]`;
  }
  return fieldType(spec, a, a.type, n);
}

/** Render the spec model as a TS literal, one line per value unless it fits in 100 columns. */
function literal(x: unknown, indent = ''): string {
  if (typeof x === 'string') return quote(x);
  if (typeof x !== 'object' || x === null) return String(x);
  const parts = Array.isArray(x)
    ? x.map((e) => literal(e, `${indent}  `))
    : Object.entries(x).filter(([, v]) => v !== undefined).map(([k, v]) => `${prop(k)}: ${literal(v, `${indent}  `)}`);
  const [open, close] = Array.isArray(x) ? ['[', ']'] : ['{ ', ' }'];
  if (!parts.length) return Array.isArray(x) ? '[]' : '{}';
  const flat = `${open}${parts.join(', ')}${close}`;
  if (!flat.includes('\n') && indent.length + flat.length <= 80) return flat;
  return `${open.trim()}\n${parts.map((p) => `${indent}  ${p},`).join('\n')}\n${indent}${close.trim()}`;
}

const quote = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** A deep copy of `x` without `doc` fields (the generated literal leaves them to the JSDoc). */
export function withoutDocs<T>(x: T): T {
  if (Array.isArray(x)) return x.map(withoutDocs) as T;
  if (typeof x !== 'object' || x === null) return x;
  return Object.fromEntries(Object.entries(x).filter(([k]) => k !== 'doc').map(([k, v]) => [k, withoutDocs(v)])) as T;
}

export interface GenOptions {
  /** The spec's path, named in the header. */
  source: string;
  /** Import path of genl/ynl from the generated file. */
  importFrom: string;
}

export function generate(spec: Spec, o: GenOptions): string {
  const n = names(spec);
  const out: string[] = [
    `// Generated by genl/ynl/gen.ts from ${o.source}: do not edit.`,
    '// Change the spec and run `npm run gen`; test/ynl.test.ts fails while the two disagree.',
    `import type { AttrName, Spec } from '${o.importFrom}';`,
    `import { setCodec, setReaders } from '${o.importFrom}/codec';`,
    '',
    ...jsdoc(spec.doc),
    `export const FAMILY_NAME = ${quote(spec.name)};`,
    `export const FAMILY_VERSION = ${spec.version};`,
    '',
    '/** Command ids (unified enum), events and notifications included. */',
    'export const CMD = {',
  ];
  for (const op of spec.operations) out.push(...jsdoc(op.doc, '  '), `  ${prop(upperSnake(op.name))}: ${op.value},`);
  out.push('} as const;', '');
  out.push(`export type OpName = ${spec.operations.map((op) => quote(op.name)).join(' | ') || 'never'};`, '');
  out.push('/** Multicast group names; ids are assigned at registration (resolve them through nlctrl). */');
  out.push('export const GROUP = {', ...spec.mcastGroups.map((g) => `  ${prop(upperSnake(g.name))}: ${quote(g.name)},`), '} as const;');

  for (const d of spec.definitions) {
    out.push('', ...jsdoc(d.doc));
    const c = n.defConst.get(d.name)!;
    if (d.type === 'const') {
      out.push(`export const ${c} = ${typeof d.value === 'string' ? quote(d.value) : d.value};`);
      continue;
    }
    out.push(`export const ${c} = {`);
    for (const e of d.entries!) out.push(...jsdoc(e.doc, '  '), `  ${prop(upperSnake(e.name))}: ${e.value},`);
    const type = n.defType.get(d.name)!;
    out.push('} as const;', `export type ${type} = ${d.entries!.map((e) => quote(e.name)).join(' | ')};`);
    out.push(`/** The ${d.name} entry names (spec spelling), in value order. */`);
    out.push(`export const ${n.defNames.get(d.name)}: readonly ${type}[] = [${[...d.entries!].sort((x, y) => x.value - y.value).map((e) => quote(e.name)).join(', ')}];`);
    out.push(`/** The wire value of each ${d.name} entry${d.type === 'flags' ? ' (its bit)' : ''}, by spec name. */`);
    out.push(`export const ${n.defValues.get(d.name)}: Readonly<Record<${type}, number>> = {`);
    for (const e of d.entries!) out.push(`  ${quote(e.name)}: ${e.value},`);
    out.push('};');
  }

  for (const s of spec.attributeSets) {
    const c = n.setConst.get(s.name)!;
    const what = `attribute set ${s.name}${s.subsetOf ? `, a subset of ${s.subsetOf}` : ''}`;
    out.push('', ...jsdoc(s.doc ? `${s.doc} (${what})` : `The ${what}.`));
    out.push(`export const ${c} = {`);
    for (const a of [...s.attributes].sort((x, y) => x.value - y.value)) {
      if (upperSnake(a.name) === 'MAX') throw new Error(`${spec.name}: attribute "${a.name}" of ${s.name} collides with MAX`);
      out.push(`  ${prop(upperSnake(a.name))}: ${a.value},`);
    }
    out.push(`  MAX: ${s.max},`, '} as const;', '');
    out.push(`export interface ${n.setType.get(s.name)} {`);
    for (const a of s.attributes) {
      if (a.type === 'pad' || a.type === 'unused') continue;
      out.push(...jsdoc(a.doc, '  '), `  ${prop(camel(a.name))}?: ${attrField(spec, a, n)};`);
    }
    out.push('}');
  }

  out.push('', '// ---- name tables: spec name <-> constant <-> TypeScript field; no module converts names ----');
  out.push('', '/** Op name (spec spelling, the handler key) by command id; events and notifications included. */');
  out.push('export const OP_NAMES: Readonly<Record<number, OpName>> = {', ...spec.operations.map((op) => `  ${op.value}: ${quote(op.name)},`), '};');
  out.push('', '/** Per attribute set, by attribute type id: its spec name, constant key and object field. */');
  out.push('', `export type SetName = ${spec.attributeSets.map((s) => quote(s.name)).join(' | ') || 'never'};`);
  out.push('export const ATTR_NAMES: Readonly<Record<SetName, Readonly<Record<number, AttrName>>>> = {');
  for (const s of spec.attributeSets) {
    out.push(`  ${quote(s.name)}: {`);
    for (const a of [...s.attributes].sort((x, y) => x.value - y.value)) {
      const nested = a.nestedAttributes !== undefined ? `, nested: ${quote(a.nestedAttributes)}` : '';
      out.push(`    ${a.value}: { name: ${quote(a.name)}, constant: ${quote(upperSnake(a.name))}, field: ${quote(camel(a.name))}${nested} },`);
    }
    out.push('  },');
  }
  out.push('};');

  out.push('', `/** The loaded spec (genl/ynl model) of ${o.source}; its docs are the comments above. */`);
  out.push(`export const spec: Spec = ${literal(withoutDocs(spec))};`);

  out.push('', '// ---- the reader of each attribute set (genl/ynl/decoder.ts: readerSource) ----');
  out.push('', 'setReaders(spec, {');
  for (const s of spec.attributeSets) {
    const src = readerSource(fieldSet(spec, s.name).ordered).split('\n').map((l, i) => (i ? `  ${l}` : l)).join('\n');
    out.push(`  ${quote(s.name)}: (F, T, one, record) => ${src},`);
  }
  out.push('});');
  out.push('', '// ---- typed readers and writers per attribute set (genl/ynl/codec.ts, built on first use) ----');
  for (const s of spec.attributeSets) {
    const t = n.setType.get(s.name)!;
    const c = `codec${t}`;
    out.push('', `const ${c} = setCodec<${t}>(spec, ${quote(s.name)});`);
    out.push(`/** Decode [start, end) as ${s.name}; never throws (unknown attributes are skipped). */`);
    out.push(`export const ${n.setRead.get(s.name)} = ${c}.read;`);
    out.push(`/** Append \`o\` as ${s.name} attributes in value order; a bad value throws, naming its field. */`);
    out.push(`export const ${n.setWrite.get(s.name)} = ${c}.write;`);
  }
  out.push('');
  return out.join('\n');
}
