// The kernel's genetlink JSON schemas (a test peer in ../shared/peers/ynl, never shipped), compiled
// with ajv as the draft-07 schemas they declare. Used by the spec tests to validate our specs and to
// compare our loader's verdicts with upstream's.
import { existsSync, readFileSync } from 'fs';
import { join } from 'path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import draft07 from 'ajv/dist/refs/json-schema-draft-07.json';
import { parse } from 'yaml';

/** The ynl copy beside the clone (CI lays shared/ next to it), or undefined when it is absent. */
export const YNL_DIR = [join(__dirname, '../../../shared/peers/ynl'), '/work/shared/peers/ynl'].find((d) =>
  existsSync(join(d, 'Documentation/netlink/genetlink.yaml')));
export const SCHEMA_DIR = YNL_DIR && join(YNL_DIR, 'Documentation/netlink');

const compiled = new Map<string, ValidateFunction>();

/**
 * The validator for one protocol level: <schema dir>/<protocol>.yaml, as nlspec.py picks it. The
 * schemas name their dialect as https://json-schema.org/draft-07/schema (no such id is registered
 * anywhere, ajv's draft-07 meta-schema is the http one), so that URI is registered as an alias of
 * draft-07. Each schema gets its own Ajv: genetlink.yaml carries genetlink-legacy.yaml's $id.
 */
export function upstreamValidator(protocol: string): ValidateFunction | undefined {
  if (!SCHEMA_DIR) return undefined;
  const file = join(SCHEMA_DIR, `${protocol}.yaml`);
  if (!existsSync(file)) return undefined;
  let v = compiled.get(protocol);
  if (!v) {
    const ajv = new Ajv({ allErrors: true, strict: false });
    ajv.addMetaSchema({ ...draft07, $id: 'https://json-schema.org/draft-07/schema' });
    v = ajv.compile(parse(readFileSync(file, 'utf8')));
    compiled.set(protocol, v);
  }
  return v;
}

export interface UpstreamVerdict { ok: boolean; errors: ErrorObject[]; spdx: boolean }

/** SPDX first line (nlspec.py's own rule) plus the schema of the spec's protocol. */
export function upstreamCheck(text: string, spec: unknown): UpstreamVerdict {
  const spdx = text.split('\n', 1)[0].trim().startsWith('# SPDX-License-Identifier: ');
  const proto = (spec as { protocol?: unknown } | null)?.protocol ?? 'genetlink';
  const v = typeof proto === 'string' ? upstreamValidator(proto) : undefined;
  if (!v) return { ok: false, errors: [{ instancePath: '/protocol', message: `no schema for ${String(proto)}` } as ErrorObject], spdx };
  const ok = v(spec) as boolean;
  return { ok: ok && spdx, errors: v.errors ? [...v.errors] : [], spdx };
}

export const describeErrors = (errs: ErrorObject[]): string =>
  errs.map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`).join('\n');
