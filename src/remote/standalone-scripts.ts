import { loadScript, scriptFile } from './scripts.js';

/**
 * Host scripts that run on their own, without lib.sh in front (src/remote/scripts.ts is the write
 * path's loader, and finds and reads these too): the long-lived shell, the discovery scripts, the batch runner. Real
 * files under src/remote/scripts/, checked by shellcheck (test/unit/stream-shell.test.ts), loaded once.
 */
export type StandaloneScript = 'agent' | 'discover-postgres' | 'discover-pgpool' | 'batch';
export const STANDALONE_SCRIPTS: readonly StandaloneScript[] = ['agent', 'discover-postgres', 'discover-pgpool', 'batch'];

export function standaloneScriptFile(name: StandaloneScript): string {
  return scriptFile(name);
}

export function standaloneScript(name: StandaloneScript): string {
  return loadScript(name);
}
