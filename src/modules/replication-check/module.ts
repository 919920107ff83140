/**
 * replication_check (YAML name): every replication stream this server sends over TCP is TLS,
 * observed from the sending end (pg_stat_replication joined with pg_stat_ssl). Read-only.
 *
 * Why a play of its own after the standbys switched, rather than a check inside each standby's
 * task: a task runs on one host and the executor can only roll back that host; the walsender lives
 * on the upstream. The standby's own task already proves the stream is verified (it streams under
 * sslmode=verify-full, where libpq never falls back to plaintext) and rolls back when it does not.
 * This play is the independent look from the other end, on every host that sends WAL (a primary,
 * and a standby serving a cascade), and it also catches what no standby task can: a stream from a
 * standby outside the inventory (or one that failed) that still runs in plaintext. It waits a
 * bounded time (a standby may be reconnecting), then fails the upstream host naming each
 * plaintext stream (application_name, client address). In --check nothing has switched yet: it warns.
 */
import { z } from 'zod';
import { TaskError } from '../../core/errors.js';
import { defineModule, type Change } from '../../core/types.js';
import { pgServer } from '../../facts/postgres.js';
import { walSenders, type WalSender } from '../../facts/replication.js';

const args = z
  .object({
    wait_seconds: z.coerce.number().nonnegative().default(30),
  })
  .strict();

const describe = (w: WalSender) => `${w.applicationName || '(no application_name)'} from ${w.clientAddr} (walsender pid ${w.pid}, ${w.state})`;

export const replicationCheck = defineModule({
  name: 'replication_check',
  description: 'every walsender over TCP is TLS (pg_stat_replication + pg_stat_ssl)',
  args,
  async plan(ctx, a): Promise<Change[]> {
    const s = await pgServer(ctx);
    const deadline = Date.now() + a.wait_seconds * 1000;
    for (;;) {
      const plain = (await walSenders(ctx, s)).filter((w) => !w.ssl);
      if (plain.length === 0) return [];
      if (ctx.check) {
        ctx.warn(`replication streams in plaintext now (the run would switch the standbys it manages): ${plain.map(describe).join('; ')}`);
        return [];
      }
      if (Date.now() > deadline)
        throw new TaskError(`replication without TLS after ${a.wait_seconds}s: ${plain.map(describe).join('; ')}; a standby outside this inventory must set sslmode=verify-full itself`);
      await new Promise((r) => setTimeout(r, 500));
    }
  },
});
