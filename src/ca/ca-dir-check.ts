/**
 * The CA directory as the controller sees it, checked before any connection (gencert, ca_rotate):
 * a directory under a regular file can never be created (found today only after every host was
 * contacted), and ca-finish needs a rotation that was begun and published.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** Why `dir` can never be a directory here (an ancestor or itself is a file), or undefined. */
export function caDirProblem(dir: string): string | undefined {
  let p = resolve(dir);
  for (;;) {
    if (existsSync(p)) {
      if (!statSync(p).isDirectory()) return p === resolve(dir) ? `${p} is a file, not a directory` : `${dir} is under ${p}, which is a file`;
      return undefined;
    }
    const up = dirname(p);
    if (up === p) return undefined;
    p = up;
  }
}

/** Why ca-finish cannot run with the CA of `dir`, or undefined (readRotation's states, from the file system only). */
export function finishProblem(dir: string): string | undefined {
  const d = resolve(dir);
  if (!existsSync(join(d, 'ca.crt'))) return `no CA in ${d} (no ca.crt): nothing to finish; check pgtls_ca_dir`;
  if (existsSync(join(d, 'next'))) return `the CA rotation in ${d} was not completed (the new CA is not published yet): run reissue=ca again before ca-finish`;
  // A finished rotation left retired/: running ca-finish again converges (changed=0), like any re-run.
  if (!existsSync(join(d, 'previous')) && !existsSync(join(d, 'retired')))
    return `no CA rotation in progress in ${d}: run reissue=ca first (ca-finish retires the old CA of a rotation)`;
  return undefined;
}
