import * as z from 'zod';
import { TaskError } from '../../lib/errors.js';
import { defineModule, type Change } from '../../lib/plan-types.js';
import { absolutePath, yamlBool } from '../common.js';
import { rewriteHba } from '../../hba/rewrite.js';

const args = z
  .object({
    /** pool_hba.conf (pgpool_hba_file) */
    path: absolutePath,
    /** Append `hostssl all all 0.0.0.0/0 scram-sha-256` (and ::/0) unless a catch-all rule already covers them. */
    catch_all: yamlBool.default(true),
    /** `hostnossl all all 0.0.0.0/0 reject` and `::/0` above the first remote rule (pgtls_reject_plaintext). */
    reject_plaintext: yamlBool.default(false),
  })
  .strict();

/**
 * pool_hba.conf has pg_hba.conf's line format and first-match semantics, so the
 * PostgreSQL rewrite is reused as is: every password rule becomes
 * `hostssl … scram-sha-256` in place, catch-alls are appended, order is kept.
 * (No cert_users: pgpool nodes get no client certificates. No `replication` reject rules:
 * Pgpool-II does not take replication connections.) pgpool re-reads the
 * file on reload and restart; the play restarts it anyway for the SSL settings.
 */
export const poolHba = defineModule({
  name: 'pool_hba',
  hostLocal: true,
  description: 'make Pgpool-II pool_hba.conf accept passwords only over TLS with SCRAM-SHA-256',
  args,
  reads: (a) => [a.path],
  async plan(ctx, a): Promise<Change[]> {
    const file = await ctx.readFile(a.path);
    if (!file) throw new TaskError(`${a.path} does not exist (is enable_pool_hba's file elsewhere? set pgpool_hba_file)`);
    const before = file.content.toString('utf8');
    const r = rewriteHba(before, { catchAll: a.catch_all, rejectPlaintext: a.reject_plaintext, rejectReplication: false });
    for (const w of r.warnings) ctx.warn(`${a.path}: ${w}`);
    if (!r.changed) return [];
    return [
      {
        summary: `${a.path}: ${r.changes.join('; ')}`,
        diff: { kind: 'file', path: a.path, before, after: r.text },
        actions: [{ kind: 'write', path: a.path, content: Buffer.from(r.text, 'utf8') }],
      },
    ];
  },
});
