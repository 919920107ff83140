import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Host scripts that run on their own, without lib.sh in front (src/remote/scripts.ts is the write
 * path's loader): the long-lived shell and the discovery scripts. Real files under
 * src/remote/scripts/, checked by shellcheck (test/unit/stream-shell.test.ts), loaded once.
 */
export type StandaloneScript = 'agent' | 'discover-postgres' | 'discover-pgpool';
export const STANDALONE_SCRIPTS: readonly StandaloneScript[] = ['agent', 'discover-postgres', 'discover-pgpool'];

const CANDIDATES = [new URL('./scripts/', import.meta.url), new URL('../../../src/remote/scripts/', import.meta.url)];
const cache = new Map<string, string>();

export function standaloneScriptFile(name: StandaloneScript): string {
  for (const dir of CANDIDATES) {
    const p = fileURLToPath(new URL(`${name}.sh`, dir));
    if (existsSync(p)) return p;
  }
  throw new Error(`pgtls is installed without its host script ${name}.sh`);
}

export function standaloneScript(name: StandaloneScript): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(standaloneScriptFile(name), 'utf8');
    cache.set(name, text);
  }
  return text;
}
