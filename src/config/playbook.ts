import { dirname, resolve } from 'node:path';
import * as z from 'zod';
import { ConfigError, type ConfigIssue } from '../lib/errors.js';
import { taintVars } from '../lib/secret.js';
import type { ModuleDef } from '../lib/plan-types.js';
import { ansibleBool } from './ansible-bool.js';
import type { VaultKeyring } from './vault.js';
import { zodIssues } from './issues.js';
import { loadYamlFile, type LoadedYaml, type YamlPath } from './yaml.js';

/** Keywords a task may carry besides its one module (Ansible's names). */
export const TASK_KEYWORDS = ['name', 'when', 'notify', 'tags', 'become', 'become_user', 'ignore_errors', 'vars', 'listen'] as const;

const stringList = z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : [v]));
const condition = z.union([z.string(), z.boolean(), z.array(z.union([z.string(), z.boolean()]))]);

export const taskKeywordsSchema = z.object({
  name: z.string().optional(),
  when: condition.optional(),
  notify: stringList.optional(),
  tags: stringList.optional(),
  become: ansibleBool.optional(),
  become_user: z.string().optional(),
  ignore_errors: ansibleBool.optional(),
  vars: z.record(z.string(), z.unknown()).optional(),
  listen: stringList.optional(),
});

export const playSchema = z
  .object({
    name: z.string().optional(),
    hosts: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    vars: z.record(z.string(), z.unknown()).nullable().optional(),
    serial: z.union([z.number().int().positive(), z.string().regex(/^\d+%$/, 'must be a number or a percentage like "50%"')]).optional(),
    gather_facts: ansibleBool.optional(),
    become: ansibleBool.optional(),
    become_user: z.string().min(1).optional(),
    tags: stringList.optional(),
    tasks: z.array(z.record(z.string(), z.unknown())).nullable().optional(),
    handlers: z.array(z.record(z.string(), z.unknown())).nullable().optional(),
  })
  .strict();

export interface Task {
  name: string;
  module: string;
  /** Raw (untemplated) module arguments; templated and validated per host. */
  args: unknown;
  when: (string | boolean)[];
  notify: string[];
  tags: string[];
  become?: boolean;
  becomeUser?: string;
  ignoreErrors: boolean;
  vars: Record<string, unknown>;
  listen: string[];
  /** Where the module's arguments live in the YAML file, for error messages. */
  argsPath: YamlPath;
}

export interface Play {
  name: string;
  hosts: string | string[];
  vars: Record<string, unknown>;
  serial?: number | string;
  gatherFacts: boolean;
  become?: boolean;
  becomeUser?: string;
  tags: string[];
  tasks: Task[];
  handlers: Task[];
  path: YamlPath;
  /** The file the play is written in (an imported playbook has its own), for error lines. */
  doc: LoadedYaml;
}

export interface Playbook {
  file: string;
  plays: Play[];
  doc: LoadedYaml;
}

/**
 * Module names as Ansible users write them: `ansible.builtin.lineinfile` and `ansible.legacy.shell`
 * are pgtls's `lineinfile` and `shell`; pgtls's own modules may be written `pgtls.NAME`.
 */
export function canonicalModuleName(key: string, modules: ReadonlyMap<string, ModuleDef>): string {
  if (modules.has(key)) return key;
  const m = /^(?:ansible\.builtin|ansible\.legacy|pgtls)\.([a-z_]+)$/.exec(key);
  return m && modules.has(m[1]!) ? m[1]! : key;
}

export function loadPlaybook(file: string, modules: ReadonlyMap<string, ModuleDef>, depth = 0, vault?: VaultKeyring): Playbook {
  const doc = loadYamlFile(file, { vault });
  const issues: ConfigIssue[] = [];
  if (!Array.isArray(doc.data)) {
    throw new ConfigError([{ file, line: 1, message: 'a playbook is a YAML list of plays' }]);
  }
  const plays: Play[] = [];
  doc.data.forEach((rawPlay, i) => {
    // `- import_playbook: other.yaml` (Ansible): its plays run here, relative to this file.
    if (rawPlay && typeof rawPlay === 'object' && 'import_playbook' in rawPlay) {
      const target = (rawPlay as Record<string, unknown>).import_playbook;
      if (typeof target !== 'string' || Object.keys(rawPlay).length !== 1) {
        issues.push({ file, line: doc.lineOf([i]), field: 'import_playbook', message: 'must be the only key, with a file name' });
        return;
      }
      if (depth > 8) throw new ConfigError([{ file, line: doc.lineOf([i]), message: 'import_playbook nested too deep (a cycle?)' }]);
      try {
        plays.push(...loadPlaybook(resolve(dirname(file), target), modules, depth + 1, vault).plays);
      } catch (e) {
        if (e instanceof ConfigError) issues.push(...e.issues);
        else issues.push({ file, line: doc.lineOf([i, 'import_playbook']), field: 'import_playbook', message: (e as Error).message });
      }
      return;
    }
    const parsed = playSchema.safeParse(rawPlay);
    if (!parsed.success) {
      issues.push(...zodIssues(parsed.error, doc, [i]));
      return;
    }
    const p = parsed.data;
    const parseTasks = (list: Record<string, unknown>[] | null | undefined, key: 'tasks' | 'handlers') =>
      (list ?? []).flatMap((t, j) => {
        const task = parseTask(t, [i, key, j], doc, modules, issues);
        return task ? [task] : [];
      });
    plays.push({
      name: p.name ?? String(p.hosts),
      hosts: p.hosts,
      vars: taintVars(p.vars ?? {}),
      serial: p.serial,
      gatherFacts: p.gather_facts ?? true,
      become: p.become,
      becomeUser: p.become_user,
      tags: p.tags ?? [],
      tasks: parseTasks(p.tasks, 'tasks'),
      handlers: parseTasks(p.handlers, 'handlers'),
      path: [i],
      doc,
    });
  });
  for (const play of plays.filter((p) => p.doc === doc)) {
    const handlerNames = new Set(play.handlers.flatMap((h) => [h.name, ...h.listen]));
    play.tasks.forEach((t) => {
      for (const n of t.notify) {
        if (!handlerNames.has(n)) {
          const path = [...t.argsPath.slice(0, -1), 'notify'];
          issues.push({ file: play.doc.file, line: play.doc.lineOf(path), field: 'notify', message: `no handler named '${n}' in this play` });
        }
      }
    });
  }
  if (issues.length) throw new ConfigError(issues);
  return { file, plays, doc };
}

function parseTask(
  raw: Record<string, unknown>,
  path: YamlPath,
  doc: LoadedYaml,
  modules: ReadonlyMap<string, ModuleDef>,
  issues: ConfigIssue[],
): Task | null {
  const keys = Object.keys(raw);
  // `ansible.builtin.lineinfile:` is `lineinfile:`
  raw = Object.fromEntries(Object.entries(raw).map(([k, v]) => [canonicalModuleName(k, modules), v]));
  const canonical = Object.keys(raw);
  const moduleKeys = canonical.filter((k) => !(TASK_KEYWORDS as readonly string[]).includes(k));
  const known = moduleKeys.filter((k) => modules.has(k));
  const unknown = moduleKeys.filter((k) => !modules.has(k));
  for (const k of unknown) {
    const hint = closest(k, [...modules.keys(), ...TASK_KEYWORDS]);
    issues.push({
      file: doc.file,
      line: doc.lineOf([...path, keys[canonical.indexOf(k)] ?? k]),
      field: k,
      message: `unknown module or task keyword${hint ? ` (did you mean '${hint}'?)` : ''}; modules: ${[...modules.keys()].join(', ')}`,
    });
  }
  if (unknown.length) return null;
  if (known.length !== 1) {
    issues.push({
      file: doc.file,
      line: doc.lineOf(path),
      message: known.length === 0 ? 'a task needs exactly one module' : `a task has exactly one module, found ${known.join(', ')}`,
    });
    return null;
  }
  const kw = taskKeywordsSchema.safeParse(Object.fromEntries(canonical.filter((k) => k !== known[0]).map((k) => [k, raw[k]])));
  if (!kw.success) {
    issues.push(...zodIssues(kw.error, doc, path));
    return null;
  }
  const module = known[0]!;
  const k = kw.data;
  return {
    name: k.name ?? module,
    module,
    args: raw[module] ?? {},
    when: k.when === undefined ? [] : Array.isArray(k.when) ? k.when : [k.when],
    notify: k.notify ?? [],
    tags: k.tags ?? [],
    become: k.become,
    becomeUser: k.become_user,
    ignoreErrors: k.ignore_errors ?? false,
    vars: taintVars(k.vars ?? {}),
    listen: k.listen ?? [],
    // the key as written (ansible.builtin.lineinfile), so error lines point at it
    argsPath: [...path, keys[canonical.indexOf(module)] ?? module],
  };
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const d = levenshtein(word, c);
    if (d < bestScore) {
      bestScore = d;
      best = c;
    }
  }
  return bestScore <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
