import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests run from dist/test/e2e). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  report?: JsonReport;
}

export interface JsonReport {
  exitCode: number;
  check: boolean;
  hosts: Record<
    string,
    {
      status: string;
      recap: { ok: number; changed: number; unreachable: number; failed: number; skipped: number };
      tasks: {
        name: string;
        status: string;
        changed: boolean;
        summaries: string[];
        error?: string;
        warnings: string[];
        planned?: { kind: string; description: string; change: string; path?: string; sha256?: string; bytes?: number; conditional?: boolean }[];
        ranAhead?: boolean;
      }[];
      warnings: string[];
      message?: string;
    }
  >;
}

/** Runs the real CLI (bin/pgtls.js) as a user would, in CI mode (plain line output). */
export function pgtls(args: string[], opts: { json?: string; env?: Record<string, string> } = {}): Promise<CliRun> {
  const full = [join(ROOT, 'bin', 'pgtls.js'), ...args, ...(opts.json ? ['--json', opts.json] : [])];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, full, { cwd: ROOT, env: { ...process.env, CI: 'true', NO_COLOR: '1', ...opts.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      let report: JsonReport | undefined;
      if (opts.json) {
        try {
          report = JSON.parse(readFileSync(opts.json, 'utf8')) as JsonReport;
        } catch {
          report = undefined;
        }
      }
      resolve({ code: code ?? -1, stdout, stderr, report });
    });
  });
}

/** Sum of `changed` over all hosts of a report. */
export function totalChanged(r: JsonReport): number {
  return Object.values(r.hosts).reduce((n, h) => n + h.recap.changed, 0);
}
