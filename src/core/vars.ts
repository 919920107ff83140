import { dirname, resolve } from 'node:path';
import * as z from 'zod';
import type { Inventory } from '../config/inventory.js';
import type { Play, Task } from '../config/playbook.js';
import { ansibleBool } from '../config/ansible-bool.js';
import { expandHome } from '../config/vault.js';
import { TaskError } from '../lib/errors.js';
import { Secret } from '../lib/secret.js';
import { renderValue, type TemplateContext } from '../template/render.js';
import { secretVarNames, taintValue } from '../lib/secret.js';
import type { HostFacts } from '../lib/plan-types.js';

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

/** A controller-side path: `~` is the controller user's home, as in Ansible. */
const localPath = z.string().min(1).transform(expandHome);

interface Hop {
  user?: string;
  host: string;
  port: number;
}

const connectionSchema = z.object({
  ansible_host: z.string().min(1),
  ansible_port: z.coerce.number().int().min(1).max(65535),
  ansible_user: z.string().min(1),
  ansible_ssh_private_key_file: localPath.optional(),
  ansible_become: ansibleBool,
  ansible_become_user: z.string().min(1),
  ansible_become_method: z.literal('sudo', { error: "pgtls implements only 'sudo' as ansible_become_method" }),
  ansible_become_password: z.instanceof(Secret).optional(),
  /** `-o ProxyJump=…` from ansible_ssh_common_args / ansible_ssh_extra_args: the bastions, in order. */
  jumps: z.unknown().transform((v, ctx) => {
    if (typeof v === 'string') {
      ctx.addIssue({ code: 'custom', message: `ansible_ssh_common_args / ansible_ssh_extra_args: ${v}` });
      return z.NEVER;
    }
    return v as Hop[];
  }),
  pgtls_known_hosts: localPath.optional(),
  ansible_connect_timeout: z.coerce.number().positive().optional(),
});

export type ConnectionVars = z.infer<typeof connectionSchema>;

/**
 * Renders and validates the connection variables of a host (they may use lookup('env', …)).
 * Connection settings from a vault-encrypted file arrive as Secrets: names and ports are
 * revealed here (they go into messages like any host name); the become password stays a Secret.
 */
export function connectionVars(vars: Record<string, unknown>, host: string) {
  const pick = (k: string, fallback?: unknown) => (vars[k] === undefined ? fallback : plain(renderValue(vars[k], templateContext(vars))));
  const first = (...keys: string[]) => keys.map((k) => pick(k)).find((v) => v !== undefined);
  const password = vars.ansible_become_password ?? vars.ansible_become_pass;
  const renderedPassword = password === undefined ? undefined : renderValue(password, templateContext(vars));
  const sshArgs = [pick('ansible_ssh_common_args'), pick('ansible_ssh_extra_args')].filter((a) => a !== undefined && a !== null && a !== '');
  let jumps: unknown;
  try {
    jumps = sshArgs.flatMap((a) => proxyJumps(String(a)));
  } catch (e) {
    jumps = String((e as Error).message);
  }
  return connectionSchema.safeParse({
    ansible_host: pick('ansible_host', host),
    ansible_port: pick('ansible_port', 22),
    ansible_user: pick('ansible_user', process.env.USER ?? 'root'),
    ansible_ssh_private_key_file: first('ansible_ssh_private_key_file', 'ansible_private_key_file'),
    ansible_become: pick('ansible_become', false),
    ansible_become_user: pick('ansible_become_user', 'root'),
    ansible_become_method: pick('ansible_become_method', 'sudo'),
    ansible_become_password:
      renderedPassword === undefined || renderedPassword === null || renderedPassword === ''
        ? undefined
        : renderedPassword instanceof Secret
          ? renderedPassword
          : new Secret(String(renderedPassword)),
    jumps,
    pgtls_known_hosts: pick('pgtls_known_hosts'),
    ansible_connect_timeout: pick('ansible_connect_timeout'),
  });
}

/**
 * ansible_become alone, as connectionVars renders and reads it: asked for every task of every host
 * (whether the task runs through sudo), where rendering and validating every connection variable
 * was a tenth of a no-change run's planning. Preflight has validated it.
 */
export function becomeOf(vars: Record<string, unknown>): boolean {
  if (vars.ansible_become === undefined) return false;
  const v = ansibleBool.safeParse(plain(renderValue(vars.ansible_become, templateContext(vars))));
  if (!v.success) throw new TaskError(`invalid connection variable ansible_become: ${v.error.message}`);
  return v.data;
}

function plain(v: unknown): unknown {
  return v instanceof Secret ? v.reveal() : v;
}

/**
 * The jump hosts in OpenSSH arguments as Ansible users write them:
 * `-o ProxyJump=user@bastion:2222`, `-o ProxyJump=a,b`, `-J a`, `-o ProxyCommand="ssh -W %h:%p -q user@bastion"`.
 * Other ssh options have no ssh2 equivalent: they are an error rather than silently dropped.
 */
export function proxyJumps(args: string): { user?: string; host: string; port: number }[] {
  const words = shellWords(args);
  const out: { user?: string; host: string; port: number }[] = [];
  const parseJump = (spec: string) => {
    for (const hop of spec.split(',')) {
      const m = /^(?:ssh:\/\/)?(?:([^@]+)@)?(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hop.trim());
      if (!m) throw new Error(`cannot read the jump host '${hop}'`);
      out.push({ ...(m[1] ? { user: m[1] } : {}), host: m[2]!.replace(/^\[|\]$/g, ''), port: m[3] ? Number(m[3]) : 22 });
    }
  };
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    let opt: string | undefined;
    if (w === '-o') opt = words[++i];
    else if (w.startsWith('-o')) opt = w.slice(2);
    else if (w === '-J') {
      parseJump(words[++i] ?? '');
      continue;
    } else throw new Error(`ssh argument '${w}' is not supported by pgtls (only -o ProxyJump=…, -J, -o ProxyCommand="ssh -W %h:%p …")`);
    if (opt === undefined) throw new Error("'-o' without an option");
    const eq = /^([A-Za-z]+)\s*[= ]\s*(.*)$/.exec(opt);
    const name = eq?.[1]?.toLowerCase();
    const value = eq?.[2] ?? '';
    if (name === 'proxyjump') parseJump(value);
    else if (name === 'proxycommand') {
      const m = /^ssh\s+(.*)$/.exec(value.trim());
      const parts = m?.[1]?.split(/\s+/) ?? [];
      const target = parts.filter((p, j) => !p.startsWith('-') && !['-W', '-p', '-l', '-i'].includes(parts[j - 1] ?? '')).pop();
      const port = parts[parts.indexOf('-p') + 1];
      if (!m || !parts.includes('-W') || !target) throw new Error(`ProxyCommand '${value}' is not supported: use ProxyJump, or 'ssh -W %h:%p [-p PORT] user@bastion'`);
      parseJump(parts.includes('-p') && port ? `${target}:${port}` : target);
    } else if (name === 'stricthostkeychecking' || name === 'userknownhostsfile' || name === 'controlmaster' || name === 'controlpersist' || name === 'controlpath' || name === 'serveraliveinterval' || name === 'serveralivecountmax') {
      // OpenSSH connection tuning (control sockets, keepalives) has no meaning for ssh2's single
      // connection; host key policy is --known-hosts / --insecure-skip-host-key-check. Rejected,
      // not ignored: the user asked for a behaviour pgtls would not give.
      throw new Error(`ssh option '${eq?.[1]}' is not supported by pgtls (host keys: --known-hosts; keepalives are built in)`);
    } else throw new Error(`ssh option '${opt}' is not supported by pgtls (only ProxyJump / ProxyCommand ssh -W)`);
  }
  return out;
}

/** POSIX-shell word splitting (quotes anywhere in a word, backslashes), as OpenSSH's arguments are written. */
function shellWords(text: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"' || c === "'") {
      const end = text.indexOf(c, i + 1);
      if (end < 0) throw new Error(`unterminated quote in '${text}'`);
      cur += text.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '\\' && i + 1 < text.length) {
      cur += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}
