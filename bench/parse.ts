// What the tools leave behind, read back: pgtls's command log and --json report, Ansible's recap.
import { existsSync, readFileSync } from 'node:fs';
import type { RunRecord } from './report.js';

/** Remote commands per host from a PGTLS_COMMAND_LOG file (one "host<TAB>command" line each). */
export function commandCounts(file: string): Record<string, number> {
  return existsSync(file) ? countCommands(readFileSync(file, 'utf8')) : {};
}

export function countCommands(log: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of log.split('\n')) {
    const host = line.split('\t')[0];
    if (host) counts[host] = (counts[host] ?? 0) + 1;
  }
  return counts;
}

export interface PgtlsReport {
  exitCode: number;
  hosts: Record<string, { recap: { changed: number; failed: number; unreachable: number }; tasks: { name: string; durationMs: number; changed: boolean }[] }>;
}

/** pgtls's --json report: changed count, failures, and per-task durations (mean/max over hosts). */
export function readPgtlsReport(file: string): Pick<RunRecord, 'changed' | 'failedHosts' | 'topTasks'> {
  return summarisePgtlsReport(JSON.parse(readFileSync(file, 'utf8')) as PgtlsReport);
}

export function summarisePgtlsReport(r: PgtlsReport): Pick<RunRecord, 'changed' | 'failedHosts' | 'topTasks'> {
  const byTask = new Map<string, number[]>();
  let changed = 0;
  let failedHosts = 0;
  for (const h of Object.values(r.hosts)) {
    changed += h.recap.changed;
    if (h.recap.failed || h.recap.unreachable) failedHosts++;
    for (const t of h.tasks) byTask.set(t.name, [...(byTask.get(t.name) ?? []), t.durationMs]);
  }
  const topTasks = [...byTask.entries()]
    .map(([name, ds]) => ({ name, hosts: ds.length, meanMs: Math.round(ds.reduce((a, b) => a + b, 0) / ds.length), maxMs: Math.max(...ds) }))
    .sort((a, b) => b.meanMs - a.meanMs)
    .slice(0, 8);
  return { changed, failedHosts, topTasks };
}

/** Ansible's PLAY RECAP: total changed, and hosts with failed/unreachable > 0. */
export function readAnsibleRecap(log: string): Pick<RunRecord, 'changed' | 'failedHosts'> {
  return parseAnsibleRecap(readFileSync(log, 'utf8'));
}

export function parseAnsibleRecap(text: string): Pick<RunRecord, 'changed' | 'failedHosts'> {
  const recap = text.slice(text.lastIndexOf('PLAY RECAP'));
  let changed = 0;
  let failedHosts = 0;
  let seen = 0;
  for (const m of recap.matchAll(/^\S+\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/gm)) {
    seen++;
    changed += Number(m[1]);
    if (Number(m[2]) || Number(m[3])) failedHosts++;
  }
  return { changed: seen ? changed : null, failedHosts: seen ? failedHosts : null };
}

