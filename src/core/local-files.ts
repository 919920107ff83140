/**
 * Files on the controller that the run will need, checked before the first connection: the SSH key
 * of each host and the known_hosts file host keys are verified against. A missing one would only
 * show as every host unreachable, after connecting; here it is bad input naming the file.
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Inventory } from '../config/inventory.js';
import type { Playbook } from '../config/playbook.js';
import { ConfigError, type ConfigIssue } from '../lib/errors.js';
import { playHosts, type Selection } from './preflight.js';
import { connectionVars, hostVars } from './vars.js';

/** Why `path` cannot be read as a regular file, or undefined when it can. */
function fileProblem(path: string): string | undefined {
  if (!existsSync(path)) return 'no such file';
  try {
    if (!statSync(path).isFile()) return 'is not a regular file';
  } catch (e) {
    return (e as Error).message;
  }
  return undefined;
}

/** The first line of the inventory where `name` is set (host or group vars), or undefined. */
function varLine(inv: Inventory, name: string): number | undefined {
  const walk = (node: unknown, path: (string | number)[]): (string | number)[] | null => {
    if (!node || typeof node !== 'object' || Array.isArray(node)) return null;
    for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
      if (k === name) return [...path, k];
      const found = walk(v, [...path, k]);
      if (found) return found;
    }
    return null;
  };
  const path = walk(inv.doc.data, []);
  return path ? inv.doc.lineOf(path) : undefined;
}

export function checkLocalFiles(
  inv: Inventory,
  book: Playbook,
  extra: Record<string, unknown>,
  sel: Selection,
  check: boolean,
  knownHostsOption: string | null | undefined,
): void {
  const issues = new Map<string, ConfigIssue & { hosts: string[] }>();
  const add = (i: ConfigIssue, host: string) => {
    const key = `${i.file}:${i.field}:${i.message}`;
    // the line where the variable is set (computed once per issue: only on this error path)
    const e = issues.get(key) ?? { ...i, ...(i.file === inv.file && i.field ? { line: varLine(inv, i.field) } : {}), hosts: [] };
    e.hosts.push(host);
    issues.set(key, e);
  };
  const hosts = new Set(book.plays.flatMap((p) => playHosts(inv, p, sel)));
  for (const host of hosts) {
    const c = connectionVars(hostVars(inv, host, undefined, undefined, extra, undefined, check), host);
    if (!c.success) continue; // preflight reported it
    const key = c.data.ansible_ssh_private_key_file;
    const keyWhy = key && !key.includes('{{') ? fileProblem(key) : undefined;
    if (key && keyWhy) add({ file: inv.file, field: 'ansible_ssh_private_key_file', message: `${key}: ${keyWhy} (the SSH key to log in with)` }, host);
    if (knownHostsOption === null) continue;
    const kh = knownHostsOption ?? c.data.pgtls_known_hosts ?? join(homedir(), '.ssh', 'known_hosts');
    const khWhy = kh.includes('{{') ? undefined : fileProblem(kh);
    if (khWhy)
      add(
        {
          file: knownHostsOption ? '--known-hosts' : c.data.pgtls_known_hosts ? inv.file : 'known_hosts',
          field: knownHostsOption ? undefined : c.data.pgtls_known_hosts ? 'pgtls_known_hosts' : undefined,
          message: `${kh}: ${khWhy}: host keys are verified against it (fill it with ssh-keyscan and check the fingerprints, or pass --known-hosts FILE)`,
        },
        host,
      );
  }
  if (issues.size === 0) return;
  throw new ConfigError(
    [...issues.values()].map(({ hosts: hs, ...i }) => ({ ...i, message: `${i.message} (host${hs.length > 1 ? 's' : ''} ${hs.slice(0, 5).join(', ')}${hs.length > 5 ? `, +${hs.length - 5} more` : ''})` })),
  );
}
