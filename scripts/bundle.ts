/**
 * dist/pgtls.mjs: the whole CLI as one file, which bin/pgtls.js starts when it is newer than the
 * compiled tree (npm run build; the tests, the benchmarks and the demo build it too).
 *
 * Why: pgtls runs once per deploy step, so its start is part of every run. Loading the compiled
 * tree is ~170 ES modules plus the packages' own files, resolved and compiled one by one (~0.5 s
 * on the benchmark machine, a quarter of a no-change run on three hosts); the bundle loads in about
 * half that. Nothing else changes: the same compiled code, and the tests import the tree itself.
 *  - ssh2 stays outside: it loads its optional native crypto binding from its own directory.
 *  - The packages that are CommonJS call require() for Node's built-ins, so the bundle defines it.
 */
import { build } from 'esbuild';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../src/lib/package-root.js';

await build({
  entryPoints: [join(PACKAGE_ROOT, 'dist/src/cli.js')],
  outfile: join(PACKAGE_ROOT, 'dist/pgtls.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['ssh2'],
  banner: { js: "import { createRequire as pgtlsCreateRequire } from 'node:module'; const require = pgtlsCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
