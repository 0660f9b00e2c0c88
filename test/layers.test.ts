// The layers' dependency rules, read from the sources: attrs <- genl <- device -> compute, the CLI
// (bin/) on top, compute knowing nothing of netlink, and no import cycle between any two modules of
// those folders (type-only imports count: a cycle of types is still two modules that need each other).
import { existsSync, readFileSync, readdirSync } from 'fs';
import { dirname, join, normalize } from 'path';

const ROOT = join(__dirname, '..');
const LAYERS = ['attrs', 'genl', 'device', 'compute', 'bin'] as const;
type Layer = typeof LAYERS[number];
/** What each layer may import besides itself. */
const MAY_IMPORT: Record<Layer, readonly Layer[]> = {
  attrs: [], genl: ['attrs'], device: ['attrs', 'genl', 'compute'], compute: [], bin: ['attrs', 'genl', 'device', 'compute'],
};

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative specifiers a source imports, re-exports or requires, comments stripped first. */
function specifiers(src: string): string[] {
  const code = src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
  const out: string[] = [];
  for (const m of code.matchAll(/\b(?:from\s+|import\s*\(\s*|require\s*\(\s*|^\s*import\s+)(['"])(\.[^'"]*)\1/gm)) out.push(m[2]);
  return out;
}

/**
 * The repository file a specifier of `from` names: a .ts source (`./x`, `./x/index`, or `./x.js`, the
 * name a bundle chunk of x.ts gets), another file as it is (package.json), undefined when missing.
 */
function resolve(from: string, spec: string): string | undefined {
  const base = normalize(join(dirname(from), spec));
  for (const c of [`${base}.ts`, join(base, 'index.ts'), base.replace(/\.js$/, '.ts'), base]) if (existsSync(join(ROOT, c))) return c;
  return undefined;
}

/** Strongly connected components with more than one module (or a self-import): Tarjan's algorithm. */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do { w = stack.pop()!; onStack.delete(w); scc.push(w); } while (w !== v);
    if (scc.length > 1 || graph.get(v)!.includes(v)) found.push(scc.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

const graph = new Map<string, string[]>();
for (const layer of LAYERS) {
  for (const f of sources(layer)) {
    const deps = specifiers(readFileSync(join(ROOT, f), 'utf8')).map((s) => resolve(f, s) ?? `${normalize(join(dirname(f), s))} (unresolved)`);
    graph.set(f, deps);
  }
}
const layerOf = (f: string): string => f.split(/[\\/]/)[0];

test('the checker itself finds cycles and reads every import form', () => {
  expect(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']], ['e', ['e']]]))).toEqual([['a', 'b', 'c'], ['e']]);
  expect(cycles(new Map([['a', ['b']], ['b', []]]))).toEqual([]);
  expect(specifiers([
    "import { a } from './a';", "import type {\n  B,\n} from '../b';", "export * from './c';", "export { d } from \"./d\";",
    "import './e';", "const f = require('./f');", "await import('./g');", "// import { x } from './commented';", "/* from './block' */",
    "import { y } from 'yaml';",
  ].join('\n'))).toEqual(['./a', '../b', './c', './d', './e', './f', './g']);
  expect(graph.size).toBeGreaterThan(50);
});

test('every relative import of a layer names a source file', () => {
  const unresolved = [...graph].flatMap(([f, ds]) => ds.filter((d) => d.endsWith('(unresolved)')).map((d) => `${f} -> ${d}`));
  expect(unresolved).toEqual([]);
});

test('no import cycle among the modules of attrs, genl, device, compute and bin', () => {
  expect(cycles(graph).map((c) => c.join(' <-> '))).toEqual([]);
});

test('dependencies point one way: attrs <- genl <- device -> compute, bin on top, compute imports no netlink', () => {
  const wrong: string[] = [];
  for (const [f, deps] of graph) {
    const from = layerOf(f) as Layer;
    for (const d of deps) {
      const to = layerOf(d);
      if (!(LAYERS as readonly string[]).includes(to)) continue; // package.json and the like; test/ has its own check
      if (to !== from && !(MAY_IMPORT[from] as readonly string[]).includes(to)) wrong.push(`${f} -> ${d}`);
    }
  }
  expect(wrong).toEqual([]);
});

test('test-only code stays under test/: no layer imports it', () => {
  const intoTests = [...graph].flatMap(([f, ds]) => ds.filter((d) => layerOf(d) === 'test').map((d) => `${f} -> ${d}`));
  expect(intoTests).toEqual([]);
});
