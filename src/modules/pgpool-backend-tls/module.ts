/**
 * pgpool_backend_tls (YAML name), run on each PostgreSQL backend after the install: proves from
 * the backend's own pg_stat_activity ⨝ pg_stat_ssl that every session coming from a Pgpool-II host
 * (its pooled client sessions, its health check, its streaming-replication check) is TLS.
 * Pgpool-II speaks TLS to a backend only when it connected after the backend served TLS, and it
 * silently falls back to plaintext when a backend declines; so "ssl = on in pgpool.conf" proves
 * nothing, the backend's view does. A session without TLS fails the host, naming it.
 * Read-only: no change, ever (a read-only verify, run when applied; in --check a conditional check).
 */
import * as z from 'zod';
import { TaskError } from '../../lib/errors.js';
import { defineModule, defineVerifier, verifyWith, type Change } from '../../lib/plan-types.js';
import { pgServer } from '../../facts/postgres.js';
import { SESSIONS_SQL, describeSessions, inventoryHostAddresses, tcpSessions } from '../../facts/sessions.js';

const args = z
  .object({
    /** Inventory names of the Pgpool-II hosts (groups['pgpool']); their addresses come from ansible_host. */
    pgpool_hosts: z.array(z.string().min(1)).nullable().default([]),
  })
  .strict();

/** The backend's own pg_stat_ssl: every session from an address of a Pgpool-II host is TLS. */
const sessionsFromPgpoolTls = defineVerifier('pgpool_backend_tls.sessions', async (ctx, p: { pgpoolHosts: string[] }) => {
  const addresses = new Set(await inventoryHostAddresses(ctx, p.pgpoolHosts));
  const s = await pgServer(ctx);
  const fromPgpool = (await tcpSessions(ctx, s)).filter((x) => addresses.has(x.client_addr));
  const plain = fromPgpool.filter((x) => !x.ssl);
  if (plain.length === 0) return;
  const what =
    `${plain.length} of ${fromPgpool.length} session${fromPgpool.length === 1 ? '' : 's'} from Pgpool-II (${[...addresses].join(', ')}) ` +
    `to this server run without TLS: ${describeSessions(plain)}`;
  throw new TaskError(`${what}. Pgpool-II keeps connections it opened before this server served TLS (or has ssl = off): restart Pgpool-II, then run the install again`);
});

export const pgpoolBackendTls = defineModule({
  name: 'pgpool_backend_tls',
  description: "prove that every session from a Pgpool-II host to this PostgreSQL server is TLS (read-only)",
  args,
  verifiers: [sessionsFromPgpoolTls],
  sql: (a) => (a.pgpool_hosts?.length ? [SESSIONS_SQL] : []),
  async plan(_ctx, a): Promise<Change[]> {
    const names = a.pgpool_hosts ?? [];
    if (names.length === 0) return [];
    // Observed when applied (a read-only verify): --check has restarted no Pgpool-II, so what the run
    // would prove is not there yet; it is shown as a conditional check.
    return [
      {
        summary: 'check that every session from Pgpool-II to this server is TLS',
        verifyOnly: true,
        conditional: true,
        actions: [
          verifyWith(sessionsFromPgpoolTls, { pgpoolHosts: names }, { readOnly: true, description: 'every session from Pgpool-II is TLS' }),
        ],
      },
    ];
  },
});
