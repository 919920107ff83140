import { selectHosts, unknownPatternTerms, type Inventory } from '../config/inventory.js';
import { zodIssues, formatPath } from '../config/issues.js';
import type { Play, Playbook, Task } from '../config/playbook.js';
import { evaluateCondition, renderValue } from '../template/render.js';
import { ConfigError, errorMessage, type ConfigIssue } from '../lib/errors.js';
import { Secret } from '../lib/secret.js';
import type { ModuleDef } from '../lib/plan-types.js';
import { placeholderFacts } from './lazy-facts.js';
import { policyIssues, varSource } from './policy.js';
import { connectionVars, hostVars, templateContext } from './vars.js';

export interface Selection {
  limit?: string;
  tags: string[];
  skipTags: string[];
  /** --allow-empty: patterns (--limit, a play's hosts) that match no host are warnings, not errors. */
  allowEmpty?: boolean;
  /** A play's hosts naming groups the inventory lacks is normal (`pgtls status`: a fleet without Pgpool-II). */
  optionalPlayHosts?: boolean;
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
  // Patterns that match nothing: an error (a typo runs nothing and exits 0), or with --allow-empty a warning.
  const empty = (i: ConfigIssue) => {
    if (sel.allowEmpty) warnings.push(`${i.line ? `${i.file}:${i.line}` : i.file}: ${i.message}`);
    else issues.push(i);
  };
  if ((inv.groups.get('all') ?? []).length === 0)
    empty({ file: inv.file, line: 1, message: 'the inventory defines no host (pgtls has nothing to do)' });
  if (sel.limit) {
    const unknown = unknownPatternTerms(inv, sel.limit);
    if (unknown.length) empty({ file: '--limit', field: sel.limit, message: `matches no host or group in ${inv.file}: ${unknown.join(', ')}${suggest(inv, unknown)}` });
    else if (selectHosts(inv, sel.limit).length === 0)
      empty({ file: '--limit', field: sel.limit, message: `matches no host of ${inv.file} (its wildcards, intersections and exclusions leave nothing)` });
    else if (book.plays.every((p) => playHosts(inv, p, sel).length === 0))
      empty({ file: '--limit', field: sel.limit, message: `matches no host that a play of ${book.file} runs on` });
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
    const hostsLine = play.doc.lineOf([...play.path, 'hosts']);
    // A name the inventory does not define at all is a typo until proven otherwise: an error. A group
    // that is defined but empty (a fleet without Pgpool-II: `pgpool: {hosts: {}}`) skips the play with
    // a warning, as in Ansible.
    if (unknownHosts.length && sel.optionalPlayHosts)
      warnings.push(`${play.doc.file}:${hostsLine}: play '${play.name}': ${unknownHosts.join(', ')} matches no host or group in ${inv.file}`);
    else if (unknownHosts.length)
      empty({
        file: play.doc.file,
        line: hostsLine,
        field: 'hosts',
        message:
          `play '${play.name}': ${unknownHosts.join(', ')} is not a host or group of ${inv.file}${suggest(inv, unknownHosts)} ` +
          `(a fleet without such hosts defines the group empty, e.g. ${inv.format === 'ini' ? `'[${unknownHosts[0]}]' (a section with no hosts)` : `'${unknownHosts[0]}: { hosts: {} }'`}, or use --allow-empty)`,
      });
    else if (selectHosts(inv, play.hosts).length === 0)
      warnings.push(`${play.doc.file}:${hostsLine}: play '${play.name}': ${[play.hosts].flat().join(', ')} matches no host in ${inv.file}`);
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
  if (!parsed.success) {
    for (const zi of parsed.error.issues) {
      // "expected string, received object" says nothing useful when the object is a tainted secret.
      if (zi.code === 'invalid_type' || zi.code === 'invalid_union')
        if (valueAt(rendered, zi.path as (string | number)[]) instanceof Secret)
          (zi as { message: string }).message = 'holds a secret (a secret variable is templated into it), and this argument cannot take one: it would be shown or put on a command line';
    }
    return zodIssues(parsed.error, doc, task.argsPath);
  }
  return (mod.preflight?.(parsed.data) ?? []).map((p) => ({
    file: doc.file,
    line: doc.lineOf([...task.argsPath, p.field]),
    field: `${task.module}.${p.field}`,
    message: p.message,
  }));
}

function valueAt(v: unknown, path: (string | number)[]): unknown {
  let cur = v;
  for (const k of path) cur = cur !== null && typeof cur === 'object' ? (cur as Record<string | number, unknown>)[k] : undefined;
  return cur;
}

/** ", did you mean 'postgres'?" for names one or two edits away from a host or group. */
function suggest(inv: Inventory, unknown: string[]): string {
  const names = [...inv.groups.keys(), ...inv.hosts.keys()];
  const hits = unknown.flatMap((u) => {
    const best = names.map((n) => [n, editDistance(u.toLowerCase(), n.toLowerCase())] as const).sort((a, b) => a[1] - b[1])[0];
    return best && best[1] <= 2 ? [`'${best[0]}'`] : [];
  });
  return hits.length ? ` (did you mean ${hits.join(', ')}?)` : '';
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
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
