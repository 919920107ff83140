/**
 * Does a running Pgpool-II still talk to a backend without TLS? Pgpool-II keeps the connections it
 * opened to its backends (pooled sessions, the streaming-replication check) for as long as it runs,
 * and it opens them in plaintext when the backend did not offer TLS at the time. So a Pgpool-II
 * that was started before its backends served TLS stays in plaintext to them until it restarts.
 *
 * Asked from the Pgpool-II host, of each backend (backend_hostnameN/backend_portN), by a psql login
 * over TLS that must verify the backend's certificate against Pgpool-II's own ssl_ca_cert (as
 * Pgpool-II does): the sessions whose client address is this host's (inet_client_addr(): the same
 * route Pgpool-II's connections take) and that run without TLS. A backend that cannot be asked
 * (no TLS yet, rules that refuse the login) is not counted: there is nothing a restart would fix.
 */
import type { Secret } from '../../lib/secret.js';
import type { PlanContext } from '../../lib/plan-types.js';
import { passwordClientCommand } from '../../facts/pg-login.js';
import { conninfoString } from '../../pgconf/conninfo.js';
import type { ShellCommand } from '../../lib/sh.js';

export interface Backend {
  host: string;
  port: number;
}

/** The TCP backends of a pgpool.conf (a Unix-socket directory as backend_hostname is skipped). */
export function pgpoolBackends(conf: string): Backend[] {
  const hosts = new Map<number, string>();
  const ports = new Map<number, number>();
  for (const line of conf.split('\n')) {
    const m = /^\s*backend_(hostname|port)(\d+)\s*=\s*'?([^'#\s]*)'?/.exec(line);
    if (!m) continue;
    if (m[1] === 'hostname') hosts.set(Number(m[2]), m[3]!);
    else ports.set(Number(m[2]), Number(m[3]));
  }
  return [...hosts]
    .filter(([, h]) => h && !h.startsWith('/'))
    .sort(([a], [b]) => a - b)
    .map(([n, host]) => ({ host, port: ports.get(n) || 5432 }));
}

const QUERY = `select count(*) from pg_stat_activity a join pg_stat_ssl l on l.pid = a.pid
  where a.client_addr = inet_client_addr() and a.pid <> pg_backend_pid() and not l.ssl`;

export interface BackendLogin {
  user: string;
  password: Secret;
  dbname: string;
  caFile: string;
  psql: string;
}

/** The login asked of each backend (one psql each, the password on stdin): plaintextToBackends's, and what pgpool_restart declares. */
export function backendLogins(conf: string, login: BackendLogin): { backend: Backend; cmd: ShellCommand }[] {
  return pgpoolBackends(conf).map((backend) => {
    const conninfo = conninfoString({ host: backend.host, port: backend.port, user: login.user, dbname: login.dbname, sslmode: 'verify-ca', sslrootcert: login.caFile, connect_timeout: 5, application_name: 'pgtls-backend-check' });
    return { backend, cmd: passwordClientCommand(login.psql, conninfo, QUERY) };
  });
}

export const BACKEND_LOGIN_TIMEOUT_MS = 20_000;

/** One line per backend that still has this host's sessions without TLS (the backends asked together: one round trip). */
export async function plaintextToBackends(ctx: PlanContext, conf: string, login: BackendLogin): Promise<string[]> {
  const counts = await Promise.all(
    backendLogins(conf, login).map(async ({ backend: b, cmd }) => {
      try {
        const r = await ctx.query(cmd, { stdin: login.password, timeoutMs: BACKEND_LOGIN_TIMEOUT_MS });
        return { b, n: Number(r.stdout.toString('utf8').trim()) || 0 };
      } catch {
        return { b, n: 0 };
      }
    }),
  );
  return counts.filter(({ n }) => n > 0).map(({ b, n }) => `${n} of its sessions to backend ${b.host}:${b.port} run without TLS (opened before that backend served TLS)`);
}
