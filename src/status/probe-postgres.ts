/**
 * Read-only look at a host's PostgreSQL: what it presents on the wire (TLS handshake, the
 * certificate, the TLS versions it accepts) and, in one psql round trip through the host's SQL login (peer, else webadmin with its password), its
 * pg_hba rules as PostgreSQL parsed them and the roles still stored as md5.
 */
import type { PlanContext } from '../core/types.js';
import { pgServer, psqlQuery, userVar } from '../facts/postgres.js';
import { unsupportedMajor } from '../facts/pg-versions.js';
import { connectTarget } from '../modules/pg-service/verify.js';
import { servedCert } from '../tls/served-cert.js';
import { certView } from './cert.js';
import { plainRows, type HbaRuleRow } from './hba.js';
import type { ServiceStatus } from './model.js';
import { acceptedTlsVersions } from './tls-versions.js';

// pg_hba_file_rules reads the file on disk (what the next reload loads); rules with an error are
// not loaded at all, so they are left out.
const SQL = `select json_build_object(
  'ssl', current_setting('ssl'),
  'min', current_setting('ssl_min_protocol_version', true),
  'rules', (select coalesce(json_agg(json_build_object('line_number', line_number, 'type', type, 'database', database,
      'user_name', user_name, 'address', address, 'netmask', netmask, 'auth_method', auth_method) order by line_number), '[]')
    from pg_hba_file_rules where error is null),
  'md5', (select coalesce(json_agg(rolname order by rolname), '[]') from pg_authid where rolcanlogin and rolpassword like 'md5%'));
`;

export async function postgresStatus(ctx: PlanContext): Promise<ServiceStatus> {
  const s = await pgServer(ctx);
  const j = JSON.parse((await psqlQuery(ctx, s, SQL)).trim()) as { ssl: string; min: string | null; rules: HbaRuleRow[]; md5: string[] };
  const t = connectTarget(ctx, s);
  const external = String(userVar(ctx, 'ansible_host') ?? ctx.host);
  const [served, versions] = await Promise.all([servedCert(ctx, t.addr, s.port, external), acceptedTlsVersions(ctx, t.addr, s.port, external)]);
  const rules = plainRows(j.rules);
  const notes = rules.other.map((r) => `${r} lets clients in without TLS (no password)`);
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
    md5Roles: j.md5,
    notes,
  };
}
