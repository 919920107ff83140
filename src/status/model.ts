/**
 * What `pgtls status` finds on a host, and the pure judgement of it (unit-tested):
 * findings with a stable code each; `action` findings make the host "needs action" (exit 1),
 * `info` findings are only shown.
 *
 * Action: a certificate inside the renewal window (or expired); anything that lets data travel
 * unencrypted or unverified: no TLS handshake, a pg_hba/pool_hba rule that lets a remote client in
 * without TLS, a plaintext replication stream or TCP client session, a standby that does not
 * verify its primary's certificate, a server that accepts a TLS version below pgtls_min_tls.
 * Info: roles still on md5 and pool_passwd gaps (install leaves md5 roles whose password it was
 * not given on purpose, and every status after an install would otherwise fail).
 */

/** The stable finding codes (README "Status"): scripts may match on them. */
export const FINDING_CODES = {
  'no-tls': 'the server does not complete a TLS handshake',
  'cert-expired': 'the served certificate has expired',
  'cert-expiring': 'the served certificate expires within pgtls_renew_before_days',
  'hba-no-tls': 'a pg_hba/pool_hba rule lets a remote client in without TLS (password rules, trust, ident …), or pool_hba is off',
  'plaintext-replication': 'a replication stream (walsender) runs without TLS',
  'plaintext-session': 'a TCP client session runs without TLS',
  'standby-unverified': "a standby does not verify its primary's certificate (sslmode not verify-full/verify-ca)",
  'min-tls-below-policy': 'the server accepts a TLS version below pgtls_min_tls',
  'inspect-failed': 'the host could not be inspected',
  'md5-roles': 'login roles whose password is still stored as md5 (info)',
  'pool-passwd-incomplete': 'pool_passwd lacks users of the inventory or has entries the key cannot decrypt (info)',
} as const;
export type FindingCode = keyof typeof FINDING_CODES;

export interface Finding {
  code: FindingCode;
  severity: 'action' | 'info';
  service?: 'postgresql' | 'pgpool';
  message: string;
}

/** What the verdict depends on besides the findings themselves. */
export interface StatusPolicy {
  renewBeforeDays: number;
  /** pgtls_min_tls: the lowest version a server may accept */
  minTls: string;
}

/** A walsender (pg_stat_replication ⨝ pg_stat_ssl) on a primary or a cascading standby. */
export interface ReplicationStream {
  pid: number;
  client_addr: string | null;
  application_name: string;
  usename: string | null;
  state: string;
  ssl: boolean;
}

/** A TCP client session without TLS (pg_stat_activity ⨝ pg_stat_ssl; Unix sockets never count). */
export interface PlainSession {
  pid: number;
  client_addr: string;
  usename: string | null;
  application_name: string;
  backend_start: string;
}

/** How a standby connects to its upstream (never its conninfo: it may hold a password). */
export interface Upstream {
  /** where the sslmode was read: the running walreceiver, else the primary_conninfo setting */
  source: 'pg_stat_wal_receiver' | 'primary_conninfo';
  /** as libpq uses it: `prefer` when the conninfo does not set it */
  sslmode: string;
  host?: string;
  status?: string;
}

export interface CertView {
  subject: string;
  sans: string[];
  issuer: string;
  /** ISO date */
  notAfter: string;
  /** whole days left (negative: expired) */
  daysLeft: number;
  fingerprint: string;
}

export interface ServiceStatus {
  service: 'postgresql' | 'pgpool';
  /** where the handshake was made (as seen from the host): addr:port */
  endpoint: string;
  /** a TLS handshake succeeded: the server really presents a certificate */
  tls: boolean;
  /** why not (when tls is false) */
  tlsDetail?: string;
  cert?: CertView;
  /** TLS versions a handshake succeeded with, lowest first ([] when none or not measured) */
  tlsVersions: string[];
  /** the configured minimum (PostgreSQL's ssl_min_protocol_version), when there is one */
  minTlsSetting?: string;
  /** password rules that accept connections without TLS, e.g. "line 92: host all all 0.0.0.0/0 md5" */
  plainPasswordRules: string[];
  /** rules that let a REMOTE client in without TLS and without a password (trust, ident, ldap …) */
  openRules?: string[];
  /** PostgreSQL: its walsenders, TLS or not */
  replication?: ReplicationStream[];
  /** PostgreSQL: TCP client sessions without TLS */
  plainSessions?: PlainSession[];
  /** PostgreSQL standby: how it connects to its upstream */
  upstream?: Upstream;
  /** PostgreSQL: login roles whose stored password is still md5 */
  md5Roles?: string[];
  /** Pgpool-II: pool_passwd users expected but absent, and entries the pgpool key cannot decrypt */
  poolPasswd?: { file: string; missing: string[]; undecryptable: string[] };
  /** anything else worth a look */
  notes: string[];
}

export interface HostStatus {
  host: string;
  /** ansible_host */
  address: string;
  state: 'ok' | 'attention' | 'unreachable' | 'error';
  message?: string;
  services: ServiceStatus[];
  /** the messages of the action findings (kept for readers of the first JSON shape) */
  problems: string[];
  findings: Finding[];
}

const TLS_ORDER = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
const VERIFYING = new Set(['verify-full', 'verify-ca']);
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const who = (s: { client_addr: string | null; usename: string | null; application_name: string }) =>
  `${s.client_addr ?? 'local'} user ${s.usename ?? '?'}${s.application_name ? ` application_name ${s.application_name}` : ''}`;

/** Every finding about one service, pure: the table-tested heart of `pgtls status`. */
export function serviceFindings(s: ServiceStatus, policy: StatusPolicy): Finding[] {
  const name = s.service === 'postgresql' ? 'PostgreSQL' : 'Pgpool-II';
  const out: Finding[] = [];
  const act = (code: FindingCode, message: string) => out.push({ code, severity: 'action', service: s.service, message });
  const info = (code: FindingCode, message: string) => out.push({ code, severity: 'info', service: s.service, message });
  if (!s.tls) act('no-tls', `${name} on ${s.endpoint} does not complete a TLS handshake${s.tlsDetail ? ` (${s.tlsDetail})` : ''}`);
  if (s.cert) {
    if (s.cert.daysLeft <= 0) act('cert-expired', `${name} certificate expired on ${s.cert.notAfter}`);
    else if (s.cert.daysLeft <= policy.renewBeforeDays)
      act('cert-expiring', `${name} certificate expires in ${s.cert.daysLeft} days (renewal window ${policy.renewBeforeDays}): run install to re-issue it`);
  }
  if (s.plainPasswordRules.length > 0) {
    const n = s.plainPasswordRules.length;
    act('hba-no-tls', `${name} accepts passwords without TLS (${n} rule${n > 1 ? 's' : ''} without hostssl${n === 1 ? `: ${s.plainPasswordRules[0]}` : ''})`);
  }
  const open = s.openRules ?? [];
  if (open.length > 0)
    act('hba-no-tls', `${name} lets remote clients in without TLS and without a password (${plural(open.length, 'rule')}: ${open.join('; ')})`);
  const lowest = s.tlsVersions[0];
  if (lowest && TLS_ORDER.indexOf(lowest) < TLS_ORDER.indexOf(policy.minTls))
    act('min-tls-below-policy', `${name} accepts ${lowest}, below pgtls_min_tls ${policy.minTls}${s.minTlsSetting ? ` (ssl_min_protocol_version = ${s.minTlsSetting})` : ''}`);
  const plainRepl = (s.replication ?? []).filter((r) => !r.ssl);
  if (plainRepl.length > 0)
    act('plaintext-replication', `${plural(plainRepl.length, 'replication stream')} without TLS: ${plainRepl.map((r) => `${who(r)} (pid ${r.pid}, ${r.state})`).join('; ')}`);
  const sessions = s.plainSessions ?? [];
  if (sessions.length > 0) {
    // one line per (address, user, application): a pool of 200 connections is one entry
    const groups = new Map<string, number>();
    for (const x of sessions) groups.set(who(x), (groups.get(who(x)) ?? 0) + 1);
    act('plaintext-session', `${plural(sessions.length, 'TCP client session')} without TLS: ${[...groups].map(([k, n]) => (n > 1 ? `${n}× ${k}` : k)).join('; ')} (pgtls_terminate_plaintext=true ends them once TLS is required)`);
  }
  if (s.upstream && !VERIFYING.has(s.upstream.sslmode))
    act('standby-unverified', `this standby connects to its primary${s.upstream.host ? ` ${s.upstream.host}` : ''} with sslmode=${s.upstream.sslmode} (from ${s.upstream.source}): it does not verify the primary's certificate`);
  if (s.md5Roles && s.md5Roles.length > 0) info('md5-roles', `login roles still on md5: ${s.md5Roles.join(', ')}`);
  if (s.poolPasswd && (s.poolPasswd.missing.length || s.poolPasswd.undecryptable.length))
    info('pool-passwd-incomplete', `${s.poolPasswd.file}: ${[s.poolPasswd.missing.length ? `missing ${s.poolPasswd.missing.join(', ')}` : '', s.poolPasswd.undecryptable.length ? `not decryptable ${s.poolPasswd.undecryptable.join(', ')}` : ''].filter(Boolean).join('; ')}`);
  return out;
}

const policyOf = (p: StatusPolicy | number): StatusPolicy => (typeof p === 'number' ? { renewBeforeDays: p, minTls: 'TLSv1.2' } : p);

/** Problems of one service (the messages of its action findings): each one makes the host need action. */
export function serviceProblems(s: ServiceStatus, policy: StatusPolicy | number): string[] {
  return serviceFindings(s, policyOf(policy)).filter((f) => f.severity === 'action').map((f) => f.message);
}

/** The host's verdict from its services (reachable hosts only). */
export function assessHost(h: Omit<HostStatus, 'state' | 'problems' | 'findings'>, policy: StatusPolicy | number): HostStatus {
  const findings = h.services.flatMap((s) => serviceFindings(s, policyOf(policy)));
  const problems = findings.filter((f) => f.severity === 'action').map((f) => f.message);
  return { ...h, findings, problems, state: problems.length ? 'attention' : 'ok' };
}

/** 1 when a reachable host needs action or could not be inspected; else 3 when one is unreachable; else 0. */
export function statusExitCode(hosts: HostStatus[], interrupted = false): number {
  if (interrupted) return 4;
  if (hosts.some((h) => h.state === 'attention' || h.state === 'error')) return 1;
  if (hosts.some((h) => h.state === 'unreachable')) return 3;
  return 0;
}

/** The lowest TLS version of a list such as ['TLSv1.2', 'TLSv1.3'] (they are probed lowest first). */
export function minTls(versions: string[]): string | null {
  return versions[0] ?? null;
}
