/**
 * uninstall_files: restore_originals for a chosen part of the files pgtls changed, made safe to
 * follow with a verified reload/restart.
 *
 * restore_originals forgets a file's record (its original, what pgtls left) as soon as it has
 * put the original back. If the reload that follows then fails its verification, the executor
 * puts the installed file back, but the record is gone: a second uninstall would no longer know
 * that file, and could switch ssl off under rules that still demand it. So before restoring, the
 * records of the chosen files are journaled like any file the run changes (an exec that declares
 * them in `touches`): a failed verify later in the play restores the records with the files.
 *
 * That journaling must not itself be recorded as "a file pgtls changed" (records of records), so
 * this module runs only with pgtls_track_originals: false, which uninstall.yaml sets: an uninstall
 * has no originals of its own to remember.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { z } from 'zod';
import { TaskError } from '../../core/errors.js';
import { DEFAULT_STATE_DIR, stateStore } from '../../core/host-session.js';
import { defineModule, type Change, type PlanContext } from '../../core/types.js';
import { sh } from '../../remote/sh.js';
import { absolutePath } from '../common.js';
import { restoreOriginals } from '../restore-originals/module.js';

const args = z
  .object({
    state_dir: absolutePath.optional(),
    /** Only these files (default: every file pgtls changed on the host). */
    paths: z.array(z.string().min(1)).optional(),
    /** Leave files under these directories for a later step (e.g. the keys, until the server no longer uses them). */
    exclude_under: z.array(z.string().min(1)).default([]),
  })
  .strict();

/** The record files the executor keeps for one path (src/remote/state.ts). */
const RECORD_SUFFIXES = ['.path', '.orig', '.absent', '.installed', '.installed.sha256', '.installed.absent'];

/** The record's base name for a path: sha256 of the path, 40 hex digits (pgtls_state_name). */
export function recordBase(stateDir: string, path: string): string {
  return posix.join(stateDir, createHash('sha256').update(path).digest('hex').slice(0, 40));
}

const under = (path: string, dir: string) => path.startsWith(dir.replace(/\/+$/, '') + '/');

/** The tracked paths, from the `.path` records (one round trip). */
async function trackedPaths(ctx: PlanContext, dir: string): Promise<string[]> {
  const res = await ctx.query(sh`[ -d ${dir} ] || exit 0; for f in ${dir}/*.path; do [ -e "$f" ] || continue; cat -- "$f"; printf '\\0'; done`);
  return res.stdout.toString('utf8').split('\0').filter(Boolean);
}

export const uninstallFiles = defineModule({
  name: 'uninstall_files',
  description: 'put files back as before the install (restore_originals), keeping the records until the change is verified',
  args,
  async plan(ctx, a): Promise<Change[]> {
    if (stateStore(ctx.vars) !== null)
      throw new TaskError('uninstall_files must run with pgtls_track_originals: false (playbooks/uninstall.yaml sets it for every play)');
    const dir = a.state_dir ?? (typeof ctx.vars.pgtls_state_dir === 'string' ? ctx.vars.pgtls_state_dir : DEFAULT_STATE_DIR);
    const chosen = (await trackedPaths(ctx, dir)).filter((p) => (!a.paths || a.paths.includes(p)) && !a.exclude_under.some((d) => under(p, d)));
    if (chosen.length === 0) return [];
    const changes = await restoreOriginals.plan(ctx, { state_dir: dir, paths: chosen });
    if (changes.length === 0) return [];
    const records = chosen.flatMap((p) => RECORD_SUFFIXES.map((s) => recordBase(dir, p) + s));
    // `true` does nothing; declaring the records in `touches` is what makes the executor keep them for a rollback.
    changes[0]!.actions.unshift({ kind: 'exec', description: `keep the uninstall records of ${chosen.length} file(s) until verified`, cmd: sh`true`, touches: records });
    return changes;
  },
});
