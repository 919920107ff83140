/**
 * Ansible's `group_vars/` and `host_vars/` directories, beside the inventory and beside the
 * playbook: for a group or host NAME, the file NAME, NAME.yml, NAME.yaml or NAME.json, and/or
 * a directory NAME/ whose files (recursively, in name order) are merged. Files may be
 * vault-encrypted; `!vault` values are opened (both become Secrets).
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, type ConfigIssue } from '../lib/errors.js';
import { taintVars } from '../lib/secret.js';
import type { VaultKeyring } from './vault.js';
import { loadYamlFile } from './yaml.js';

const EXTENSIONS = ['', '.yml', '.yaml', '.json'];

export interface VarsSource {
  dir: string;
  kind: 'group_vars' | 'host_vars';
}

function kindOf(path: string): 'file' | 'dir' | null {
  try {
    const st = statSync(path);
    return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : null;
  } catch {
    return null;
  }
}

/** The files that hold the variables of `name` under `dir`, in the order Ansible merges them. */
export function varsFilesFor(dir: string, name: string): string[] {
  const out: string[] = [];
  for (const ext of EXTENSIONS) {
    const p = join(dir, name + ext);
    const k = kindOf(p);
    if (k === 'file') out.push(p);
    else if (k === 'dir' && ext === '') out.push(...filesUnder(p));
  }
  return out;
}

function filesUnder(dir: string): string[] {
  const entries = readdirSync(dir).filter((e) => !e.startsWith('.')).sort();
  return entries.flatMap((e) => {
    const p = join(dir, e);
    const k = kindOf(p);
    if (k === 'dir') return filesUnder(p);
    if (k === 'file' && EXTENSIONS.some((x) => x !== '' && e.endsWith(x))) return [p];
    if (k === 'file' && !e.includes('.')) return [p];
    return [];
  });
}

/** Loads and merges the variables files (later files win, top-level keys replaced as in Ansible). */
export function loadVarsFiles(files: string[], vault: VaultKeyring | undefined, issues: ConfigIssue[]): Record<string, unknown> {
  const vars: Record<string, unknown> = {};
  for (const f of files) {
    try {
      const doc = loadYamlFile(f, { vault });
      if (doc.data === null || doc.data === undefined) continue;
      if (typeof doc.data !== 'object' || Array.isArray(doc.data)) {
        issues.push({ file: f, line: 1, message: 'a variables file must be a mapping of variable names to values' });
        continue;
      }
      // Secret-named values are Secrets, as in the inventory file (vault values already are)
      Object.assign(vars, taintVars(doc.data));
    } catch (e) {
      if (e instanceof ConfigError) issues.push(...e.issues);
      else throw e;
    }
  }
  return vars;
}

/** The group_vars/ or host_vars/ directories to read, inventory's first (lower precedence), then the playbook's. */
export function varsDirs(kind: 'group_vars' | 'host_vars', baseDirs: string[]): string[] {
  return [...new Set(baseDirs)].map((b) => join(b, kind)).filter((d) => kindOf(d) === 'dir');
}
