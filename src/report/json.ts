import type { ConfigIssue } from '../lib/errors.js';
import type { RunReport } from '../core/runner.js';
import { diffStats } from './diff.js';
import { writePrivateFile } from '../lib/private-file.js';
import { safeJson } from './sanitize.js';
import { exitCodeOf } from './recap.js';

/** The machine-readable report (--json FILE). Secrets are Secret objects and serialise masked; every text is sanitized. */
export function jsonReport(report: RunReport): object {
  return safeJson({
    version: 1,
    playbook: report.playbook,
    inventory: report.inventory,
    check: report.check,
    startedAt: report.startedAt,
    durationMs: report.durationMs,
    interrupted: report.interrupted,
    warnings: report.warnings,
    exitCode: exitCodeOf(report),
    errors: [],
    hosts: Object.fromEntries(
      Object.entries(report.hosts).map(([name, h]) => [
        name,
        {
          status: h.status,
          message: h.message,
          recap: h.recap,
          warnings: h.tasks.flatMap((t) => t.warnings.map((w) => `${t.task}: ${w}`)),
          tasks: h.tasks.map((t) => ({
            name: t.task,
            module: t.module,
            play: t.play,
            handler: t.handler ?? false,
            status: t.status,
            changed: t.changed,
            summaries: t.summaries,
            diff: t.diffs.map(diffStats),
            // what the task did (--check: would do), action by action: kind, path, description; a hash and length, never content
            planned: t.planned ?? [],
            warnings: t.warnings,
            error: t.error,
            durationMs: t.durationMs,
            ...(t.ranAhead ? { ranAhead: true } : {}),
          })),
        },
      ]),
    ),
  }) as object;
}

/** Written 0600, never through a symlink (the report names hosts, paths and failures). */
export function writeJsonReport(file: string, report: RunReport): void {
  writePrivateFile(file, JSON.stringify(jsonReport(report), null, 2) + '\n');
}

/**
 * The report of a run that never started: bad input (exit 2, every problem with file and line)
 * or an internal error (exit 5). Same top-level shape as a run's report, so CI reads one format.
 */
export function jsonFailureReport(opts: { playbook?: string; inventory?: string; exitCode: number; errors: ConfigIssue[]; internalError?: string }): object {
  return {
    version: 1,
    playbook: opts.playbook ?? null,
    inventory: opts.inventory ?? null,
    check: false,
    startedAt: new Date().toISOString(),
    durationMs: 0,
    interrupted: false,
    warnings: [],
    exitCode: opts.exitCode,
    errors: opts.errors.map((e) => ({ file: e.file, line: e.line ?? null, field: e.field ?? null, message: e.message })),
    ...(opts.internalError ? { internalError: opts.internalError } : {}),
    hosts: {},
  };
}

/** Written 0600, never through a symlink, every text sanitized (like writeJsonReport). */
export function writeJsonFile(file: string, value: object): void {
  writePrivateFile(file, JSON.stringify(safeJson(value), null, 2) + '\n');
}
