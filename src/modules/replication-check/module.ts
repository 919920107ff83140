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
 * plaintext stream (application_name, client address). The look happens when applied (a read-only
 * verify): in --check nothing has switched yet, and it is shown as a conditional check.
 */
import * as z from 'zod';
import { TaskError } from '../../lib/errors.js';
import { defineModule, defineVerifier, verifyWith, type Change } from '../../lib/plan-types.js';
import { pgServer } from '../../facts/postgres.js';
import { WALSENDERS_SQL, walSenders, type WalSender } from '../../facts/replication.js';
import { retryUntil } from '../../lib/retry.js';

const args = z
  .object({
    wait_seconds: z.coerce.number().nonnegative().default(30),
  })
  .strict();

const describe = (w: WalSender) => `${w.applicationName || '(no application_name)'} from ${w.clientAddr} (walsender pid ${w.pid}, ${w.state})`;

/** Waits a bounded time for every walsender over TCP to be TLS; fails naming those that are not. */
const walSendersTls = defineVerifier('replication_check.walsenders', async (ctx, p: { waitSeconds: number }) => {
  const s = await pgServer(ctx);
  const plain = await retryUntil(p.waitSeconds * 1000, async () => {
    const found = (await walSenders(ctx, s)).filter((w) => !w.ssl);
    return found.length === 0 ? { done: true } : { done: false, value: found };
  });
  if (plain)
    throw new TaskError(`replication without TLS after ${p.waitSeconds}s: ${plain.map(describe).join('; ')}; a standby outside this inventory must set sslmode=verify-full itself`);
});

export const replicationCheck = defineModule({
  name: 'replication_check',
  description: 'every walsender over TCP is TLS (pg_stat_replication + pg_stat_ssl)',
  args,
  verifiers: [walSendersTls],
  sql: () => [WALSENDERS_SQL],
  async plan(_ctx, a): Promise<Change[]> {
    // Observed when applied: --check has switched no standby yet, so it shows this as a conditional check.
    return [
      {
        summary: 'check that every replication stream over TCP is TLS',
        verifyOnly: true,
        conditional: true,
        actions: [
          verifyWith(walSendersTls, { waitSeconds: a.wait_seconds }, { readOnly: true, description: 'every walsender over TCP is TLS' }),
        ],
      },
    ];
  },
});
