import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the package itself lives (the source tree or an `npm i -g` install): the nearest directory
 * above this module whose package.json is pgtls's. Found by walking up rather than by a fixed
 * number of levels because this module runs from several depths: dist/src/lib/ (the compiled
 * tree, the tests) and dist/ (the one-file bundle bin/pgtls.js starts, scripts/bundle.ts).
 */
export const PACKAGE_ROOT = packageRoot(dirname(fileURLToPath(import.meta.url)));

function packageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'pgtls') return dir;
    if (dirname(dir) === dir) throw new Error(`pgtls cannot find its own package.json above ${from}`);
  }
}
