/**
 * `pgtls status --format prometheus` and `--nagios`, from the status model: the textfile metrics
 * parsed by a strict reader of the Prometheus text format (0.0.4), the Nagios verdicts table-driven.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assessHost, type HostStatus, type ServiceStatus } from '../../src/status/model.js';
import { nagiosVerdict } from '../../src/status/nagios.js';
import { renderPrometheus } from '../../src/status/prometheus.js';

const NOW = new Date('2026-12-01T00:00:00Z');
const DAY = 86400;
const iso = (days: number) => new Date(NOW.getTime() + days * DAY * 1000).toISOString();

function service(over: Partial<ServiceStatus> = {}): ServiceStatus {
  return {
    service: 'postgresql',
    endpoint: '10.0.0.1:5432',
    tls: true,
    cert: { subject: 'CN=db1', sans: ['db1'], issuer: 'CN=ca', notAfter: iso(300), daysLeft: 300, fingerprint: 'ab' },
    tlsVersions: ['TLSv1.2', 'TLSv1.3'],
    plainPasswordRules: [],
    openRules: [],
    replication: [],
    plainSessions: [],
    notes: [],
    ...over,
  };
}
const host = (name: string, services: ServiceStatus[]): HostStatus => assessHost({ host: name, address: `addr-${name}`, services }, 30);
const withCert = (days: number) => service({ cert: { subject: 'CN=x', sans: [], issuer: 'CN=ca', notAfter: iso(days), daysLeft: days, fingerprint: 'ab' } });
const unreachable = (name: string): HostStatus => ({ host: name, address: name, state: 'unreachable', message: 'timed out', services: [], problems: [], findings: [] });

/** A strict reader of the text exposition format: every line a comment, a HELP/TYPE, or a sample. */
function parseExposition(text: string): Map<string, { labels: Record<string, string>; value: number }[]> {
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  const out = new Map<string, { labels: Record<string, string>; value: number }[]>();
  const typed = new Set<string>();
  for (const line of text.slice(0, -1).split('\n')) {
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') {
        assert.ok(['gauge', 'counter', 'untyped', 'summary', 'histogram'].includes(meta[3]!), line);
        assert.not.ok(typed.has(meta[2]!), `TYPE twice for ${meta[2]}`);
        typed.add(meta[2]!);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?(?:\d+(?:\.\d+)?(?:e[+-]?\d+)?|\+Inf|-Inf|NaN))$/.exec(line);
    assert.ok(m, `not a valid sample line: ${line}`);
    assert.ok(typed.has(m![1]!), `sample before its TYPE: ${line}`);
    const labels: Record<string, string> = {};
    if (m![2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/gy;
      let pos = 0;
      for (let lm = re.exec(m![2]); lm; lm = re.exec(m![2])) {
        labels[lm[1]!] = lm[2]!.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
        pos = re.lastIndex;
      }
      assert.is(pos, m![2].length, `bad labels: ${m![2]}`);
    }
    const list = out.get(m![1]!) ?? [];
    list.push({ labels, value: Number(m![3]) });
    out.set(m![1]!, list);
  }
  return out;
}

test('prometheus: per host and endpoint: expiry seconds, TLS served, plaintext sessions, rules without TLS', () => {
  const hosts = [
    host('db1', [service()]),
    host('db2', [
      service({ endpoint: '10.0.0.2:5432', tls: false, cert: undefined, plainPasswordRules: ['line 9: host all all 0.0.0.0/0 md5'], openRules: ['line 10: host all all 0.0.0.0/0 trust'], plainSessions: [{ pid: 1, client_addr: '10.0.0.9', usename: 'app', application_name: 'x', backend_start: '' }] }),
      service({ service: 'pgpool', endpoint: '10.0.0.2:9999', cert: { subject: 'CN="odd"\\name', sans: [], issuer: 'CN=ca', notAfter: iso(-2), daysLeft: -2, fingerprint: 'cd' }, replication: undefined, plainSessions: undefined }),
    ]),
    unreachable('db3'),
  ];
  const m = parseExposition(renderPrometheus(hosts, { exitCode: 1, durationMs: 1500, now: NOW }));
  const one = (name: string, labels: Record<string, string>) => {
    const found = (m.get(name) ?? []).filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    assert.is(found.length, 1, `${name} ${JSON.stringify(labels)}`);
    return found[0]!.value;
  };
  assert.is(one('pgtls_cert_expiry_seconds', { host: 'db1', service: 'postgresql', port: '5432' }), 300 * DAY);
  assert.is(one('pgtls_cert_expiry_seconds', { host: 'db2', service: 'pgpool', port: '9999' }), -2 * DAY);
  assert.is(one('pgtls_cert_expiry_timestamp_seconds', { host: 'db1' }), NOW.getTime() / 1000 + 300 * DAY);
  assert.is(one('pgtls_tls_served', { host: 'db1' }), 1);
  assert.is(one('pgtls_tls_served', { host: 'db2', service: 'postgresql' }), 0);
  assert.is(one('pgtls_plaintext_sessions', { host: 'db2', service: 'postgresql' }), 1);
  assert.is(one('pgtls_rules_without_tls', { host: 'db2', service: 'postgresql' }), 2);
  assert.is(one('pgtls_host_up', { host: 'db3' }), 0);
  assert.is(one('pgtls_host_up', { host: 'db2' }), 1);
  assert.is(one('pgtls_findings', { host: 'db2', code: 'no-tls', severity: 'action' }), 1);
  assert.is(one('pgtls_status_exit_code', {}), 1);
  assert.is(one('pgtls_status_duration_seconds', {}), 1.5);
  assert.not.ok(m.has('pgtls_cert_expiry_seconds') && m.get('pgtls_cert_expiry_seconds')!.some((s) => s.labels.host === 'db3'));
});

const nagios: { name: string; hosts: HostStatus[]; code: number; line: RegExp }[] = [
  { name: 'all encrypted', hosts: [host('db1', [service()])], code: 0, line: /^PGTLS OK - 1 host encrypted, next certificate expiry in 300 days \(db1\) \| hosts=1 attention=0 unreachable=0 min_cert_days=300;;7$/ },
  { name: 'inside the renewal window', hosts: [host('db1', [withCert(20)]), host('db2', [service()])], code: 1, line: /^PGTLS WARNING - 1 certificate to re-issue: db1 \|/ },
  { name: 'within the critical days', hosts: [host('db1', [withCert(5)])], code: 2, line: /^PGTLS CRITICAL - 1 problem: db1 postgresql certificate expires in 5 days \|/ },
  { name: 'expired', hosts: [host('db1', [withCert(-1)])], code: 2, line: /certificate expired/ },
  { name: 'no TLS', hosts: [host('db1', [service({ tls: false, cert: undefined })])], code: 2, line: /^PGTLS CRITICAL - 1 problem: db1 no-tls/ },
  { name: 'unreachable only', hosts: [host('db1', [service()]), unreachable('db2')], code: 3, line: /^PGTLS UNKNOWN - 1 host not inspected: db2 \|.*unreachable=1/ },
  { name: 'critical wins over unreachable, which is still named', hosts: [host('db1', [service({ plainPasswordRules: ['line 1: host all all 0/0 md5'] })]), unreachable('db2')], code: 2, line: /CRITICAL - 1 problem: db1 hba-no-tls; not inspected: db2/ },
  { name: 'no host', hosts: [], code: 3, line: /UNKNOWN - no host/ },
];
for (const c of nagios) {
  test(`nagios: ${c.name}`, () => {
    const v = nagiosVerdict(c.hosts, { criticalDays: 7 });
    assert.is(v.code, c.code, v.line);
    assert.match(v.line, c.line);
    assert.not.match(v.line, /\n/);
  });
}

test('nagios: an interrupted inspection is UNKNOWN', () => {
  const v = nagiosVerdict([host('db1', [service()])], { criticalDays: 7, interrupted: true });
  assert.is(v.code, 3);
  assert.match(v.line, /^PGTLS UNKNOWN - interrupted/);
});

test.run();
