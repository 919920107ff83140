import { selectHosts, unknownPatternTerms, type Inventory } from '../config/inventory.js';
import { zodIssues, formatPath } from '../config/issues.js';
import type { Play, Playbook, Task } from '../config/playbook.js';
import { evaluateCondition, renderValue } from '../template/render.js';
import { ConfigError, errorMessage, type ConfigIssue } from './errors.js';
import { Secret } from './secret.js';
import type { ModuleDef } from './types.js';
import { placeholderFacts } from './lazy-facts.js';
import { policyIssues, varSource } from './policy.js';
import { connectionVars, hostVars, templateContext } from './vars.js';

export interface Selection {
  limit?: string;
  tags: string[];
  skipTags: string[];
}

/** Whether a task runs under --tags/--skip-tags (Ansible: `always` runs unless skipped by name, `never` only when asked). */
export function taskSelected(task: Task, play: Play, sel: Selection): boolean {
  const tags = new Set([...play.tags, ...task.tags]);
  if (sel.skipTags.some((t) => tags.has(t))) return false;
  if (tags.has('never') && !sel.tags.some((t) => tags.has(t))) return false;
  if (sel.tags.length === 0 || sel.tags.includes('all')) return true;
  if (tags.has('always')) return true;
  return sel.tags.some((t) => tags.has(t) || (t === 'untagged' && tags.size === 0));
}

export function playHosts(inv: Inventory, play: Play, sel: Selection): string[] {
  const hosts = selectHosts(inv, play.hosts);
  if (!sel.limit) return hosts;
  const allowed = new Set(selectHosts(inv, sel.limit));
  return hosts.filter((h) => allowed.has(h));
}

/**
 * Everything that can be checked without a host is checked here, before the
 * first connection: connection variables, every template (undefined variables,
 * missing environment variables), every `when`, and every module's arguments
 * against its schema, for every host the run would touch. All problems are
 * reported at once.
 */
export function preflight(
  inv: Inventory,
  book: Playbook,
  modules: ReadonlyMap<string, ModuleDef>,
  extra: Record<string, unknown>,
  sel: Selection,
  check: boolean,
): string[] {
  const issues: ConfigIssue[] = [];
  const warnings: string[] = [];
  if (sel.limit) {
    const unknown = unknownPatternTerms(inv, sel.limit);
    if (unknown.length)
      issues.push({ file: '--limit', message: `matches no host or group in ${inv.file}: ${unknown.join(', ')}` });
  }
  const checkedHosts = new Set<string>();
  // The same problem on many hosts is one issue naming the hosts, not one line per host.
  const merged = new Map<string, { issue: ConfigIssue; hosts: string[] }>();
  const add = (i: ConfigIssue, host?: string) => {
    const key = `${i.file}:${i.line}:${i.field}:${i.message}`;
    const m = merged.get(key) ?? { issue: i, hosts: [] };
    if (host && !m.hosts.includes(host)) m.hosts.push(host);
    merged.set(key, m);
  };
  for (const play of book.plays) {
    const unknownHosts = unknownPatternTerms(inv, play.hosts);
    // As in Ansible, a play whose group this inventory lacks (no pgpool group: no Pgpool-II nodes)
    // is skipped with a warning; a --limit that matches nothing is an error (above).
    if (unknownHosts.length)
      warnings.push(
        `${play.doc.file}:${play.doc.lineOf([...play.path, 'hosts'])}: play '${play.name}': ${unknownHosts.join(', ')} matches no host or group in ${inv.file}`,
      );
    for (const host of playHosts(inv, play, sel)) {
      if (!checkedHosts.has(host)) {
        checkedHosts.add(host);
        const conn = safely(() => connectionVars(hostVars(inv, host, undefined, undefined, extra, undefined, check), host));
        if (conn instanceof Error) add({ file: inv.file, line: inv.doc.lineOf(hostPath(inv, host)), field: host, message: conn.message });
        else if (!conn.success)
          for (const zi of conn.error.issues)
            add({ file: inv.file, line: inv.doc.lineOf(hostPath(inv, host)), field: `${host}.${formatPath(zi.path as (string | number)[])}`, message: zi.message });
      }
      // fleet policy (pgtls_min_tls …), as this play sees it on this host
      const seen = hostVars(inv, host, play, undefined, extra, undefined, check);
      for (const i of safelyList(() => policyIssues(seen, (name) => varSource(name, inv, host, play, extra)))) add(i, host);
      for (const [kind, list] of [['tasks', play.tasks], ['handlers', play.handlers]] as const) {
        for (const task of list) {
          if (kind === 'tasks' && !taskSelected(task, play, sel)) continue;
          for (const i of checkTask(inv, play, task, host, modules, extra, check)) add(i, host);
        }
      }
    }
  }
  for (const { issue, hosts } of merged.values()) {
    const onHosts = hosts.length === 0 ? '' : ` (host${hosts.length > 1 ? 's' : ''} ${hosts.slice(0, 5).join(', ')}${hosts.length > 5 ? `, +${hosts.length - 5} more` : ''})`;
    issues.push({ ...issue, message: issue.message + onHosts });
  }
  if (issues.length) throw new ConfigError(issues);
  return warnings;
}

function checkTask(
  inv: Inventory,
  play: Play,
  task: Task,
  host: string,
  modules: ReadonlyMap<string, ModuleDef>,
  extra: Record<string, unknown>,
  check: boolean,
): ConfigIssue[] {
  const vars = hostVars(inv, host, play, task, extra, undefined, check);
  Object.assign(vars, placeholderFacts(task, vars));
  const ctx = templateContext(vars);
  const doc = play.doc;
  const taskPath = doc.lineOf(task.argsPath.slice(0, -1));
  for (const w of task.when) {
    const r = safely(() => evaluateCondition(w, ctx));
    if (r instanceof Error)
      return [{ file: doc.file, line: doc.lineOf([...task.argsPath.slice(0, -1), 'when']) ?? taskPath, field: 'when', message: r.message }];
    if (r === false) return []; // skipped on this host: its arguments may legitimately be undefined
  }
  const rendered = safely(() => renderValue(task.args, ctx));
  if (rendered instanceof Error)
    return [{ file: doc.file, line: doc.lineOf(task.argsPath), field: task.module, message: rendered.message }];
  const mod = modules.get(task.module)!;
  const parsed = mod.args.safeParse(rendered);
  if (parsed.success) return [];
  for (const zi of parsed.error.issues) {
    // "expected string, received object" says nothing useful when the object is a tainted secret.
    if (zi.code === 'invalid_type' || zi.code === 'invalid_union')
      if (valueAt(rendered, zi.path as (string | number)[]) instanceof Secret)
        (zi as { message: string }).message = 'holds a secret (a secret variable is templated into it), and this argument cannot take one: it would be shown or put on a command line';
  }
  return zodIssues(parsed.error, doc, task.argsPath);
}

function valueAt(v: unknown, path: (string | number)[]): unknown {
  let cur = v;
  for (const k of path) cur = cur !== null && typeof cur === 'object' ? (cur as Record<string | number, unknown>)[k] : undefined;
  return cur;
}

function hostPath(inv: Inventory, host: string): (string | number)[] {
  // Best effort: the first place the host is declared, for the line number.
  const data = inv.doc.data as Record<string, unknown>;
  const search = (node: unknown, path: (string | number)[]): (string | number)[] | null => {
    if (!node || typeof node !== 'object') return null;
    const n = node as Record<string, unknown>;
    if (n.hosts && typeof n.hosts === 'object' && host in (n.hosts as object)) return [...path, 'hosts', host];
    for (const [c, g] of Object.entries((n.children as Record<string, unknown>) ?? {})) {
      const found = search(g, [...path, 'children', c]);
      if (found) return found;
    }
    return null;
  };
  for (const [g, node] of Object.entries(data ?? {})) {
    const found = search(node, [g]);
    if (found) return found;
  }
  return [];
}

function safelyList<T>(fn: () => T[]): T[] {
  const r = safely(fn);
  return r instanceof Error ? [] : r;
}

function safely<T>(fn: () => T): T | Error {
  try {
    return fn();
  } catch (e) {
    return e instanceof Error ? e : new Error(errorMessage(e));
  }
}
