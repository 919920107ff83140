import { ConfigError } from '../lib/errors.js';
import type { VaultKeyring } from './vault.js';
import { taintVars } from '../lib/secret.js';
import { loadYamlFile } from './yaml.js';

/**
 * `-e` as in Ansible: `key=value` pairs (several per -e, space separated),
 * `@file.yaml` (a YAML mapping) or an inline JSON/YAML object `{"k": 1}`.
 * Later -e options override earlier ones. Secret-named values are Secrets from here on.
 */
export function parseExtraVars(args: string[], vault?: VaultKeyring): Record<string, unknown> {
  return taintVars(parseExtraVarsRaw(args, vault));
}

function parseExtraVarsRaw(args: string[], vault?: VaultKeyring): Record<string, unknown> {
  const vars: Record<string, unknown> = {};
  for (const arg of args) {
    if (arg.startsWith('@')) {
      const doc = loadYamlFile(arg.slice(1), { vault });
      if (doc.data === null || doc.data === undefined) continue;
      if (typeof doc.data !== 'object' || Array.isArray(doc.data)) {
        throw new ConfigError([{ file: doc.file, line: 1, message: 'extra vars file must be a YAML mapping' }]);
      }
      Object.assign(vars, doc.data);
    } else if (arg.trimStart().startsWith('{')) {
      try {
        Object.assign(vars, JSON.parse(arg));
      } catch (e) {
        throw new ConfigError([{ file: '-e', message: `invalid JSON: ${(e as Error).message}` }]);
      }
    } else {
      for (const pair of splitPairs(arg)) {
        const eq = pair.indexOf('=');
        if (eq <= 0) throw new ConfigError([{ file: '-e', field: pair, message: 'expected key=value, @file.yaml or a JSON object' }]);
        const key = pair.slice(0, eq);
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
          throw new ConfigError([{ file: '-e', field: key, message: 'not a valid variable name' }]);
        }
        vars[key] = pair.slice(eq + 1);
      }
    }
  }
  return vars;
}

/** Splits `a=1 b='x y'` into pairs, honouring single and double quotes around values. */
function splitPairs(arg: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | null = null;
  for (const ch of arg) {
    if (quote) {
      if (ch === quote) quote = null;
      else cur += ch;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (/\s/.test(ch)) {
      if (cur) out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur) out.push(cur);
  return out;
}
