import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from './lib/package-root.js';

export { PACKAGE_ROOT };
export const SHIPPED_PLAYBOOKS = join(PACKAGE_ROOT, 'playbooks');

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}

export interface ShippedPlaybook {
  name: string;
  file: string;
  /** The first line of the playbook's leading comment. */
  summary: string;
}

export function shippedPlaybooks(): ShippedPlaybook[] {
  let names: string[];
  try {
    names = readdirSync(SHIPPED_PLAYBOOKS).filter((f) => /\.ya?ml$/.test(f)).sort();
  } catch {
    return [];
  }
  return names.map((name) => {
    const file = join(SHIPPED_PLAYBOOKS, name);
    const comment = readFileSync(file, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.startsWith('#') && !l.startsWith('# yaml-language-server') && l.replace(/^#+/, '').trim() !== '');
    return { name, file, summary: comment ? comment.replace(/^#+\s*/, '') : '' };
  });
}

/**
 * A playbook argument: a path relative to the working directory when such a file exists,
 * else the name of a shipped playbook (`install.yaml`, or just `install`). Anything else is
 * returned as given, so the error names what the user typed.
 */
export function resolvePlaybook(arg: string, exists: (p: string) => boolean): string {
  if (exists(arg)) return arg;
  if (arg.includes('/')) return arg;
  for (const candidate of [arg, `${arg}.yaml`, `${arg}.yml`]) {
    const shipped = join(SHIPPED_PLAYBOOKS, candidate);
    if (exists(shipped)) return shipped;
  }
  return arg;
}
