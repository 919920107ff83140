/**
 * plaintext_sessions (YAML name): TCP client sessions that still run without TLS, typically
 * opened before pg_hba.conf required hostssl (a reload does not touch running sessions).
 * Always reported, per host, as a warning (count, client address, user, application_name).
 * With `terminate: true` (pgtls_terminate_plaintext) they are ended with pg_terminate_backend so
 * that their clients reconnect, now over TLS — but only once that is what they would get: the
 * server serves TLS and no pg_hba rule lets a remote client in without it. Otherwise ending
 * them would only make them reconnect in plaintext, and the module says so instead.
 *
 * Read-only plan: the termination is one exec action; its SQL names each session by pid AND
 * backend_start (a pid can be reused by a new, TLS session between plan and apply) and ends it
 * only if it is still a TCP session without TLS. Walsenders are not client sessions (their
 * standbys' primary_conninfo decides how they reconnect); addresses in `exclude` (Pgpool-II's:
 * ending its pooled connections can make it detach a backend) are reported, never ended.
 */
import * as z from 'zod';
import { defineModule, type Change } from '../../lib/plan-types.js';
import { pgServer, psqlAction, psqlQuery } from '../../facts/postgres.js';
import { SESSIONS_SQL, describeSessions, inventoryHostAddresses, tcpSessions, type TcpSession } from '../../facts/sessions.js';
import { isLoopbackAddress } from '../../hba/address.js';
import { plainRows, type HbaRuleRow } from '../../hba/plain-rules.js';
import { yamlBool } from '../common.js';

const args = z
  .object({
    terminate: yamlBool.default(false),
    /** Inventory hosts (names) whose sessions are never ended, e.g. the pgpool group. */
    exclude_hosts: z.array(z.string().min(1)).nullable().default([]),
  })
  .strict();

const STATE_SQL = `select json_build_object('ssl', current_setting('ssl'),
  'rules', (select coalesce(json_agg(json_build_object('line_number', line_number, 'type', type, 'database', database,
      'user_name', user_name, 'address', address, 'netmask', netmask, 'auth_method', auth_method) order by line_number), '[]')
    from pg_hba_file_rules where error is null));
`;

const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** The termination SQL: only sessions still matching (pid, backend_start) and still TCP without TLS. */
export function terminateSql(list: readonly TcpSession[]): string {
  const values = list.map((x) => `(${Number(x.pid)}, ${lit(x.backend_start)}::timestamptz)`).join(', ');
  return `select count(pg_terminate_backend(a.pid)) from pg_stat_activity a join pg_stat_ssl l on l.pid = a.pid
  where a.client_addr is not null and not l.ssl and a.backend_type = 'client backend'
    and (a.pid, a.backend_start) in (values ${values});
`;
}

export const plaintextSessions = defineModule({
  name: 'plaintext_sessions',
  description: 'report TCP client sessions without TLS; with terminate: true end them once TLS is required',
  args,
  // STATE_SQL is asked only when a session without TLS is found: not declared
  sql: () => [SESSIONS_SQL],
  async plan(ctx, a): Promise<Change[]> {
    const s = await pgServer(ctx);
    const plain = (await tcpSessions(ctx, s)).filter((x) => !x.ssl && x.backend_type === 'client backend');
    if (plain.length === 0) return [];
    const n = plain.length;
    ctx.warn(`${n} TCP client session${n === 1 ? '' : 's'} without TLS (opened before TLS was required?): ${describeSessions(plain)}`);
    if (!a.terminate) {
      ctx.warn('they keep running unencrypted until they reconnect; -e pgtls_terminate_plaintext=true ends them so that they reconnect over TLS');
      return [];
    }
    const state = JSON.parse((await psqlQuery(ctx, s, STATE_SQL)).trim()) as { ssl: string; rules: HbaRuleRow[] };
    const rules = plainRows(state.rules);
    const letIn = [...rules.password, ...rules.open];
    if (state.ssl !== 'on' || letIn.length > 0) {
      ctx.warn(
        `not ended: their clients would reconnect without TLS (${state.ssl !== 'on' ? 'ssl is off' : `pg_hba.conf still lets remote clients in without TLS: ${letIn.join('; ')}`})`,
      );
      return [];
    }
    const excluded = new Set(await inventoryHostAddresses(ctx, a.exclude_hosts ?? []));
    const kept = plain.filter((x) => excluded.has(x.client_addr));
    if (kept.length) ctx.warn(`not ended (Pgpool-II's connections; restart it instead): ${describeSessions(kept)}`);
    // a loopback rule without TLS (trust on 127.0.0.1) would let a local client straight back in plaintext
    const local = rules.other.length > 0 ? plain.filter((x) => !excluded.has(x.client_addr) && isLoopbackAddress(x.client_addr)) : [];
    if (local.length) ctx.warn(`not ended (loopback, and ${rules.other.join('; ')} lets them back in without TLS): ${describeSessions(local)}`);
    const end = plain.filter((x) => !excluded.has(x.client_addr) && !local.includes(x));
    if (end.length === 0) return [];
    return [
      {
        summary: `end ${end.length} TCP session${end.length === 1 ? '' : 's'} without TLS (pg_terminate_backend): ${describeSessions(end)}`,
        actions: [psqlAction(s, 'pg_terminate_backend on sessions without TLS', terminateSql(end))],
      },
    ];
  },
});
