import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../lib/package-root.js';

/**
 * The shell scripts pgtls runs on hosts live in src/remote/scripts/*.sh (real files: shellcheck
 * checks them in a unit test, and a reviewer reads them as shell). They are loaded once, at first
 * use, and sent as `sh -c SCRIPT NAME ARGS…`: every value is a positional argument, never spliced in.
 */
export type ScriptName = 'commit' | 'read' | 'prepare' | 'record' | 'rollback' | 'sign' | 'lock' | 'unlock' | 'dirop' | 'lib' | 'gencert-probe' | 'gencert-dirs' | 'gencert-keygen' | 'gencert-attrs' | 'state-list' | 'file-sha' | 'read-many';

/** Next to the compiled modules (a package that copies them), else the sources. */
const CANDIDATES = ['dist/src/remote/scripts', 'src/remote/scripts'].map((d) => join(PACKAGE_ROOT, d));

const cache = new Map<string, string>();

/** The file of any host script (the write path's, or one that runs on its own: standalone-scripts.ts). */
export function scriptFile(name: string): string {
  for (const dir of CANDIDATES) {
    const p = join(dir, `${name}.sh`);
    if (existsSync(p)) return p;
  }
  throw new Error(`pgtls is installed without its host script ${name}.sh (looked in ${CANDIDATES.join(', ')})`);
}

/** A host script's text, read once, without its comment lines (see compactScript). */
export function loadScript(name: string): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = compactScript(readFileSync(scriptFile(name), 'utf8'));
    cache.set(name, text);
  }
  return text;
}

/**
 * The script as sent: without its comment lines and blank lines (they are for the reader of the
 * file; on the wire they are a third of every command, and a command line is limited to 128 KiB:
 * a batch holds several scripts, each with lib.sh and dirop.sh). Only whole lines that begin with
 * `#` outside any quotes go; a line inside a quoted string spanning lines is kept as it is.
 */
export function compactScript(text: string): string {
  const out: string[] = [];
  let quote: "'" | '"' | null = null;
  for (const line of text.split('\n')) {
    if (quote === null && (/^\s*#/.test(line) || /^\s*$/.test(line))) continue;
    out.push(line);
    // the quote state at the end of this line (a comment outside quotes ends the scan of the line)
    for (let i = 0; i < line.length; i++) {
      const c = line[i]!;
      if (quote === "'") {
        if (c === "'") quote = null;
      } else if (quote === '"') {
        if (c === '\\') i++;
        else if (c === '"') quote = null;
      } else if (c === '\\') i++;
      else if (c === "'" || c === '"') quote = c;
      else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) break;
    }
  }
  return out.join('\n') + '\n';
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
