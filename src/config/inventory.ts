import { readFileSync } from 'node:fs';
import { dirname, extname } from 'node:path';
import * as z from 'zod';
import { ConfigError, type ConfigIssue } from '../lib/errors.js';
import { loadVarsFiles, varsDirs, varsFilesFor } from './group-vars.js';
import { expandHostRange, hasHostRange, splitHostPort } from './host-ranges.js';
import { looksLikeIni, parseIniInventory } from './ini-inventory.js';
import { taintVars } from '../lib/secret.js';
import { zodIssues } from './issues.js';
import type { VaultKeyring } from './vault.js';
import { loadYamlFile, type LoadedYaml, type YamlPath } from './yaml.js';

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
export const inventorySchema = z.record(z.string(), groupSchema.nullable());

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
  /** Things pgtls reads but does not act on (unimplemented ansible_* variables). */
  warnings: string[];
  /** 'yaml' or 'ini', as detected. */
  format: 'yaml' | 'ini';
}

export interface InventoryOptions {
  vault?: VaultKeyring;
  /** The playbook's directory: its group_vars/ and host_vars/ apply too (above the inventory's). */
  playbookDir?: string;
}

interface GroupNode {
  name: string;
  vars: Record<string, unknown>;
  hosts: Map<string, Record<string, unknown>>;
  children: Set<string>;
  parents: Set<string>;
}

/**
 * Reads an inventory as Ansible would: YAML (.yml/.yaml/.json, or YAML content) or INI (a file
 * that starts with a `[section]`, or any other extension that is not YAML), with host ranges,
 * `host:port`, and the group_vars/ and host_vars/ beside the inventory and the playbook.
 */
export function loadInventory(file: string, opts: InventoryOptions = {}): Inventory {
  const { doc: rawDoc, format } = readInventoryDocument(file, opts);
  const doc = expandHosts(rawDoc);
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
  // Ansible: a host in no group but `all` is in `ungrouped` (so group_names and patterns see it).
  const grouped = new Set([...nodes.values()].filter((n) => n.name !== 'all' && n.name !== 'ungrouped').flatMap((n) => [...n.hosts.keys()]));
  const lonely = [...all.hosts.keys()].filter((h) => !grouped.has(h));
  if (lonely.length) for (const h of lonely) if (!node('ungrouped').hosts.has(h)) node('ungrouped').hosts.set(h, {});
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

  // group_vars/ and host_vars/: the inventory's directory, then the playbook's (higher precedence).
  const bases = [dirname(file), ...(opts.playbookDir ? [opts.playbookDir] : [])];
  const varsIssues: ConfigIssue[] = [];
  const dirVars = (kind: 'group_vars' | 'host_vars', name: string): Record<string, unknown>[] =>
    varsDirs(kind, bases).map((d) => loadVarsFiles(varsFilesFor(d, name), opts.vault, varsIssues));
  const groupDirVars = new Map<string, Record<string, unknown>[]>();
  for (const g of nodes.keys()) groupDirVars.set(g, dirVars('group_vars', g));

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
    const others = memberOf.filter((g) => g !== 'all');
    // Ansible's VARIABLE_PRECEDENCE: all (inventory file) < groups (inventory file) < group_vars/all
    // (inventory dir, then playbook dir) < group_vars/<group> (same) < host (inventory file) < host_vars.
    const vars: Record<string, unknown> = {};
    Object.assign(vars, nodes.get('all')!.vars);
    for (const g of others) Object.assign(vars, nodes.get(g)!.vars);
    for (const v of groupDirVars.get('all') ?? []) Object.assign(vars, v);
    for (const g of others) for (const v of groupDirVars.get(g) ?? []) Object.assign(vars, v);
    for (const g of memberOf) Object.assign(vars, nodes.get(g)!.hosts.get(hostName) ?? {});
    for (const v of dirVars('host_vars', hostName)) Object.assign(vars, v);
    hosts.set(hostName, { name: hostName, groups: memberOf, vars });
  }
  if (varsIssues.length) throw new ConfigError(varsIssues);
  return { file, hosts, groups, doc, warnings: unimplementedVariableWarnings(hosts), format };
}

function readInventoryDocument(file: string, opts: InventoryOptions): { doc: LoadedYaml; format: 'yaml' | 'ini' } {
  const ext = extname(file).toLowerCase();
  if (!['.yml', '.yaml', '.json'].includes(ext)) {
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      text = undefined; // loadYamlFile reports the unreadable file
    }
    if (text !== undefined && (ext === '.ini' || looksLikeIni(text) || !looksLikeYamlMapping(text)))
      return { doc: parseIniInventory(text, file), format: 'ini' };
  }
  return { doc: loadYamlFile(file, { vault: opts.vault }), format: 'yaml' };
}

/** YAML inventories are mappings: some line is `name:` (a bare host list is INI). */
function looksLikeYamlMapping(text: string): boolean {
  if (text.trimStart().startsWith('$ANSIBLE_VAULT;')) return true;
  return text.split(/\r?\n/).some((l) => /^[^#\s][^=]*:(\s|$)/.test(l) && !/^\S+:\d+(\s|$)/.test(l));
}

/**
 * Host entries like `db[1:3]` or `db1:2222` become one entry per host (the port as ansible_port);
 * lines of expanded hosts point at the pattern.
 */
function expandHosts(doc: LoadedYaml): LoadedYaml {
  const aliases = new Map<string, string>();
  const issues: ConfigIssue[] = [];
  const walk = (g: unknown, path: YamlPath): unknown => {
    if (!g || typeof g !== 'object' || Array.isArray(g)) return g;
    const group = { ...(g as Record<string, unknown>) };
    const hosts = group.hosts;
    if (hosts && typeof hosts === 'object' && !Array.isArray(hosts)) {
      const out: Record<string, unknown> = {};
      for (const [entry, hv] of Object.entries(hosts)) {
        let names: string[];
        try {
          names = hasHostRange(entry) || entry.includes(':') ? expandHostRange(entry) : [entry];
        } catch (e) {
          issues.push({ file: doc.file, line: doc.lineOf([...path, 'hosts', entry]), field: entry, message: (e as Error).message });
          continue;
        }
        for (const n of names) {
          const { name, port } = splitHostPort(n);
          const vars = hv && typeof hv === 'object' ? { ...(hv as Record<string, unknown>) } : hv;
          out[name] = port === undefined ? vars : { ...((vars as Record<string, unknown> | null) ?? {}), ansible_port: port };
          if (name !== entry) aliases.set(JSON.stringify([...path, 'hosts', name].map(String)), entry);
        }
      }
      group.hosts = out;
    }
    const children = group.children;
    if (children && typeof children === 'object' && !Array.isArray(children))
      group.children = Object.fromEntries(Object.entries(children).map(([c, cg]) => [c, walk(cg, [...path, 'children', c])]));
    return group;
  };
  const data =
    doc.data && typeof doc.data === 'object' && !Array.isArray(doc.data)
      ? Object.fromEntries(Object.entries(doc.data).map(([g, v]) => [g, walk(v, [g])]))
      : doc.data;
  if (issues.length) throw new ConfigError(issues);
  const lineOf = (path: YamlPath): number => {
    const p = path.map(String);
    for (let n = p.length; n >= 3; n--) {
      const entry = aliases.get(JSON.stringify(p.slice(0, n)));
      if (entry !== undefined) return doc.lineOf([...p.slice(0, n - 1), entry, ...p.slice(n)]);
    }
    return doc.lineOf(path);
  };
  return { file: doc.file, data, lineOf };
}

/** The ansible_* connection/privilege variables pgtls acts on; any other ansible_* is reported. */
export const IMPLEMENTED_ANSIBLE_VARS = new Set([
  'ansible_host',
  'ansible_port',
  'ansible_user',
  'ansible_ssh_private_key_file',
  'ansible_private_key_file',
  'ansible_ssh_common_args',
  'ansible_ssh_extra_args',
  'ansible_become',
  'ansible_become_user',
  'ansible_become_method',
  'ansible_become_password',
  'ansible_become_pass',
  'ansible_connect_timeout',
  'ansible_connection',
]);

function unimplementedVariableWarnings(hosts: Map<string, InventoryHost>): string[] {
  const seen = new Map<string, string[]>();
  for (const h of hosts.values()) {
    for (const k of Object.keys(h.vars)) {
      if (!k.startsWith('ansible_') || IMPLEMENTED_ANSIBLE_VARS.has(k)) continue;
      const list = seen.get(k) ?? [];
      list.push(h.name);
      seen.set(k, list);
    }
    const conn = h.vars.ansible_connection;
    if (conn !== undefined && !['ssh', 'smart', 'paramiko'].includes(String(conn)))
      (seen.get('ansible_connection') ?? seen.set('ansible_connection', []).get('ansible_connection')!).push(h.name);
  }
  return [...seen.entries()].map(([k, hs]) => {
    const who = `${hs.slice(0, 3).join(', ')}${hs.length > 3 ? `, +${hs.length - 3} more` : ''}`;
    return k === 'ansible_connection'
      ? `ansible_connection (${who}): pgtls always connects over SSH; this setting is ignored`
      : `${k} (${who}): not implemented by pgtls, ignored`;
  });
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
