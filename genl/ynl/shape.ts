// The structure of a spec, as the kernel's genetlink JSON schemas define it
// (Documentation/netlink/genetlink{,-c,-legacy}.yaml, the copy described in
// ../shared/peers/ynl/README.txt), written out as plain rules so the runtime needs neither the
// schema files nor a JSON Schema engine. test/spec-loader-diff.test.ts proves these rules give the
// schema's verdict (accept or reject, and the key path) over hundreds of mutated specs.
//
// EXTENSIONS are the only places these rules accept what those schemas reject. Each is in later
// upstream schemas and the generator supports it; the differential test pins this list exactly.
import { SpecError } from './errors';

export type Protocol = 'genetlink' | 'genetlink-c' | 'genetlink-legacy';
export const PROTOCOLS: readonly Protocol[] = ['genetlink', 'genetlink-c', 'genetlink-legacy'];

/** Accepted beyond the pinned schemas (later upstream schemas have them). */
export const EXTENSIONS = {
  /** Attribute types (and indexed-array sub-types). */
  types: ['s8', 's16', 'indexed-array'],
  /** `checks` keys. */
  checks: ['unterminated-ok'],
  /** Integer `min`/`max` checks may be negative (for signed types). */
  negativeLimits: true,
  /** Lengths may name a const with a dash (`max-len: name-len`; const names are kebab-case). */
  dashInDefines: true,
} as const;

type Raw = Record<string, unknown>;
type Rule =
  | { t: 'str' }
  | { t: 'bool' }
  | { t: 'int'; min?: number }
  | { t: 'enum'; of: readonly string[]; msg?: (v: unknown) => string }
  | { t: 'strOrInt'; pattern?: RegExp; min?: number; msg?: (v: unknown) => string }
  | { t: 'strOrNull' }
  | { t: 'list'; item: Rule; named?: boolean }
  | { t: 'entry'; obj: Obj }
  | Obj;
interface Obj {
  t: 'obj';
  req?: readonly string[];
  props: Record<string, Rule>;
  /** Keys that exist at another protocol level: refused with that hint instead of "unknown key". */
  elsewhere?: Record<string, string>;
  /** Cross-key rules (the schema's dependencies and if/then). */
  also?: (o: Raw, path: string) => void;
}

const str: Rule = { t: 'str' };
const bool: Rule = { t: 'bool' };
const uint: Rule = { t: 'int', min: 0 };
const strs: Rule = { t: 'list', item: str };
const oneOf = (what: string, of: readonly string[]) => (v: unknown) => `"${String(v)}" is not one of ${of.join(', ')}${what}`;

const lenOrDefine = (ext: boolean): Rule =>
  ({ t: 'strOrInt', pattern: ext && EXTENSIONS.dashInDefines ? /^[0-9A-Za-z_-]+( - 1)?$/ : /^[0-9A-Za-z_]+( - 1)?$/, min: 0 });
const LIMIT_RE = /^[su](8|16|32|64)-(min|max)$/;
const lenOrLimit = (ext: boolean): Rule => ({
  t: 'strOrInt', pattern: LIMIT_RE, min: ext && EXTENSIONS.negativeLimits ? undefined : 0,
  msg: (v) => (typeof v === 'string' ? `cannot resolve "${v}" (an integer or a type limit such as u32-max)` : 'must be an integer >= 0'),
});
const DISPLAY_HINTS = ['hex', 'mac', 'fddi', 'ipv4', 'ipv6', 'uuid'];

/** Our own words for types the loader never supports, at any level. */
export const UNSUPPORTED_TYPES: Record<string, string> = {
  bitfield32: 'bitfield32 attributes are not supported',
  'nest-type-value': 'nest-type-value attributes are not supported',
  'array-nest': 'array-nest is the old name; use indexed-array with sub-type',
  'sub-message': 'sub-message attributes are not supported',
};

function levelRules(p: Protocol, ext: boolean): Obj {
  const c = p !== 'genetlink';
  const legacy = p === 'genetlink-legacy';
  const protocols = PROTOCOLS.slice(0, PROTOCOLS.indexOf(p) + 1);
  const onlyLegacy = 'not supported: only with protocol: genetlink-legacy';
  const onlyC = 'not supported: only with protocol: genetlink-c or genetlink-legacy';
  const types = ['unused', 'pad', 'flag', 'binary', ...(legacy ? ['bitfield32'] : []), 'uint', 'sint', 'u8', 'u16', 'u32',
    'u64', 's32', 's64', 'string', 'nest', 'array-nest', 'nest-type-value', ...(ext ? EXTENSIONS.types : [])];
  const typeRule: Rule = {
    t: 'enum', of: types,
    msg: (v) => (typeof v === 'string' && UNSUPPORTED_TYPES[v] ? `not supported: ${UNSUPPORTED_TYPES[v]}` : `unknown attribute type "${String(v)}"`),
  };
  const flags: Rule = { t: 'list', item: { t: 'enum', of: legacy ? ['admin-perm', 'uns-admin-perm'] : ['admin-perm'], msg: oneOf('', legacy ? ['admin-perm', 'uns-admin-perm'] : ['admin-perm']) } };
  const attrList: Rule = { t: 'obj', props: { attributes: strs, ...(legacy ? { value: uint } : {}) } };
  const half: Rule = { t: 'obj', props: { request: attrList, reply: attrList, pre: str, post: str } };
  const checks: Rule = {
    t: 'obj',
    props: {
      'flags-mask': str, min: lenOrLimit(ext), max: lenOrLimit(ext), 'min-len': lenOrDefine(ext), 'max-len': lenOrDefine(ext),
      'exact-len': lenOrDefine(ext), ...(ext ? { 'unterminated-ok': bool } : {}),
    },
  };
  const attr: Obj = {
    t: 'obj', req: ['name'],
    props: {
      name: str, type: typeRule, doc: str, value: uint, 'type-value': strs, 'byte-order': { t: 'enum', of: ['little-endian', 'big-endian'] },
      'multi-attr': bool, 'nested-attributes': str, enum: str, 'enum-as-flags': bool, checks, 'sub-type': typeRule,
      'display-hint': { t: 'enum', of: DISPLAY_HINTS }, ...(c ? { 'name-prefix': str } : {}), ...(legacy ? { struct: str } : {}),
    },
    elsewhere: { ...(c ? {} : { 'name-prefix': onlyC }), ...(legacy ? {} : { struct: onlyLegacy }) },
  };
  const set: Obj = {
    t: 'obj', req: ['name', 'attributes'],
    props: {
      name: str, 'name-prefix': str, 'enum-name': str, doc: str, 'subset-of': str, attributes: { t: 'list', item: attr, named: true },
      ...(c ? { 'attr-cnt-name': str, 'attr-max-name': str } : {}),
    },
    elsewhere: c ? {} : { 'attr-cnt-name': onlyC, 'attr-max-name': onlyC },
    also(o, path) {
      if (o['name-prefix'] !== undefined && o['subset-of'] !== undefined) {
        throw new SpecError(path, 'name-prefix and subset-of exclude each other (a subset inherits its parent\'s naming)');
      }
      // The schema's if/then: outside a subset (subset-of absent or not a string) every attribute has a type.
      if (typeof o['subset-of'] !== 'string' && Array.isArray(o.attributes)) {
        o.attributes.forEach((a, i) => {
          if (a && typeof a === 'object' && !Array.isArray(a) && (a as Raw).type === undefined) {
            throw new SpecError(`${itemPath(path + '.attributes', a, i, true)}.type`, 'is required');
          }
        });
      }
    },
  };
  const entry: Obj = { t: 'obj', req: ['name'], props: { name: str, value: { t: 'int' }, doc: str } };
  const member: Obj = {
    t: 'obj', req: ['name', 'type'],
    props: {
      name: str, type: { t: 'enum', of: ['u8', 'u16', 'u32', 'u64', 's8', 's16', 's32', 's64', 'string', 'binary'] }, len: lenOrDefine(ext),
      'byte-order': { t: 'enum', of: ['little-endian', 'big-endian'] }, doc: str, enum: str, 'display-hint': { t: 'enum', of: DISPLAY_HINTS },
    },
  };
  const defTypes = legacy ? ['const', 'enum', 'flags', 'struct'] : ['const', 'enum', 'flags'];
  const definition: Obj = {
    t: 'obj', req: ['type', 'name'],
    props: {
      name: str, header: str,
      type: { t: 'enum', of: defTypes, msg: (v) => (v === 'struct' ? 'not supported: struct definitions (genetlink-legacy only)' : oneOf('', defTypes)(v)) },
      doc: str, value: { t: 'strOrInt' }, 'value-start': { t: 'strOrInt' }, entries: { t: 'list', item: { t: 'entry', obj: entry } },
      'render-max': bool, ...(c ? { 'enum-name': { t: 'strOrNull' }, 'name-prefix': str } : {}),
      ...(legacy ? { members: { t: 'list', item: member } } : {}),
    },
    elsewhere: { ...(c ? {} : { 'enum-name': onlyC, 'name-prefix': onlyC }), ...(legacy ? {} : { members: onlyLegacy }) },
  };
  const op: Obj = {
    t: 'obj', req: ['name', 'doc'],
    props: {
      name: str, doc: str, value: uint, 'attribute-set': str, flags,
      'dont-validate': { t: 'list', item: { t: 'enum', of: ['strict', 'dump', 'dump-strict'] } },
      ...(legacy ? { 'fixed-header': str } : { 'config-cond': str }),
      do: half, dump: half, notify: str, event: { t: 'obj', props: { attributes: strs } }, mcgrp: str,
    },
    elsewhere: legacy ? {} : { 'fixed-header': onlyLegacy },
  };
  const models = legacy ? ['unified', 'directional'] : ['unified'];
  const ops: Obj = {
    t: 'obj', req: ['list'],
    props: {
      'enum-model': { t: 'enum', of: models, msg: (v) => `"${String(v)}" is not supported, only ${models.join(', ')} here` },
      'name-prefix': str, 'enum-name': str, 'async-prefix': str, 'async-enum': str, list: { t: 'list', item: op, named: true },
      ...(legacy ? { 'fixed-header': str } : {}),
    },
    elsewhere: legacy ? {} : { 'fixed-header': onlyLegacy },
  };
  const group: Obj = { t: 'obj', req: ['name'], props: { name: str, flags, ...(c ? { 'c-define-name': str } : {}) } };
  return {
    t: 'obj', req: ['name', 'doc', 'attribute-sets', 'operations'],
    props: {
      name: str, doc: str,
      protocol: { t: 'enum', of: protocols },
      'uapi-header': str,
      ...(c ? { 'c-family-name': str, 'c-version-name': str, 'max-by-define': bool } : {}),
      ...(p === 'genetlink-c' ? { 'cmd-max-name': str, 'cmd-cnt-name': str } : {}),
      ...(legacy ? { 'kernel-policy': { t: 'enum', of: ['split', 'per-op', 'global'] }, version: { t: 'int', min: 1 } } : {}),
      definitions: { t: 'list', item: definition, named: true },
      'attribute-sets': { t: 'list', item: set, named: true },
      operations: ops,
      'mcast-groups': { t: 'obj', req: ['list'], props: { list: { t: 'list', item: group } } },
    },
    elsewhere: {
      ...(legacy ? {} : { version: onlyLegacy, 'kernel-policy': onlyLegacy }),
      ...(c ? {} : { 'c-family-name': onlyC, 'c-version-name': onlyC, 'max-by-define': onlyC, 'cmd-max-name': onlyC, 'cmd-cnt-name': onlyC }),
    },
  };
}

/**
 * A list item's path: `[name]` for items of named lists (definitions, attribute sets, attributes,
 * ops) that have a string name, else `[index]`; ops are `operations[name]`.
 */
export function itemPath(listPath: string, item: unknown, i: number, named: boolean): string {
  const n = named && item && typeof item === 'object' && typeof (item as Raw).name === 'string' ? (item as Raw).name as string : undefined;
  if (n === undefined) return `${listPath}[${i}]`;
  return `${listPath === 'operations.list' ? 'operations' : listPath}[${n}]`;
}

const key = (path: string, k: string): string => (path ? `${path}.${k}` : k);

function kind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : typeof v;
}

function check(rule: Rule, v: unknown, path: string): void {
  switch (rule.t) {
    case 'str':
      if (typeof v !== 'string') throw new SpecError(path, `must be a string, not ${kind(v)}`);
      return;
    case 'bool':
      if (typeof v !== 'boolean') throw new SpecError(path, 'must be true or false');
      return;
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v) || (rule.min !== undefined && v < rule.min)) {
        throw new SpecError(path, `must be an integer${rule.min !== undefined ? ` >= ${rule.min}` : ''}`);
      }
      return;
    case 'enum':
      if (typeof v !== 'string' || !rule.of.includes(v)) throw new SpecError(path, (rule.msg ?? oneOf('', rule.of))(v));
      return;
    case 'strOrNull':
      if (v !== null && typeof v !== 'string') throw new SpecError(path, 'must be a string or null');
      return;
    case 'strOrInt': {
      const bad = typeof v === 'string' ? (rule.pattern && !rule.pattern.test(v))
        : typeof v === 'number' && Number.isInteger(v) ? (rule.min !== undefined && v < rule.min) : true;
      if (bad) {
        throw new SpecError(path, rule.msg ? rule.msg(v) : typeof v === 'string' ? `"${v}" does not match ${rule.pattern!.source}`
          : `must be a string or an integer${rule.min !== undefined ? ' >= 0' : ''}`);
      }
      return;
    }
    case 'list':
      if (!Array.isArray(v)) throw new SpecError(path, `must be a list, not ${kind(v)}`);
      v.forEach((x, i) => check(rule.item, x, itemPath(path, x, i, !!rule.named)));
      return;
    case 'entry':
      if (typeof v === 'string') return;
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new SpecError(path, 'must be a name or a mapping');
      check(rule.obj, v, path);
      return;
    case 'obj': {
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new SpecError(path, `must be a mapping, not ${kind(v)}`);
      const o = v as Raw;
      for (const k of Object.keys(o)) {
        if (rule.props[k]) continue;
        throw new SpecError(key(path, k), rule.elsewhere?.[k] ?? 'unknown key');
      }
      for (const k of rule.req ?? []) if (o[k] === undefined) throw new SpecError(key(path, k), 'is required');
      for (const [k, r] of Object.entries(rule.props)) if (o[k] !== undefined) check(r, o[k], key(path, k));
      rule.also?.(o, path);
    }
  }
}

const cache = new Map<string, Obj>();

/**
 * Throw a SpecError, naming the path, unless `raw` has the structure the upstream schema of its
 * protocol level requires (plus EXTENSIONS when `extensions` is on).
 */
export function checkShape(raw: unknown, extensions = true): void {
  const proto = raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Raw).protocol ?? 'genetlink' : 'genetlink';
  if (typeof proto !== 'string' || !(PROTOCOLS as readonly string[]).includes(proto)) {
    throw new SpecError('protocol', `"${String(proto)}" is not supported (${PROTOCOLS.join(', ')})`);
  }
  const id = `${proto}/${extensions}`;
  let rules = cache.get(id);
  if (!rules) cache.set(id, rules = levelRules(proto as Protocol, extensions));
  check(rules, raw, '');
}

/** PyYAML's YAML 1.1 booleans (what ynl reads); YAML 1.2 reads these words as strings. */
export const YAML11_BOOL = /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/;
/** The SPDX first line ynl's loader requires ("SPDX license tag required in the spec"). */
export const SPDX_PREFIX = '# SPDX-License-Identifier: ';
