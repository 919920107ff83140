import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The shell scripts pgtls runs on hosts live in src/remote/scripts/*.sh (real files: shellcheck
 * checks them in a unit test, and a reviewer reads them as shell). They are loaded once, at first
 * use, and sent as `sh -c SCRIPT NAME ARGS…`: every value is a positional argument, never spliced in.
 */
export type ScriptName = 'commit' | 'read' | 'prepare' | 'record' | 'rollback' | 'sign' | 'lock' | 'unlock' | 'dirop' | 'lib' | 'gencert-probe' | 'gencert-dirs' | 'gencert-keygen' | 'gencert-attrs' | 'state-list' | 'file-sha' | 'read-many';

/** Next to the compiled module (a package that copies them), else the sources (dist/src/remote → src/remote). */
const CANDIDATES = [new URL('./scripts/', import.meta.url), new URL('../../../src/remote/scripts/', import.meta.url)];

const cache = new Map<string, string>();

/** The file of any host script (the write path's, or one that runs on its own: standalone-scripts.ts). */
export function scriptFile(name: string): string {
  for (const dir of CANDIDATES) {
    const p = fileURLToPath(new URL(`${name}.sh`, dir));
    if (existsSync(p)) return p;
  }
  throw new Error(`pgtls is installed without its host script ${name}.sh (looked in ${CANDIDATES.map((c) => fileURLToPath(c)).join(', ')})`);
}

/** A host script's text, read once. */
export function loadScript(name: string): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(scriptFile(name), 'utf8');
    cache.set(name, text);
  }
  return text;
}

/** A script with lib.sh's functions in front (what `sh -c` gets). */
export function hostScript(name: Exclude<ScriptName, 'lib' | 'dirop'>): string {
  return `${loadScript('lib')}\n${loadScript(name)}`;
}

/** dirop.sh: the one script that runs inside a directory as the user who controls it (passed as an argument). */
export function diropScript(): string {
  return loadScript('dirop');
}

export const ALL_SCRIPTS: readonly ScriptName[] = ['lib', 'dirop', 'commit', 'read', 'prepare', 'record', 'rollback', 'sign', 'lock', 'unlock', 'gencert-probe', 'gencert-dirs', 'gencert-keygen', 'gencert-attrs', 'state-list', 'file-sha', 'read-many'];
