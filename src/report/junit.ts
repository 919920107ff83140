import type { ConfigIssue } from '../lib/errors.js';
import { writePrivateFile } from '../lib/private-file.js';
import { safeText } from './sanitize.js';
import { formatIssue } from '../lib/errors.js';
import type { RunReport } from '../core/runner.js';

/**
 * JUnit XML (--junit FILE) in the shape CI systems read (Jenkins/GitLab/GitHub test reporters,
 * the common "JUnit XSD"): <testsuites> of one <testsuite> per play and host, one <testcase>
 * per task; a failed task has <failure message=…>, an unreachable host <error>, a skipped task
 * <skipped/>. Bad input is one suite "pgtls validation" with a failing case per problem.
 */
export function junitReport(report: RunReport): string {
  const suites: Suite[] = [];
  for (const [host, h] of Object.entries(report.hosts)) {
    const byPlay = new Map<string, Case[]>();
    for (const t of h.tasks) {
      const play = t.play ?? report.playbook;
      const cases = byPlay.get(play) ?? [];
      const name = t.handler ? `handler: ${t.task}` : t.task;
      const c: Case = { name, classname: `${play}.${host}`, timeMs: t.durationMs };
      if (t.status === 'failed') c.failure = { message: t.error ?? 'failed', type: t.module };
      else if (t.status === 'unreachable') c.error = { message: t.error ?? 'unreachable', type: 'unreachable' };
      else if (t.status === 'skipped') c.skipped = t.summaries.join('; ') || 'skipped';
      else c.output = [t.status, ...t.summaries, ...t.warnings.map((w) => `WARNING: ${w}`)].join('\n');
      cases.push(c);
      byPlay.set(play, cases);
    }
    if (h.tasks.length === 0 && h.status !== 'ok') {
      byPlay.set(report.playbook, [
        { name: 'connect', classname: `${report.playbook}.${host}`, timeMs: 0, error: { message: h.message ?? h.status, type: h.status } },
      ]);
    }
    for (const [play, cases] of byPlay) suites.push({ name: `${play} @ ${host}`, hostname: host, cases });
  }
  return render(suites, report.startedAt);
}

export function junitForIssues(issues: ConfigIssue[], what: string): string {
  const cases: Case[] = issues.length
    ? issues.map((i) => ({ name: `${i.file}${i.line ? `:${i.line}` : ''}${i.field ? ` ${i.field}` : ''}`, classname: 'pgtls.validation', timeMs: 0, failure: { message: formatIssue(i), type: 'bad input' } }))
    : [{ name: what, classname: 'pgtls.validation', timeMs: 0, error: { message: what, type: 'internal error' } }];
  return render([{ name: 'pgtls validation', hostname: 'localhost', cases }], new Date().toISOString());
}

/** Written 0600, never through a symlink, like the JSON report. */
export function writeJunit(file: string, xml: string): void {
  writePrivateFile(file, xml);
}

interface Case {
  name: string;
  classname: string;
  timeMs: number;
  failure?: { message: string; type: string };
  error?: { message: string; type: string };
  skipped?: string;
  output?: string;
}
interface Suite {
  name: string;
  hostname: string;
  cases: Case[];
}

function render(suites: Suite[], timestamp: string): string {
  const count = (s: Suite[], f: (c: Case) => boolean) => s.reduce((n, x) => n + x.cases.filter(f).length, 0);
  const secs = (ms: number) => (ms / 1000).toFixed(3);
  const total = (s: Suite[]) => s.reduce((n, x) => n + x.cases.reduce((m, c) => m + c.timeMs, 0), 0);
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  out.push(
    `<testsuites name="pgtls" tests="${count(suites, () => true)}" failures="${count(suites, (c) => !!c.failure)}" errors="${count(suites, (c) => !!c.error)}" skipped="${count(suites, (c) => c.skipped !== undefined)}" time="${secs(total(suites))}">`,
  );
  suites.forEach((s, id) => {
    out.push(
      `  <testsuite name="${esc(s.name)}" id="${id}" hostname="${esc(s.hostname)}" timestamp="${esc(timestamp.replace(/\.\d+Z$/, ''))}" tests="${s.cases.length}" failures="${count([s], (c) => !!c.failure)}" errors="${count([s], (c) => !!c.error)}" skipped="${count([s], (c) => c.skipped !== undefined)}" time="${secs(total([s]))}">`,
    );
    for (const c of s.cases) {
      const open = `    <testcase name="${esc(c.name)}" classname="${esc(c.classname)}" time="${secs(c.timeMs)}"`;
      if (c.failure) out.push(`${open}>`, `      <failure message="${esc(c.failure.message)}" type="${esc(c.failure.type)}">${esc(c.failure.message)}</failure>`, '    </testcase>');
      else if (c.error) out.push(`${open}>`, `      <error message="${esc(c.error.message)}" type="${esc(c.error.type)}">${esc(c.error.message)}</error>`, '    </testcase>');
      else if (c.skipped !== undefined) out.push(`${open}>`, `      <skipped message="${esc(c.skipped)}"/>`, '    </testcase>');
      else if (c.output) out.push(`${open}>`, `      <system-out>${esc(c.output)}</system-out>`, '    </testcase>');
      else out.push(`${open}/>`);
    }
    out.push('  </testsuite>');
  });
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}

/** XML attribute/text escaping; characters XML 1.0 forbids (most C0 controls) are dropped. */
function esc(s: string): string {
  return safeText(s)
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    .replace(/\n/g, '&#10;');
}
