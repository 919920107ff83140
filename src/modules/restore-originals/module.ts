import { z } from 'zod';
import { TaskError } from '../../core/errors.js';
import { defineModule, type Action, type Change, type PlanContext } from '../../core/types.js';
import { DEFAULT_STATE_DIR } from '../../core/host-session.js';
import { sh } from '../../remote/sh.js';
import { RECORD_SUFFIXES } from '../../remote/state.js';
import { decideRestore } from './plan-restore.js';

const args = z
  .object({
    /** Where the install kept the originals (default pgtls_state_dir or /var/lib/pgtls/state). */
    state_dir: z.string().regex(/^\//, 'must be an absolute path').optional(),
    /** Only these paths (default: every file pgtls changed on the host). */
    paths: z.array(z.string()).optional(),
    /** Leave files under these directories for a later step (e.g. the keys, until the server no longer uses them). */
    exclude_under: z.array(z.string().min(1)).default([]),
  })
  .strict();

interface Tracked {
  path: string;
  base: string;
}

/** Files whose content must not be shown in a diff. */
const SECRET_FILE = /(\.key$|pool_passwd$|pgpoolkey$)/;

/**
 * Puts back every file pgtls changed on a host as it was before pgtls first
 * touched it (the uninstall), from what the executor remembered there.
 */
export const restoreOriginals = defineModule({
  name: 'restore_originals',
  description: 'put files back as they were before pgtls changed them',
  args,
  async plan(ctx, a): Promise<Change[]> {
    const dir = a.state_dir ?? (typeof ctx.vars.pgtls_state_dir === 'string' ? ctx.vars.pgtls_state_dir : DEFAULT_STATE_DIR);
    const under = (path: string, d: string) => path.startsWith(d.replace(/\/+$/, '') + '/');
    const tracked = (await listTracked(ctx, dir)).filter(
      (t) => (!a.paths || a.paths.includes(t.path)) && !a.exclude_under.some((d) => under(t.path, d)),
    );
    const changes: Change[] = [];
    for (const t of tracked) changes.push(...(await planOne(ctx, t)));
    return changes;
  },
});

async function listTracked(ctx: PlanContext, dir: string): Promise<Tracked[]> {
  const res = await ctx.query(
    sh`[ -d ${dir} ] || exit 0; for f in ${dir}/*.path; do [ -e "$f" ] || continue; printf '%s\\0' "\${f%.path}"; cat -- "$f"; printf '\\0'; done`,
  );
  const parts = res.stdout.toString('utf8').split('\0');
  const out: Tracked[] = [];
  for (let i = 0; i + 1 < parts.length; i += 2) out.push({ base: parts[i]!, path: parts[i + 1]! });
  return out;
}

async function planOne(ctx: PlanContext, t: Tracked): Promise<Change[]> {
  const records = RECORD_SUFFIXES.map((suffix) => t.base + suffix);
  // The records are forgotten as soon as the file is back; should a reload after it fail its
  // verification, the executor puts back the file AND (declared in `touches`) its records, so a
  // later uninstall still knows the file. `touches` is what makes the executor keep them.
  const forget: Action = { kind: 'exec', description: `forget the original of ${t.path}`, cmd: sh`rm -f -- ${records}`, touches: records };
  // Taken before the file is written, so the copies are of the records as the install left them.
  const keep: Action = { kind: 'exec', description: `keep the records of ${t.path} until verified`, cmd: sh`true`, touches: records };
  const secret = SECRET_FILE.test(t.path);
  const orig = await ctx.readFile(`${t.base}.orig`);
  if (orig === null) {
    // pgtls created this file: remove it, unless someone replaced it since (its hash differs).
    const now = await ctx.query(sh`if [ -e ${t.path} ]; then sha256sum < ${t.path} | cut -d' ' -f1; fi; cat -- ${t.base}.installed.sha256 2>/dev/null || true`);
    const [current = '', installed = ''] = now.stdout.toString('utf8').split('\n');
    if (!current) return [{ summary: `${t.path}: already gone`, actions: [forget] }];
    if (installed && current !== installed) {
      ctx.warn(`${t.path} was replaced after the install; left in place`);
      return [{ summary: `${t.path}: kept (changed after the install)`, actions: [forget] }];
    }
    return [
      {
        summary: `${t.path}: removed (created by the install)`,
        diff: secret ? { kind: 'redacted', path: t.path, note: 'file removed' } : { kind: 'redacted', path: t.path, note: 'file created by the install, removed' },
        actions: [keep, { kind: 'remove', path: t.path }, forget],
      },
    ];
  }
  const installed = await ctx.readFile(`${t.base}.installed`);
  const current = await ctx.readFile(t.path);
  const decision = decideRestore({
    original: orig.content.toString('utf8'),
    installed: installed?.content.toString('utf8') ?? null,
    current: current?.content.toString('utf8') ?? null,
  });
  switch (decision.kind) {
    case 'keep':
      return [{ summary: `${t.path}: ${decision.reason}`, actions: [forget] }];
    case 'conflict':
      throw new TaskError(`${t.path}: ${decision.reason} (original kept in ${t.base}.orig)`);
    case 'remove':
      return [{ summary: `${t.path}: removed`, actions: [{ kind: 'remove', path: t.path }, forget] }];
    case 'write':
      if (decision.merged) ctx.warn(`${t.path} was changed after the install: only the lines pgtls changed were reverted`);
      return [
        {
          summary: `${t.path}: restored${decision.merged ? ' (merged with later changes)' : ''}`,
          diff: secret
            ? { kind: 'redacted', path: t.path, note: 'content restored (not shown: secret)' }
            : { kind: 'file', path: t.path, before: current?.content.toString('utf8') ?? '', after: decision.content },
          actions: [keep, { kind: 'write', path: t.path, content: Buffer.from(decision.content, 'utf8') }, forget],
        },
      ];
  }
}
