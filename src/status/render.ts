import type { Style } from '../report/style.js';
import { minTls, type HostStatus, type ServiceStatus } from './model.js';

const plain: Style = { green: (s) => s, yellow: (s) => s, red: (s) => s, cyan: (s) => s, dim: (s) => s, bold: (s) => s };

/** label, value; a list value is shown one item per line */
type Row = [string, string | string[]];

function serviceRows(s: ServiceStatus): Row[] {
  const rows: Row[] = [['TLS (handshake)', s.tls ? 'on' : `OFF${s.tlsDetail ? ` (${s.tlsDetail})` : ''}`]];
  if (s.cert) {
    rows.push(['certificate', s.cert.subject], ['SANs', s.cert.sans.join(', ') || '(none)'], ['issuer', s.cert.issuer]);
    rows.push(['expires', `${s.cert.notAfter} (${s.cert.daysLeft < 0 ? `${-s.cert.daysLeft} days ago` : `in ${s.cert.daysLeft} days`})`]);
  }
  if (s.tls || s.minTlsSetting) {
    const measured = minTls(s.tlsVersions);
    const setting = s.minTlsSetting ? `ssl_min_protocol_version = ${s.minTlsSetting}` : '';
    rows.push(['minimum TLS', [measured ?? (s.tls ? 'unknown' : '-'), measured ? `(accepts ${s.tlsVersions.join(', ')})` : '', setting ? `[${setting}]` : ''].filter(Boolean).join(' ')]);
  }
  const open = s.openRules ?? [];
  rows.push([
    'hostssl enforced',
    s.plainPasswordRules.length === 0 && open.length === 0
      ? 'yes'
      : [
          ...(s.plainPasswordRules.length ? ['NO, password rules without TLS:', ...s.plainPasswordRules.map((r) => `  ${r}`)] : []),
          ...(open.length ? ['NO, remote clients let in without TLS:', ...open.map((r) => `  ${r}`)] : []),
        ],
  ]);
  if (s.replication && s.replication.length)
    rows.push(['replication', s.replication.map((r) => `${r.application_name || '?'} ${r.client_addr ?? 'local'} ${r.state} ${r.ssl ? 'TLS' : 'PLAINTEXT'}`)]);
  if (s.plainSessions)
    rows.push(['sessions w/o TLS', s.plainSessions.length === 0 ? 'none' : s.plainSessions.map((x) => `${x.client_addr} ${x.usename ?? '?'} ${x.application_name || '-'} (pid ${x.pid})`)]);
  if (s.upstream)
    rows.push(['upstream', `sslmode=${s.upstream.sslmode}${s.upstream.host ? ` to ${s.upstream.host}` : ''}${s.upstream.status ? ` (${s.upstream.status})` : ''} [${s.upstream.source}]`]);
  if (s.md5Roles) rows.push(['roles on md5', s.md5Roles.join(', ') || 'none']);
  if (s.poolPasswd) {
    const { missing, undecryptable, file } = s.poolPasswd;
    rows.push(['pool_passwd', missing.length || undecryptable.length ? [missing.length ? `missing: ${missing.join(', ')}` : '', undecryptable.length ? `not decryptable: ${undecryptable.join(', ')}` : ''].filter(Boolean).join('; ') : `ok (${file})`]);
  }
  return rows;
}

/** The human table: one block per host, one sub-table per service on it. */
export function renderTable(hosts: HostStatus[], style: Style = plain): string {
  const out: string[] = [];
  for (const h of hosts) {
    const verdict =
      h.state === 'ok' ? style.green('OK') : h.state === 'attention' ? style.red('NEEDS ACTION') : h.state === 'unreachable' ? style.red('UNREACHABLE') : style.red('ERROR');
    out.push(`${style.bold(h.host)}  ${h.address}  ${verdict}`);
    if (h.message) out.push(`  ${h.message}`);
    for (const s of h.services) {
      out.push(`  ${style.cyan(s.service === 'postgresql' ? 'PostgreSQL' : 'Pgpool-II')} ${s.endpoint}`);
      const rows = serviceRows(s);
      const w = Math.max(...rows.map(([k]) => k.length));
      for (const [k, v] of rows) {
        const [first = '', ...more] = Array.isArray(v) ? v : [v];
        out.push(`    ${k.padEnd(w)}  ${first}`);
        for (const m of more) out.push(`    ${' '.repeat(w)}  ${m}`);
      }
      for (const n of s.notes) out.push(`    ${style.dim(`note: ${n}`)}`);
    }
    // every action finding with its stable code; a host that could not be inspected has one too
    const actions = h.findings.filter((f) => f.severity === 'action');
    for (const f of actions) out.push(`  ${style.red('!')} [${f.code}] ${f.message}`);
    for (const p of h.problems.filter((p) => !actions.some((f) => f.message === p))) out.push(`  ${style.red('!')} ${p}`);
    out.push('');
  }
  return out.join('\n');
}

/** The machine-readable form (--json). */
export function renderJson(hosts: HostStatus[], meta: { inventory: string; durationMs: number; exitCode: number; warnings: string[] }): string {
  return (
    JSON.stringify(
      {
        version: 1,
        inventory: meta.inventory,
        durationMs: meta.durationMs,
        exitCode: meta.exitCode,
        warnings: meta.warnings,
        hosts: Object.fromEntries(hosts.map(({ host, ...rest }) => [host, rest])),
      },
      null,
      2,
    ) + '\n'
  );
}
