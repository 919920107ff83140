import * as z from 'zod';
import { TaskError } from '../../lib/errors.js';
import { defineModule, type Action, type Change, type PlanContext } from '../../lib/plan-types.js';
import { stateDirOf } from '../../lib/state-dir.js';
import { sha256Hex } from '../../remote/files.js';
import { diropScript, hostScript } from '../../remote/scripts.js';
import { sh } from '../../lib/sh.js';
import { loadStateKey, RECORD_SUFFIXES, RecordSigner, stateKeyFile } from '../../remote/state.js';
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
  changesAuthentication: true,
  description: 'put files back as they were before pgtls changed them',
  args,
  async plan(ctx, a): Promise<Change[]> {
    const dir = stateDirOf(ctx.vars, a.state_dir);
    const under = (path: string, d: string) => path.startsWith(d.replace(/\/+$/, '') + '/');
    const tracked = (await listTracked(ctx, dir)).filter(
      (t) => (!a.paths || a.paths.includes(t.path)) && !a.exclude_under.some((d) => under(t.path, d)),
    );
    if (tracked.length === 0) return [];
    const signer = recordSigner(ctx);
    const changes: Change[] = [];
    for (const t of tracked) changes.push(...(await planOne(ctx, t, signer)));
    return changes;
  },
});

/** The controller's key that signed the records: without it nothing recorded can be trusted. */
function recordSigner(ctx: PlanContext): RecordSigner {
  const file = stateKeyFile(ctx.vars);
  const key = loadStateKey(file, false);
  if (!key)
    throw new TaskError(
      `cannot verify the records pgtls keeps on ${ctx.host}: the key that signed them, ${file}, is missing (set pgtls_state_key_file, or pgtls_ca_dir as for the install)`,
    );
  return new RecordSigner(ctx.host, key);
}

/** The records, once state-list.sh has checked that only root could have written them. */
async function listTracked(ctx: PlanContext, dir: string): Promise<Tracked[]> {
  const res = await ctx.query(sh`sh -c ${hostScript('state-list')} pgtls-state-list ${dir}`);
  const parts = res.stdout.toString('utf8').split('\0');
  const out: Tracked[] = [];
  for (let i = 0; i + 1 < parts.length; i += 2) out.push({ base: parts[i]!, path: parts[i + 1]! });
  return out;
}

/** What a record says, checked against the controller's MACs: a record that fails is refused, loudly. */
interface Verified {
  orig: { content: string; mode: string; owner: string; group: string } | null;
  installed: string | null;
  installedSha: string | null;
}

async function verifyRecord(ctx: PlanContext, t: Tracked, signer: RecordSigner): Promise<Verified> {
  const refuse = (why: string) =>
    new TaskError(`the record of ${t.path} on ${ctx.host} (${t.base}.*) fails its integrity check: ${why}; refusing to restore from it (the uninstall stops here, nothing of it was written)`);
  const read = async (suffix: string) => (await ctx.readFile(`${t.base}${suffix}`))?.content ?? null;
  const [orig, absent, meta, origMac, installed, installedSha, installedMac] = await Promise.all(
    ['.orig', '.absent', '.meta', '.orig.mac', '.installed', '.installed.sha256', '.installed.mac'].map(read),
  );
  if (!origMac) throw refuse('it carries no MAC');
  let origOut: Verified['orig'] = null;
  if (orig) {
    const m = (meta?.toString('utf8') ?? '').trim();
    if (!signer.verify('orig', t.path, `${sha256Hex(orig)} ${m}`, origMac.toString('utf8'))) throw refuse('the original or its owner/mode was changed');
    const [mode = '', owner = '', group = ''] = m.split(' ');
    origOut = { content: orig.toString('utf8'), mode, owner, group };
  } else if (!absent || !signer.verify('orig', t.path, 'absent', origMac.toString('utf8'))) throw refuse('no original, or its MAC does not match');
  let sha: string | null = null;
  if (installedSha || installedMac) {
    sha = (installedSha?.toString('utf8') ?? '').trim();
    if (!installedMac || !signer.verify('installed', t.path, sha, installedMac.toString('utf8'))) throw refuse('the record of what pgtls installed was changed');
    if (installed && sha256Hex(installed) !== sha) throw refuse('the copy of what pgtls installed was changed');
  }
  return { orig: origOut, installed: installed?.toString('utf8') ?? null, installedSha: sha };
}

async function planOne(ctx: PlanContext, t: Tracked, signer: RecordSigner): Promise<Change[]> {
  const records = RECORD_SUFFIXES.map((suffix) => t.base + suffix);
  // The records are forgotten as soon as the file is back; should a reload after it fail its
  // verification, the executor puts back the file AND (declared in `touches`) its records, so a
  // later uninstall still knows the file. `touches` is what makes the executor keep them.
  const forget: Action = { kind: 'exec', description: `forget the original of ${t.path}`, cmd: sh`rm -f -- ${records}`, touches: records };
  // Taken before the file is written, so the copies are of the records as the install left them.
  const keep: Action = { kind: 'exec', description: `keep the records of ${t.path} until verified`, cmd: sh`true`, touches: records };
  const secret = SECRET_FILE.test(t.path);
  const rec = await verifyRecord(ctx, t, signer);
  const orig = rec.orig;
  if (orig === null) {
    // pgtls created this file: remove it, unless someone replaced it since (its hash differs).
    const hashed = (await ctx.query(sh`sh -c ${hostScript('file-sha')} pgtls-file-sha ${diropScript()} ${t.path}`)).stdout.toString('utf8').trim();
    const current = hashed === 'absent' ? '' : hashed;
    const installed = rec.installedSha && rec.installedSha !== 'absent' ? rec.installedSha : '';
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
  const current = await ctx.readFile(t.path);
  const decision = decideRestore({
    original: orig.content,
    installed: rec.installed,
    current: current?.content.toString('utf8') ?? null,
  });
  // owner and mode come back too, not just the content
  const attrs = { ...(orig.mode ? { mode: orig.mode } : {}), ...(orig.owner ? { owner: orig.owner } : {}), ...(orig.group ? { group: orig.group } : {}) };
  const attrsDiffer = current !== null && ((orig.mode && current.mode !== orig.mode) || (orig.owner && current.owner !== orig.owner) || (orig.group && current.group !== orig.group));
  switch (decision.kind) {
    case 'keep':
      if (decision.reason.startsWith('already as before') && attrsDiffer && current)
        return [
          {
            summary: `${t.path}: owner/mode restored (${orig.mode} ${orig.owner}:${orig.group})`,
            actions: [keep, { kind: 'write', path: t.path, content: current.content, ...attrs }, forget],
          },
        ];
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
          actions: [keep, { kind: 'write', path: t.path, content: Buffer.from(decision.content, 'utf8'), ...attrs }, forget],
        },
      ];
  }
}
