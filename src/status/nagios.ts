/**
 * `pgtls status --nagios`: a Nagios/Icinga plugin (the monitoring-plugins guidelines): one line
 * `PGTLS STATE - summary | perfdata`, and the exit code the monitoring system alerts on:
 *
 *   0 OK        every host encrypted, no certificate inside the renewal window
 *   1 WARNING   a certificate expires within pgtls_renew_before_days (default 30)
 *   2 CRITICAL  a certificate expires within --critical-days (default 7) or has expired, or any
 *               other finding that needs action (no TLS, rules or sessions without TLS, …)
 *   3 UNKNOWN   a host could not be reached or inspected, bad input, or an interrupted run
 */
import type { HostStatus } from './model.js';

export const NAGIOS = { ok: 0, warning: 1, critical: 2, unknown: 3 } as const;
const NAMES = ['OK', 'WARNING', 'CRITICAL', 'UNKNOWN'] as const;

export function nagiosVerdict(hosts: HostStatus[], opts: { criticalDays: number; interrupted?: boolean }): { code: number; line: string } {
  const certs = hosts.flatMap((h) => h.services.flatMap((s) => (s.cert ? [{ host: h.host, service: s.service, days: s.cert.daysLeft }] : [])));
  const soonest = certs.sort((a, b) => a.days - b.days)[0];
  const action = hosts.flatMap((h) => h.findings.filter((f) => f.severity === 'action').map((f) => ({ host: h.host, ...f })));
  const critical = action.filter((f) => f.code !== 'cert-expiring' && f.code !== 'inspect-failed');
  const nearExpiry = certs.filter((c) => c.days <= opts.criticalDays);
  const warning = action.filter((f) => f.code === 'cert-expiring');
  const unknown = hosts.filter((h) => h.state === 'unreachable' || h.state === 'error');
  let code: number = NAGIOS.ok;
  let summary: string;
  if (critical.length || nearExpiry.length) {
    code = NAGIOS.critical;
    const items = [...nearExpiry.map((c) => `${c.host} ${c.service} certificate ${c.days <= 0 ? 'expired' : `expires in ${c.days} days`}`), ...critical.filter((f) => f.code !== 'cert-expired').map((f) => `${f.host} ${f.code}`)];
    summary = `${items.length} problem${items.length > 1 ? 's' : ''}: ${[...new Set(items)].slice(0, 5).join(', ')}${items.length > 5 ? ', …' : ''}`;
  } else if (warning.length) {
    code = NAGIOS.warning;
    summary = `${warning.length} certificate${warning.length > 1 ? 's' : ''} to re-issue: ${warning.slice(0, 5).map((f) => f.host).join(', ')}`;
  } else if (unknown.length || opts.interrupted || hosts.length === 0) {
    code = NAGIOS.unknown;
    summary = opts.interrupted
      ? 'interrupted'
      : hosts.length === 0
        ? 'no host of the postgres or pgpool groups matched'
        : `${unknown.length} host${unknown.length > 1 ? 's' : ''} not inspected: ${unknown.slice(0, 5).map((h) => h.host).join(', ')}`;
  } else {
    summary = `${hosts.length} host${hosts.length > 1 ? 's' : ''} encrypted${soonest ? `, next certificate expiry in ${soonest.days} days (${soonest.host})` : ''}`;
  }
  // unreachable hosts are also named when a worse state wins, so nothing is hidden
  if (code !== NAGIOS.unknown && unknown.length) summary += `; not inspected: ${unknown.map((h) => h.host).join(', ')}`;
  const perf = [
    `hosts=${hosts.length}`,
    `attention=${hosts.filter((h) => h.state === 'attention').length}`,
    `unreachable=${unknown.length}`,
    ...(soonest ? [`min_cert_days=${soonest.days};;${opts.criticalDays}`] : []),
  ];
  return { code, line: `PGTLS ${NAMES[code]} - ${summary.replace(/[|\n]/g, ' ')} | ${perf.join(' ')}` };
}
