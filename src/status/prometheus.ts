/**
 * `pgtls status --format prometheus`: node_exporter textfile-collector metrics, read from the
 * status model (model.ts) only. One series per host and service endpoint, so alerts need no glue:
 *
 *   pgtls_cert_expiry_seconds < 14*86400          a certificate to re-issue
 *   pgtls_tls_served == 0                         a server without TLS
 *   pgtls_plaintext_sessions > 0                  clients talking in clear text
 *   pgtls_rules_without_tls > 0                   pg_hba/pool_hba rules that allow it
 *
 * https://prometheus.io/docs/instrumenting/exposition_formats/ (text format 0.0.4)
 */
import type { HostStatus, ServiceStatus } from './model.js';

interface Metric {
  name: string;
  help: string;
  type: 'gauge';
  samples: { labels: Record<string, string>; value: number }[];
}

export function renderPrometheus(hosts: HostStatus[], meta: { exitCode: number; durationMs: number; now?: Date }): string {
  const now = (meta.now ?? new Date()).getTime();
  const metric = (name: string, help: string): Metric => ({ name, help, type: 'gauge', samples: [] });
  const m = {
    up: metric('pgtls_host_up', '1 when the host was reached and inspected, 0 when unreachable or the inspection failed'),
    tls: metric('pgtls_tls_served', '1 when the server completes a TLS handshake on this endpoint'),
    expiry: metric('pgtls_cert_expiry_seconds', 'seconds until the served certificate expires (negative: expired)'),
    expiryTs: metric('pgtls_cert_expiry_timestamp_seconds', 'the served certificate notAfter, as a Unix time'),
    plain: metric('pgtls_plaintext_sessions', 'TCP client sessions without TLS (PostgreSQL)'),
    plainRepl: metric('pgtls_plaintext_replication_streams', 'replication streams (walsenders) without TLS'),
    rules: metric('pgtls_rules_without_tls', 'pg_hba/pool_hba rules that let a remote client in without TLS'),
    findings: metric('pgtls_findings', 'findings by code and severity (README "Status")'),
    exit: metric('pgtls_status_exit_code', 'exit code of the pgtls status run that wrote this file'),
    duration: metric('pgtls_status_duration_seconds', 'how long the inspection took'),
    last: metric('pgtls_status_last_run_timestamp_seconds', 'when this file was written, as a Unix time'),
  };
  for (const h of hosts) {
    m.up.samples.push({ labels: { host: h.host, address: h.address }, value: h.state === 'ok' || h.state === 'attention' ? 1 : 0 });
    for (const s of h.services) {
      const labels = serviceLabels(h, s);
      m.tls.samples.push({ labels, value: s.tls ? 1 : 0 });
      if (s.cert) {
        const notAfter = Date.parse(s.cert.notAfter);
        if (Number.isFinite(notAfter)) {
          m.expiry.samples.push({ labels, value: Math.round((notAfter - now) / 1000) });
          m.expiryTs.samples.push({ labels, value: Math.round(notAfter / 1000) });
        }
      }
      if (s.plainSessions) m.plain.samples.push({ labels, value: s.plainSessions.length });
      if (s.replication) m.plainRepl.samples.push({ labels, value: s.replication.filter((r) => !r.ssl).length });
      m.rules.samples.push({ labels, value: s.plainPasswordRules.length + (s.openRules?.length ?? 0) });
    }
    const counts = new Map<string, { code: string; severity: string; n: number }>();
    for (const f of h.findings) {
      const k = `${f.code}\u0000${f.severity}`;
      const c = counts.get(k) ?? { code: f.code, severity: f.severity, n: 0 };
      c.n++;
      counts.set(k, c);
    }
    for (const c of counts.values()) m.findings.samples.push({ labels: { host: h.host, code: c.code, severity: c.severity }, value: c.n });
  }
  m.exit.samples.push({ labels: {}, value: meta.exitCode });
  m.duration.samples.push({ labels: {}, value: meta.durationMs / 1000 });
  m.last.samples.push({ labels: {}, value: Math.round(now / 1000) });
  return Object.values(m).map(renderMetric).join('');
}

function serviceLabels(h: HostStatus, s: ServiceStatus): Record<string, string> {
  const port = /:(\d+)$/.exec(s.endpoint)?.[1] ?? '';
  return { host: h.host, service: s.service, endpoint: s.endpoint, port };
}

function renderMetric(m: Metric): string {
  const lines = [`# HELP ${m.name} ${m.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${m.name} ${m.type}`];
  for (const s of m.samples) {
    const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${labelValue(v)}"`);
    lines.push(`${m.name}${labels.length ? `{${labels.join(',')}}` : ''} ${formatValue(s.value)}`);
  }
  return lines.join('\n') + '\n';
}

/** Label values escape backslash, double quote and newline (the text format's rules). */
function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  return String(v);
}
