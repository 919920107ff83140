import { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../core/errors.js';
import { taintVars } from '../core/secret.js';
import { zodIssues } from './issues.js';
import { loadYamlFile, type LoadedYaml } from './yaml.js';

/**
 * The YAML shape of an Ansible inventory, so an operator's existing inventory works as it is:
 *   all: { hosts: {...}, vars: {...}, children: { group: { hosts, vars, children } } }
 * Top-level keys other than `all` are groups too (Ansible accepts both).
 */
const varsSchema = z.record(z.string(), z.unknown()).nullable().optional();
interface GroupInput {
  hosts?: Record<string, Record<string, unknown> | null> | null;
  vars?: Record<string, unknown> | null;
  children?: Record<string, GroupInput | null> | null;
}
const groupSchema: z.ZodType<GroupInput> = z.lazy(() =>
  z
    .object({
      hosts: z.record(z.string(), z.record(z.string(), z.unknown()).nullable()).nullable().optional(),
      vars: varsSchema,
      children: z.record(z.string(), groupSchema.nullable()).nullable().optional(),
    })
    .strict(),
);
const inventorySchema = z.record(z.string(), groupSchema.nullable());

export interface InventoryHost {
  name: string;
  /** Every group the host belongs to, ancestors included, `all` first. */
  groups: string[];
  /** Inventory variables after Ansible's precedence: all < parent groups < child groups < host. */
  vars: Record<string, unknown>;
}

export interface Inventory {
  file: string;
  hosts: Map<string, InventoryHost>;
  /** group name -> host names (recursively, children included). */
  groups: Map<string, string[]>;
  doc: LoadedYaml;
}

interface GroupNode {
  name: string;
  vars: Record<string, unknown>;
  hosts: Map<string, Record<string, unknown>>;
  children: Set<string>;
  parents: Set<string>;
}

export function loadInventory(file: string): Inventory {
  const doc = loadYamlFile(file);
  const parsed = inventorySchema.safeParse(doc.data ?? {});
  if (!parsed.success) throw new ConfigError(zodIssues(parsed.error, doc));
  const nodes = new Map<string, GroupNode>();
  const issues: ConfigIssue[] = [];
  const node = (name: string): GroupNode => {
    let n = nodes.get(name);
    if (!n) {
      n = { name, vars: {}, hosts: new Map(), children: new Set(), parents: new Set() };
      nodes.set(name, n);
    }
    return n;
  };
  const visit = (name: string, g: GroupInput | null, path: (string | number)[]) => {
    const n = node(name);
    // Secret-named values (webadmin_password, pgtls_users[].password…) are Secrets from here on.
    Object.assign(n.vars, taintVars(g?.vars ?? {}));
    for (const [h, hv] of Object.entries(g?.hosts ?? {})) {
      n.hosts.set(h, { ...(n.hosts.get(h) ?? {}), ...taintVars(hv ?? {}) });
    }
    for (const [c, cg] of Object.entries(g?.children ?? {})) {
      if (c === 'all') {
        issues.push({ file, line: doc.lineOf([...path, 'children', c]), field: c, message: "'all' cannot be a child group" });
        continue;
      }
      n.children.add(c);
      node(c).parents.add(name);
      visit(c, cg, [...path, 'children', c]);
    }
  };
  for (const [name, g] of Object.entries(parsed.data)) visit(name, g, [name]);
  const all = node('all');
  for (const n of nodes.values()) if (n.name !== 'all' && n.parents.size === 0) {
    all.children.add(n.name);
    n.parents.add('all');
  }
  if (issues.length) throw new ConfigError(issues);
  const cycle = findCycle(nodes);
  if (cycle) throw new ConfigError([{ file, message: `group cycle: ${cycle.join(' -> ')}` }]);

  const depth = new Map<string, number>();
  const depthOf = (name: string): number => {
    const known = depth.get(name);
    if (known !== undefined) return known;
    const n = nodes.get(name)!;
    const d = n.parents.size === 0 ? 0 : 1 + Math.max(...[...n.parents].map(depthOf));
    depth.set(name, d);
    return d;
  };
  const hostsOf = (name: string, seen = new Set<string>()): string[] => {
    if (seen.has(name)) return [];
    seen.add(name);
    const n = nodes.get(name)!;
    return [...new Set([...n.hosts.keys(), ...[...n.children].flatMap((c) => hostsOf(c, seen))])];
  };
  const groups = new Map<string, string[]>();
  for (const name of nodes.keys()) groups.set(name, hostsOf(name));

  // host -> its groups, in one pass over the groups (linear in the inventory's size: a 100,000-host
  // inventory must not take hosts x groups x hosts steps)
  const membership = new Map<string, string[]>();
  for (const [g, members] of groups) for (const h of members) {
    let list = membership.get(h);
    if (!list) membership.set(h, (list = []));
    list.push(g);
  }
  const hosts = new Map<string, InventoryHost>();
  for (const hostName of groups.get('all') ?? []) {
    const memberOf = membership.get(hostName) ?? [];
    // Ansible: groups by depth (parents before children), then by name; later ones win.
    memberOf.sort((a, b) => depthOf(a) - depthOf(b) || (a === 'all' ? -1 : b === 'all' ? 1 : a.localeCompare(b)));
    const vars: Record<string, unknown> = {};
    for (const g of memberOf) Object.assign(vars, nodes.get(g)!.vars);
    for (const g of memberOf) Object.assign(vars, nodes.get(g)!.hosts.get(hostName) ?? {});
    hosts.set(hostName, { name: hostName, groups: memberOf, vars });
  }
  return { file, hosts, groups, doc };
}

function findCycle(nodes: Map<string, GroupNode>): string[] | null {
  const state = new Map<string, 'visiting' | 'done'>();
  const walk = (name: string, trail: string[]): string[] | null => {
    if (state.get(name) === 'visiting') return [...trail, name];
    if (state.get(name) === 'done') return null;
    state.set(name, 'visiting');
    for (const c of nodes.get(name)?.children ?? []) {
      const found = walk(c, [...trail, name]);
      if (found) return found;
    }
    state.set(name, 'done');
    return null;
  };
  for (const n of nodes.keys()) {
    const found = walk(n, []);
    if (found) return found;
  }
  return null;
}

/**
 * Ansible host patterns: `all`/`*`, group or host names, wildcards (`pg*`),
 * `a:b` or `a,b` (union), `a:&b` (intersection), `a:!b` (exclusion). Order follows the inventory.
 */
export function selectHosts(inv: Inventory, pattern: string | string[]): string[] {
  const parts = (Array.isArray(pattern) ? pattern : [pattern])
    .flatMap((p) => p.split(/[:,]/))
    .map((p) => p.trim())
    .filter(Boolean);
  const everyone = inv.groups.get('all') ?? [];
  const resolve = (term: string): Set<string> => {
    if (term === 'all' || term === '*') return new Set(everyone);
    if (inv.groups.has(term)) return new Set(inv.groups.get(term));
    if (inv.hosts.has(term)) return new Set([term]);
    if (/[*?]/.test(term)) {
      const re = new RegExp(`^${term.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
      const names = [...inv.groups.keys()].filter((g) => re.test(g)).flatMap((g) => inv.groups.get(g) ?? []);
      return new Set([...names, ...everyone.filter((h) => re.test(h))]);
    }
    return new Set();
  };
  let selected = new Set<string>();
  const plain = parts.filter((p) => !p.startsWith('&') && !p.startsWith('!'));
  for (const p of plain) for (const h of resolve(p)) selected.add(h);
  for (const p of parts.filter((x) => x.startsWith('&'))) {
    const other = resolve(p.slice(1));
    selected = new Set([...selected].filter((h) => other.has(h)));
  }
  for (const p of parts.filter((x) => x.startsWith('!'))) {
    const other = resolve(p.slice(1));
    selected = new Set([...selected].filter((h) => !other.has(h)));
  }
  return everyone.filter((h) => selected.has(h));
}

/** Names in a pattern that match nothing in the inventory (a typo in --limit or hosts:). */
export function unknownPatternTerms(inv: Inventory, pattern: string | string[]): string[] {
  return (Array.isArray(pattern) ? pattern : [pattern])
    .flatMap((p) => p.split(/[:,]/))
    .map((p) => p.trim().replace(/^[&!]/, ''))
    .filter((t) => t && t !== 'all' && t !== '*' && !inv.groups.has(t) && !inv.hosts.has(t) && !(/[*?]/.test(t) && wildcardMatches(inv, t)));
}

/** Whether a wildcard term matches a group or host name (a term that matches none is a typo too). */
function wildcardMatches(inv: Inventory, term: string): boolean {
  const re = new RegExp(`^${term.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  for (const g of inv.groups.keys()) if (re.test(g)) return true;
  for (const h of inv.hosts.keys()) if (re.test(h)) return true;
  return false;
}
