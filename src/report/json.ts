import type { RunReport } from '../core/runner.js';
import { diffStats } from './diff.js';
import { writePrivateFile } from '../core/private-file.js';
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
            handler: t.handler ?? false,
            status: t.status,
            changed: t.changed,
            summaries: t.summaries,
            diff: t.diffs.map(diffStats),
            warnings: t.warnings,
            error: t.error,
            durationMs: t.durationMs,
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
