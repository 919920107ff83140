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
  rows.push(['hostssl enforced', s.plainPasswordRules.length === 0 ? 'yes' : ['NO, password rules without TLS:', ...s.plainPasswordRules.map((r) => `  ${r}`)]]);
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
    for (const p of h.problems) out.push(`  ${style.red('!')} ${p}`);
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
