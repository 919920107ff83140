import type { RunReport } from '../core/runner.js';

/** Ansible's recap line: `host : ok=N changed=N unreachable=N failed=N skipped=N`. */
export function recapLines(report: RunReport): string[] {
  const names = Object.keys(report.hosts);
  const width = Math.max(0, ...names.map((n) => n.length));
  return names.map((name) => {
    const r = report.hosts[name]!.recap;
    return `${name.padEnd(width)} : ok=${r.ok} changed=${r.changed} unreachable=${r.unreachable} failed=${r.failed} skipped=${r.skipped}`;
  });
}

/** Exit codes (README): 0 all ok, 1 a host failed, 2 bad input (or a refused --limit), 3 a host unreachable (none failed), 4 interrupted. */
export function exitCodeOf(report: RunReport): number {
  const hosts = Object.values(report.hosts);
  if (report.interrupted) return 4;
  if (report.refused?.length) return 2;
  if (hosts.some((h) => h.status === 'failed')) return 1;
  if (hosts.some((h) => h.status === 'unreachable')) return 3;
  return 0;
}
