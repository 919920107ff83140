import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import type { Inventory } from '../config/inventory.js';
import type { Play, Task } from '../config/playbook.js';
import { renderValue, type TemplateContext } from '../template/render.js';
import { secretVarNames, taintValue } from './secret.js';
import type { HostFacts } from './types.js';

/**
 * The variables a task sees on a host, lowest precedence first (Ansible's order):
 * inventory (all < groups < host) < play vars < task vars < extra vars (-e),
 * plus magic variables and gathered facts.
 */
export function hostVars(
  inv: Inventory,
  host: string,
  play: Play | undefined,
  task: Task | undefined,
  extra: Record<string, unknown>,
  facts: HostFacts | undefined,
  check: boolean,
): Record<string, unknown> {
  const h = inv.hosts.get(host)!;
  const merged: Record<string, unknown> = {
    ...h.vars,
    ...(play?.vars ?? {}),
    ...(task?.vars ?? {}),
    ...extra,
    inventory_hostname: host,
    // Ansible's magic variables: relative controller paths (pgtls_ca_dir) are resolved against it.
    inventory_file: resolve(inv.file),
    inventory_dir: dirname(resolve(inv.file)),
    inventory_hostname_short: host.split('.')[0],
    group_names: h.groups.filter((g) => g !== 'all'),
    groups: Object.fromEntries(inv.groups),
    hostvars: inventoryHostvars(inv),
    ansible_check_mode: check,
    ...factVars(facts ?? PLACEHOLDER_FACTS),
  };
  // pgtls_secret_vars: names of further secret variables, wherever they were set.
  for (const name of secretVarNames(merged)) if (Object.hasOwn(merged, name)) merged[name] = taintValue(merged[name]);
  return merged;
}

const hostvarsCache = new WeakMap<Inventory, Record<string, Readonly<Record<string, unknown>>>>();

/**
 * Ansible's `hostvars`: every host's inventory variables (as written: templates not rendered, no
 * facts), e.g. for a standby to learn which names its upstream's certificate carries. One object
 * per inventory, shared by every host and task.
 */
function inventoryHostvars(inv: Inventory): Record<string, Readonly<Record<string, unknown>>> {
  let hv = hostvarsCache.get(inv);
  if (!hv) {
    hv = Object.fromEntries([...inv.hosts].map(([name, h]) => [name, { ...h.vars, inventory_hostname: name }]));
    hostvarsCache.set(inv, hv);
  }
  return hv;
}

/** Stand-ins used to validate templates before any host is contacted. */
export const PLACEHOLDER_FACTS: HostFacts = {
  hostname: 'placeholder-hostname',
  fqdn: 'placeholder-hostname.example',
  addresses: ['192.0.2.1'],
  loginUser: 'placeholder-user',
};

function factVars(f: HostFacts): Record<string, unknown> {
  return {
    ansible_hostname: f.hostname,
    ansible_fqdn: f.fqdn,
    ansible_nodename: f.hostname,
    ansible_all_ipv4_addresses: f.addresses.filter((a) => !a.includes(':')),
    ansible_all_ipv6_addresses: f.addresses.filter((a) => a.includes(':')),
    ansible_user_id: f.loginUser,
  };
}

export function templateContext(vars: Record<string, unknown>): TemplateContext {
  return { vars, env: process.env };
}

const connectionSchema = z.object({
  ansible_host: z.string().min(1),
  ansible_port: z.coerce.number().int().min(1).max(65535),
  ansible_user: z.string().min(1),
  ansible_ssh_private_key_file: z.string().min(1).optional(),
  ansible_become: z
    .union([z.boolean(), z.enum(['true', 'false', 'yes', 'no', 'True', 'False'])])
    .transform((v) => v === true || v === 'true' || v === 'yes' || v === 'True'),
  pgtls_known_hosts: z.string().min(1).optional(),
  ansible_connect_timeout: z.coerce.number().positive().optional(),
});

export type ConnectionVars = z.infer<typeof connectionSchema>;

/** Renders and validates the connection variables of a host (they may use lookup('env', …)). */
export function connectionVars(vars: Record<string, unknown>, host: string) {
  const pick = (k: string, fallback?: unknown) => (vars[k] === undefined ? fallback : renderValue(vars[k], templateContext(vars)));
  return connectionSchema.safeParse({
    ansible_host: pick('ansible_host', host),
    ansible_port: pick('ansible_port', 22),
    ansible_user: pick('ansible_user', process.env.USER ?? 'root'),
    ansible_ssh_private_key_file: pick('ansible_ssh_private_key_file'),
    ansible_become: pick('ansible_become', false),
    pgtls_known_hosts: pick('pgtls_known_hosts'),
    ansible_connect_timeout: pick('ansible_connect_timeout'),
  });
}
