// Layers run one way (issue 11): a tiny import-graph check over src/ (madge is not installed).
// Each file belongs to a layer; a file imports only its own layer or lower ones; no import cycle
// at all between files; a module's folder never imports another module's folder (shared domain
// code lives in src/ca, src/hba, src/postgres, src/pgpool, …). docs/architecture.md explains the layers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SRC = join(ROOT, 'src');


/** Lowest first. A file's layer is the first entry whose prefix matches its path under src/. */
const LAYERS: [string, string[]][] = [
  // the leaf library every layer may use: errors, secrets, quoting, command results, the plan types
  ['kernel', ['lib/']],
  ['remote', ['remote/']],
  ['foundations', ['template/', 'config/', 'crypto/', 'pgconf/', 'package-info']],
  ['domain', ['facts/', 'tls/', 'hba/', 'ca/', 'postgres/', 'pgpool/']],
  ['modules', ['modules/']],
  ['engine', ['core/']],
  ['report', ['report/']],
  ['command line', ['cli-options.ts']],
  ['status', ['status/']],
  ['cli', ['cli.ts']],
];

function layerOf(file: string): number {
  const i = LAYERS.findIndex(([, prefixes]) => prefixes.some((p) => file === p || file.startsWith(p)));
  if (i < 0) throw new Error(`${file} belongs to no layer: add it to LAYERS (and to docs/architecture.md)`);
  return i;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : n.endsWith('.ts') ? [relative(SRC, p)] : [];
  });
}

function imports(file: string): string[] {
  const text = readFileSync(join(SRC, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s*'(\.{1,2}\/[^']+)'/g))
    out.push(normalize(join(dirname(file), m[1]!)).replace(/\.js$/, '.ts'));
  for (const m of text.matchAll(/\bimport\(\s*'(\.{1,2}\/[^']+)'\s*\)/g)) out.push(normalize(join(dirname(file), m[1]!)).replace(/\.js$/, '.ts'));
  return out;
}

const files = tsFiles(SRC);
const graph = new Map(files.map((f) => [f, imports(f)]));
const moduleFolder = (f: string) => /^modules\/([^/]+)\//.exec(f)?.[1];

test('every import points at a file of src/', () => {
  const missing = [...graph].flatMap(([f, ts]) => ts.filter((t) => !graph.has(t)).map((t) => `${f} -> ${t}`));
  assert.equal(missing, []);
});

test('a file imports only its own layer or lower ones', () => {
  const up = [...graph].flatMap(([f, ts]) => ts.filter((t) => layerOf(t) > layerOf(f)).map((t) => `${f} (${LAYERS[layerOf(f)]![0]}) -> ${t} (${LAYERS[layerOf(t)]![0]})`));
  assert.equal(up, []);
});

test('the kernel imports nothing but the kernel', () => {
  const out = [...graph].filter(([f]) => layerOf(f) === 0).flatMap(([f, ts]) => ts.filter((t) => layerOf(t) !== 0).map((t) => `${f} -> ${t}`));
  assert.equal(out, []);
});

test("a module never imports another module's folder (shared code is domain code)", () => {
  const cross = [...graph].flatMap(([f, ts]) => {
    const own = moduleFolder(f);
    return own ? ts.filter((t) => moduleFolder(t) && moduleFolder(t) !== own).map((t) => `${f} -> ${t}`) : [];
  });
  assert.equal(cross, []);
});

test('no import cycle between files', () => {
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push([...path.slice(path.indexOf(f)), f].join(' -> '));
      return;
    }
    state.set(f, 'open');
    for (const t of graph.get(f) ?? []) visit(t, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of files) visit(f, []);
  assert.equal(cycles, []);
});

/**
 * Module-level mutable state (issue 11: "no module-level state"): a run's state lives in the run
 * (PlanContext.runState, the executor, the runner). What is left at module level is listed with why it
 * is not a run's state: pure memos of a pure function, or process-wide by nature.
 */
const MODULE_LEVEL_ALLOWED: Record<string, string> = {
  'remote/scripts.ts:cache': "the shipped host scripts' text, read once (files of the package)",
  'remote/ssh.ts:commandLog': 'PGTLS_COMMAND_LOG: the process writes one log',
  'lib/secret.ts:known': 'every secret value ever loaded, masked in every output of the process',
  'lib/secret.ts:sortedKnown': 'the same, sorted for masking',
  'template/expr.ts:reveals': 'a counter for tests of masking',
  'template/expr.ts:exprCache': 'parsed expressions: a pure function of their text',
  'template/expr.ts:templateCache': 'parsed templates: a pure function of their text',
  'core/vars.ts:hostvarsCache': 'keyed by the inventory object itself (WeakMap): dies with it',
};

test('no module-level mutable state beyond the listed pure caches and process-wide registries', () => {
  const found: string[] = [];
  for (const f of files) {
    const text = readFileSync(join(SRC, f), 'utf8');
    for (const m of text.matchAll(/^(?:export )?(?:let (\w+)|const (\w+)(?::[^=\n]+)? = new (?:Map|WeakMap)\b|const (\w+)(?::[^=\n]+)? = new Set<)/gm)) {
      const name = m[1] ?? m[2] ?? m[3];
      // a Map built once from constants and never written (the module registry) is data, not state
      if (f === 'modules/index.ts' && name === 'modules') continue;
      found.push(`${f}:${name}`);
    }
  }
  assert.equal(found.filter((k) => !(k in MODULE_LEVEL_ALLOWED)), [], 'module-level state: move it into the run (PlanContext.runState) or list it with its reason');
  assert.equal(Object.keys(MODULE_LEVEL_ALLOWED).filter((k) => !found.includes(k)), [], 'listed but gone: remove it from the list');
});

test.run();
