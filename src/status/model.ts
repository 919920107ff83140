/**
 * What `pgtls status` finds on a host, and the pure judgement of it (unit-tested):
 * which findings make the host "needs action" (exit code 1) and which are only notes.
 *
 * Exit 1 is kept for what the issue asks: a certificate inside the renewal window (or
 * expired), or a host that is not fully encrypted (no TLS handshake, or a password rule
 * that accepts a connection without TLS). Roles still on md5 and pool_passwd gaps are
 * shown but do not change the exit code: install leaves md5 roles whose password it was
 * not given on purpose, and would otherwise make every status after an install fail.
 */

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
  problems: string[];
}

/** Problems of one service: each one makes the host need action. */
export function serviceProblems(s: ServiceStatus, renewBeforeDays: number): string[] {
  const name = s.service === 'postgresql' ? 'PostgreSQL' : 'Pgpool-II';
  const out: string[] = [];
  if (!s.tls) out.push(`${name} on ${s.endpoint} does not complete a TLS handshake${s.tlsDetail ? ` (${s.tlsDetail})` : ''}`);
  if (s.cert) {
    if (s.cert.daysLeft <= 0) out.push(`${name} certificate expired on ${s.cert.notAfter}`);
    else if (s.cert.daysLeft <= renewBeforeDays)
      out.push(`${name} certificate expires in ${s.cert.daysLeft} days (renewal window ${renewBeforeDays}): run install to re-issue it`);
  }
  if (s.plainPasswordRules.length > 0) {
    const n = s.plainPasswordRules.length;
    out.push(`${name} accepts passwords without TLS (${n} rule${n > 1 ? 's' : ''} without hostssl${n === 1 ? `: ${s.plainPasswordRules[0]}` : ''})`);
  }
  return out;
}

/** The host's verdict from its services (reachable hosts only). */
export function assessHost(h: Omit<HostStatus, 'state' | 'problems'>, renewBeforeDays: number): HostStatus {
  const problems = h.services.flatMap((s) => serviceProblems(s, renewBeforeDays));
  return { ...h, problems, state: problems.length ? 'attention' : 'ok' };
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
