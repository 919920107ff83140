/**
 * Read-only look at a host's PostgreSQL: what it presents on the wire (TLS handshake, the
 * certificate, the TLS versions it accepts) and, in one psql round trip through the host's SQL
 * login (peer, else webadmin with its password), its pg_hba rules as PostgreSQL parsed them, the
 * roles still stored as md5, its walsenders and TCP sessions with or without TLS, and (on a
 * standby) the sslmode it connects to its upstream with.
 */
import type { PlanContext } from '../lib/plan-types.js';
import { pgServer, psqlQuery, userVar } from '../facts/postgres.js';
import { unsupportedMajor } from '../facts/pg-versions.js';
import { connectTarget } from '../postgres/verify.js';
import { servedCert } from '../tls/served-cert.js';
import { certView } from './cert.js';
import { conninfoParams, effectiveSslmode } from './conninfo.js';
import { plainRows, type HbaRuleRow } from './hba.js';
import type { PlainSession, ReplicationStream, ServiceStatus, Upstream } from './model.js';
import { acceptedTlsVersions } from './tls-versions.js';

// pg_hba_file_rules reads the file on disk (what the next reload loads); rules with an error are
// not loaded at all, so they are left out.
const SQL = `select json_build_object(
  'ssl', current_setting('ssl'),
  'min', current_setting('ssl_min_protocol_version', true),
  'rules', (select coalesce(json_agg(json_build_object('line_number', line_number, 'type', type, 'database', database,
      'user_name', user_name, 'address', address, 'netmask', netmask, 'auth_method', auth_method) order by line_number), '[]')
    from pg_hba_file_rules where error is null),
  'md5', (select coalesce(json_agg(rolname order by rolname), '[]') from pg_authid where rolcanlogin and rolpassword like 'md5%'),
  'replication', (select coalesce(json_agg(json_build_object('pid', r.pid, 'client_addr', host(r.client_addr), 'application_name', r.application_name,
      'usename', r.usename, 'state', r.state, 'ssl', coalesce(l.ssl, false)) order by r.pid), '[]')
    from pg_stat_replication r left join pg_stat_ssl l on l.pid = r.pid),
  'sessions', (select coalesce(json_agg(json_build_object('pid', a.pid, 'client_addr', host(a.client_addr), 'usename', a.usename,
      'application_name', a.application_name, 'backend_start', a.backend_start) order by a.pid), '[]')
    from pg_stat_activity a join pg_stat_ssl l on l.pid = a.pid
    where a.backend_type = 'client backend' and a.client_addr is not null and not l.ssl),
  'in_recovery', pg_is_in_recovery(),
  'receiver', (select json_build_object('status', status, 'conninfo', conninfo, 'sender_host', sender_host) from pg_stat_wal_receiver limit 1),
  'primary_conninfo', current_setting('primary_conninfo', true));
`;

interface Row {
  ssl: string;
  min: string | null;
  rules: HbaRuleRow[];
  md5: string[];
  replication: ReplicationStream[];
  sessions: PlainSession[];
  in_recovery: boolean;
  receiver: { status: string; conninfo: string | null; sender_host: string | null } | null;
  primary_conninfo: string | null;
}

/**
 * How a standby reaches its upstream: the running walreceiver's conninfo (what libpq really
 * used, defaults included), else the primary_conninfo setting. Null on a primary, or on a
 * standby without primary_conninfo (archive recovery: no connection to judge).
 */
export function upstreamOf(j: Pick<Row, 'in_recovery' | 'receiver' | 'primary_conninfo'>): Upstream | null {
  if (!j.in_recovery) return null;
  const live = j.receiver?.conninfo;
  const conninfo = live || j.primary_conninfo || '';
  if (!conninfo) return null;
  const params = conninfoParams(conninfo);
  const host = j.receiver?.sender_host || params.get('host') || params.get('hostaddr');
  return {
    source: live ? 'pg_stat_wal_receiver' : 'primary_conninfo',
    sslmode: effectiveSslmode(conninfo),
    ...(host ? { host } : {}),
    ...(j.receiver?.status ? { status: j.receiver.status } : {}),
  };
}

export async function postgresStatus(ctx: PlanContext): Promise<ServiceStatus> {
  const s = await pgServer(ctx);
  const j = JSON.parse((await psqlQuery(ctx, s, SQL)).trim()) as Row;
  const t = connectTarget(ctx, s);
  const external = String(userVar(ctx, 'ansible_host') ?? ctx.host);
  const [served, versions] = await Promise.all([servedCert(ctx, t.addr, s.port, external), acceptedTlsVersions(ctx, t.addr, s.port, external)]);
  const rules = plainRows(j.rules);
  const notes = rules.other.map((r) => `${r} lets loopback clients in without TLS (no password; not in transit)`);
  const upstream = upstreamOf(j);
  if (j.ssl === 'on' && !served.pem) notes.push('ssl = on, but the server does not present a certificate (a reload failed? see its log)');
  if (j.ssl !== 'on' && served.pem) notes.push('ssl is off in the files, but the running server still serves TLS (reload pending)');
  const old = versions.filter((v) => v === 'TLSv1' || v === 'TLSv1.1');
  if (old.length) notes.push(`accepts deprecated ${old.join(', ')}`);
  const major = unsupportedMajor(s.version);
  if (major) notes.push(major);
  return {
    service: 'postgresql',
    endpoint: `${t.addr}:${s.port}`,
    tls: served.pem !== null,
    ...(served.pem ? { cert: certView(served.pem) } : { tlsDetail: served.detail || 'the server refuses TLS' }),
    tlsVersions: served.pem ? versions : [],
    ...(j.min ? { minTlsSetting: j.min } : {}),
    plainPasswordRules: rules.password,
    openRules: rules.open,
    md5Roles: j.md5,
    replication: j.replication,
    plainSessions: j.sessions,
    ...(upstream ? { upstream } : {}),
    notes,
  };
}
