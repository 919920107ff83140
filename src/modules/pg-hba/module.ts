/**
 * pg_hba (YAML name): every password rule becomes `hostssl … scram-sha-256`,
 * catch-all TLS rules for remote clients, optional `cert` rules. The text
 * logic is the pure rewriteHba() (rewrite.ts, table-tested).
 *
 * The new file is written atomically (temp file + rename, owner/mode kept)
 * but NOT reloaded here: PostgreSQL has no offline validator for pg_hba.conf,
 * so the `restart` handler checks pg_hba_file_rules after the reload, and a
 * bad file is rolled back by its verify step together with the rest of the run.
 */
import * as z from 'zod';
import { TaskError } from '../../lib/errors.js';
import { defineModule, type Change } from '../../lib/plan-types.js';
import { pgServer } from '../../facts/postgres.js';
import { absolutePath, yamlBool } from '../common.js';
import { rewriteHba } from '../../hba/rewrite.js';

const args = z
  .object({
    /** Default: the server's hba_file (pg_hba_file fact). */
    path: absolutePath.optional(),
    /** Roles that log in with a client certificate (CN = role name): `hostssl all ROLE 0.0.0.0/0 cert` (+ ::/0). */
    cert_users: z.array(z.string().min(1)).nullable().default([]),
    /** Append `hostssl all all 0.0.0.0/0 scram-sha-256` and `::/0` when no catch-all rule exists (the seed's rule). */
    catch_all: yamlBool.default(true),
    /** `hostnossl all all 0.0.0.0/0 reject` and `::/0` (+ replication) above the first remote rule (pgtls_reject_plaintext). */
    reject_plaintext: yamlBool.default(false),
    backup: yamlBool.default(false),
  })
  .strict();

export const pgHba = defineModule({
  name: 'pg_hba',
  changesAuthentication: true,
  description: 'require TLS + SCRAM-SHA-256 for every password rule of pg_hba.conf',
  args,
  reads: (a) => (a.path ? [a.path] : []),
  async plan(ctx, a): Promise<Change[]> {
    const path = a.path ?? (await pgServer(ctx)).hbaFile;
    const file = await ctx.readFile(path);
    if (!file) throw new TaskError(`${path} does not exist`);
    const before = file.content.toString('utf8');
    const r = rewriteHba(before, { catchAll: a.catch_all, certUsers: a.cert_users ?? [], rejectPlaintext: a.reject_plaintext });
    for (const w of r.warnings) ctx.warn(`${path}: ${w}`);
    if (!r.changed) return [];
    return [
      {
        summary: `${path}: ${r.changes.length} change${r.changes.length === 1 ? '' : 's'} (${r.changes.join('; ')})`,
        diff: { kind: 'file', path, before, after: r.text },
        actions: [{ kind: 'write', path, content: Buffer.from(r.text, 'utf8'), backup: a.backup }],
      },
    ];
  },
});
