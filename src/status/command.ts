/**
 * `pgtls status -i INVENTORY [--json] [--limit X] [-e k=v] …`: how encrypted the fleet is, read only.
 *
 * The inspection is a built-in playbook (modules.ts) run by the ordinary runner in check mode:
 * the same validation before any connection (bad input: exit 2), the same SSH setup and host
 * key checks, the same facts. Nothing here opens a connection of its own.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { writeFileAtomic } from '../lib/private-file.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInventory } from '../config/inventory.js';
import { abortOnSignals, applyVerbosity, FLEET_OPTIONS, fleetSettings, parseCommandLine, vaultKeyring } from '../cli-options.js';
import type { VaultKeyring } from '../config/vault.js';
import { ConfigError, formatIssue, type ConfigIssue } from '../lib/errors.js';
import { silentReporter } from '../core/reporter.js';
import { runPlaybook, type RunReport } from '../core/runner.js';
import type { ModuleDef } from '../lib/plan-types.js';
import { safeJson, safeText } from '../report/sanitize.js';
import { makeStyle } from '../report/style.js';
import { assessHost, statusExitCode, type HostStatus } from './model.js';
import { STATUS_PLAYBOOK, statusModules, type Collector } from './modules.js';
import { NAGIOS, nagiosVerdict } from './nagios.js';
import { renderPrometheus } from './prometheus.js';
import { renderJson, renderTable } from './render.js';

export const STATUS_USAGE = `  pgtls status -i INVENTORY [options]

options:
  -i, --inventory FILE     Ansible-style YAML inventory (required)
  -e, --extra-vars VARS    key=value, @file.yaml or a JSON object (e.g. pgtls_renew_before_days=60)
  -l, --limit PATTERN      only these hosts/groups (Ansible pattern)
  -f, --forks N            hosts inspected at once (default 50)
      --json               machine-readable output on stdout instead of the table (= --format json)
      --format FORMAT      table (default), json, or prometheus (node_exporter textfile metrics)
      --output FILE        write the output to FILE atomically (temp file + rename), e.g.
                           /var/lib/prometheus/node-exporter/pgtls.prom for the textfile collector
      --nagios             Nagios/Icinga plugin mode: one line, exit 0 OK / 1 WARNING (a certificate in the
                           renewal window) / 2 CRITICAL (expires within --critical-days, or any other finding
                           that needs action) / 3 UNKNOWN (a host not inspected, bad input, interrupted)
      --critical-days N    certificates expiring within N days are CRITICAL under --nagios (default 7)
      --known-hosts FILE   OpenSSH known_hosts to verify host keys (default ~/.ssh/known_hosts)
      --insecure-skip-host-key-check   do not verify host keys (explicit opt-out)

exit codes: 0 all encrypted, 1 a finding needs action (each has a code, e.g. plaintext-session,
plaintext-replication, standby-unverified, hba-no-tls, min-tls-below-policy, cert-expiring: see
README "Status"), 2 bad input (nothing contacted), 3 a host unreachable (none needing action),
4 interrupted. -e pgtls_min_tls=TLSv1.3 judges the servers' lowest TLS version by that policy.`;

/** `registry`: the playbook modules (the CLI's), to which status adds its own read-only ones. */
export async function statusCommand(argv: string[], registry: ReadonlyMap<string, ModuleDef>): Promise<number> {
  if (argv.includes('--nagios')) {
    // A plugin must answer in its own terms even for bad input: UNKNOWN, one line.
    try {
      return await inspect(argv, registry);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      process.stdout.write(`PGTLS UNKNOWN - bad input: ${safeText(e.issues.map(formatIssue).join('; '), { oneLine: true })}\n`);
      return NAGIOS.unknown;
    }
  }
  return inspect(argv, registry);
}

async function inspect(argv: string[], registry: ReadonlyMap<string, ModuleDef>): Promise<number> {
  const { values: v, positionals } = parseCommandLine(argv, {
    ...FLEET_OPTIONS,
    json: { type: 'boolean' },
    format: { type: 'string' },
    output: { type: 'string' },
    nagios: { type: 'boolean' },
    'critical-days': { type: 'string' },
  });
  if (v.help) {
    process.stdout.write(`usage:\n${STATUS_USAGE}\n`);
    return 0;
  }
  const problems: ConfigIssue[] = [];
  const format = v.json ? 'json' : (v.format ?? 'table');
  if (!['table', 'json', 'prometheus'].includes(format)) problems.push({ file: 'command line', field: '--format', message: `must be table, json or prometheus (got '${format}')` });
  if (v.json && v.format && v.format !== 'json') problems.push({ file: 'command line', message: '--json and --format exclude each other' });
  const criticalDays = v['critical-days'] === undefined ? 7 : Number(v['critical-days']);
  if (!Number.isInteger(criticalDays) || criticalDays < 0) problems.push({ file: 'command line', field: '--critical-days', message: 'must be a whole number of days' });
  if (positionals.length) problems.push({ file: 'command line', message: `status takes no positional arguments (got ${positionals.join(' ')})` });
  const { forks, knownHosts } = fleetSettings(v, problems);
  if (problems.length) throw new ConfigError(problems);
  const vault = vaultKeyring(v);
  applyVerbosity(v);

  const abort = new AbortController();
  const stopListening = abortOnSignals(abort);
  const dir = mkdtempSync(join(tmpdir(), 'pgtls-status-'));
  const found: Collector = new Map();
  try {
    const playbook = join(dir, 'status.yaml');
    writeFileSync(playbook, STATUS_PLAYBOOK);
    const modules = new Map<string, ModuleDef>(registry);
    for (const m of statusModules(found)) modules.set(m.name, m);
    const report = await runPlaybook({
      playbook,
      inventory: v.inventory!,
      extraVars: v['extra-vars'] ?? [],
      check: true, // belt and braces: the executor cannot write in check mode
      factsPolicy: 'each-host', // read only: every host is shown on its own
      optionalPlayHosts: true, // a fleet without Pgpool-II (even without the group) is normal here
      forks,
      limit: v.limit,
      tags: [],
      skipTags: [],
      knownHosts,
      reporter: silentReporter,
      signal: abort.signal,
      modules,
      vault,
    });
    const hosts = hostStatuses(report, found, vault);
    const code = statusExitCode(hosts, report.interrupted);
    // A missing pgpool (or postgres) group is normal for status: its play simply has no hosts.
    const warnings = [
      ...report.warnings.filter((w) => !/matches no host or group/.test(w)),
      ...Object.entries(report.hosts).flatMap(([h, r]) => r.tasks.flatMap((t) => t.warnings).map((w) => `${h}: ${w}`)),
    ];
    // Role names, CNs and messages come from hosts: the report layer's sanitizer has the last word.
    const emit = (text: string) => (v.output ? writeAtomically(v.output, text) : process.stdout.write(text));
    if (v.nagios) {
      const verdict = nagiosVerdict(sanitizedHosts(hosts), { criticalDays, interrupted: report.interrupted });
      process.stdout.write(safeText(verdict.line, { oneLine: true }) + '\n');
      if (format !== 'table') emit(format === 'json' ? safeText(renderJson(hosts, { inventory: report.inventory, durationMs: report.durationMs, exitCode: code, warnings })) : renderPrometheus(sanitizedHosts(hosts), { exitCode: code, durationMs: report.durationMs }));
      return verdict.code;
    }
    if (format === 'json') emit(safeText(renderJson(hosts, { inventory: report.inventory, durationMs: report.durationMs, exitCode: code, warnings })));
    else if (format === 'prometheus') emit(renderPrometheus(sanitizedHosts(hosts), { exitCode: code, durationMs: report.durationMs }));
    else {
      const style = makeStyle(process.stdout);
      process.stdout.write(renderTable(sanitizedHosts(hosts), style));
      if (warnings.length) process.stdout.write(`${style.yellow('WARNINGS')}\n${warnings.map((w) => `  ${safeText(w, { oneLine: true })}`).join('\n')}\n`);
      if (hosts.length === 0) process.stdout.write('no host of the postgres or pgpool groups matched\n');
    }
    return code;
  } finally {
    rmSync(dir, { recursive: true, force: true });
    stopListening();
  }
}

/** The textfile collector must never read a half-written file: temp file in the same directory, then rename. */
function writeAtomically(file: string, text: string): void {
  try {
    writeFileAtomic(file, text, 0o644);
  } catch (e) {
    throw new ConfigError([{ file: file, field: '--output', message: `cannot write: ${(e as Error).message}` }]);
  }
}

/** One HostStatus per host the run touched, in inventory order. */
function hostStatuses(report: RunReport, found: Collector, vault: VaultKeyring): HostStatus[] {
  const inv = loadInventory(report.inventory, { vault });
  const order = inv.groups.get('all') ?? [];
  const names = Object.keys(report.hosts).sort((a, b) => order.indexOf(a) - order.indexOf(b));
  return names.map((host) => {
    const r = report.hosts[host]!;
    const raw = inv.hosts.get(host)?.vars.ansible_host;
    const address = typeof raw === 'string' && !raw.includes('{{') ? raw : host;
    const got = found.get(host);
    if (r.status === 'unreachable') return { host, address, state: 'unreachable', message: r.message, services: got?.services ?? [], problems: [], findings: [] };
    if (r.status !== 'ok') {
      const message = `could not be inspected: ${r.message ?? r.status}`;
      return { host, address, state: 'error', message: r.message ?? r.status, services: got?.services ?? [], problems: [message], findings: [{ code: 'inspect-failed', severity: 'action', message }] };
    }
    return assessHost({ host, address, services: got?.services ?? [] }, got?.policy ?? { renewBeforeDays: 30, minTls: 'TLSv1.2' });
  });
}

/** The table colours its cells itself: the cells' text is sanitized first (role names, CNs, messages from hosts). */
function sanitizedHosts(hosts: HostStatus[]): HostStatus[] {
  return hosts.map((h) => safeJson(h) as HostStatus);
}
