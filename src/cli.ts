import { abortOnSignals, FLEET_OPTIONS, fleetSettings, parseCommandLine } from './cli-options.js';
import { ConfigError, formatIssue, type ConfigIssue } from './core/errors.js';
import type { Reporter } from './core/reporter.js';
import { runPlaybook, type RunReport } from './core/runner.js';
import { renderDiff } from './report/diff.js';
import { writeJsonReport } from './report/json.js';
import { LineReporter } from './report/line-reporter.js';
import { exitCodeOf, recapLines } from './report/recap.js';
import { safeText } from './report/sanitize.js';
import { makeStyle } from './report/style.js';
import { STATUS_USAGE, statusCommand } from './status/command.js';

export const EXIT = { ok: 0, failed: 1, badInput: 2, unreachable: 3, interrupted: 4 } as const;

const USAGE = `usage:
  pgtls run PLAYBOOK -i INVENTORY [options]

options:
  -i, --inventory FILE     Ansible-style YAML inventory (required)
  -e, --extra-vars VARS    key=value, @file.yaml or a JSON object (repeatable; highest precedence)
  -C, --check              plan only: change nothing, report what would change
  -D, --diff               show unified diffs of file changes (secrets are never shown)
  -f, --forks N            hosts worked on at once (default 50)
  -l, --limit PATTERN      only these hosts/groups (Ansible pattern)
  -t, --tags TAGS          only tasks with these tags (comma separated)
      --skip-tags TAGS     skip tasks with these tags
      --keep-going         a host whose facts cannot be read is left out (with its Pgpool-II node and
                           that node's other backends) instead of stopping the run before any change
      --allow-empty        a --limit or play pattern that matches no host is not an error
      --json FILE          write a machine-readable report
      --known-hosts FILE   OpenSSH known_hosts to verify host keys (default ~/.ssh/known_hosts)
      --insecure-skip-host-key-check   do not verify host keys (explicit opt-out)
  -h, --help

exit codes: 0 ok, 1 a host failed, 2 bad input (nothing touched), 3 a host unreachable (none failed), 4 interrupted

${STATUS_USAGE}`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE + '\n');
    return command ? EXIT.ok : EXIT.badInput;
  }
  try {
    if (command === 'run') return await runCommand(rest);
    if (command === 'status') return await statusCommand(rest);
    process.stderr.write(`pgtls: unknown command '${command}'\n${USAGE}\n`);
    return EXIT.badInput;
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(safeText(`pgtls: bad input, no host was contacted:\n${e.issues.map((i) => `  ${formatIssue(i)}`).join('\n')}\n`));
      return EXIT.badInput;
    }
    process.stderr.write(safeText(`pgtls: internal error (this is a bug in pgtls, please report it):\n${e instanceof Error ? e.stack : String(e)}\n`));
    return EXIT.failed;
  }
}

async function runCommand(argv: string[]): Promise<number> {
  const { values: v, positionals } = parseCommandLine(argv, {
    ...FLEET_OPTIONS,
    check: { type: 'boolean', short: 'C' },
    diff: { type: 'boolean', short: 'D' },
    tags: { type: 'string', short: 't' },
    'skip-tags': { type: 'string' },
    json: { type: 'string' },
    'keep-going': { type: 'boolean' },
    'allow-empty': { type: 'boolean' },
  });
  if (v.help) {
    process.stdout.write(USAGE + '\n');
    return EXIT.ok;
  }
  const problems: ConfigIssue[] = [];
  if (positionals.length !== 1) problems.push({ file: 'command line', message: 'expected exactly one PLAYBOOK' });
  const { forks, knownHosts } = fleetSettings(v, problems);
  if (problems.length) throw new ConfigError(problems);

  const interactive = Boolean(process.stdout.isTTY) && !process.env.CI;
  // listr2 is loaded only for a terminal: CI logs and pipes do not pay for it.
  const reporter: Reporter = interactive ? new (await import('./report/listr-reporter.js')).ListrReporter() : new LineReporter();
  const abort = new AbortController();
  const stopListening = abortOnSignals(abort, '\npgtls: interrupted: finishing the running tasks, starting no new ones (again to quit now)\n');
  const list = (s?: string) => (s ? s.split(',').map((t) => t.trim()).filter(Boolean) : []);
  try {
    const report = await runPlaybook({
      playbook: positionals[0]!,
      inventory: v.inventory!,
      extraVars: v['extra-vars'] ?? [],
      check: Boolean(v.check),
      forks,
      limit: v.limit,
      tags: list(v.tags),
      skipTags: list(v['skip-tags']),
      knownHosts,
      reporter,
      signal: abort.signal,
      factsPolicy: v['keep-going'] ? 'keep-going' : 'all-or-nothing',
      allowEmpty: Boolean(v['allow-empty']),
    });
    printSummary(report, Boolean(v.diff));
    if (v.json) writeJsonReport(v.json, report);
    return exitCodeOf(report);
  } finally {
    stopListening();
  }
}

function printSummary(report: RunReport, showDiff: boolean): void {
  const out = process.stdout;
  const s = makeStyle(out);
  // Host-derived and templated text goes through the one sanitizer (control characters, secrets)
  // before pgtls's own colours are added around it.
  const t = (text: string) => safeText(text);
  for (const [host, h] of Object.entries(report.hosts)) {
    if (showDiff) {
      for (const task of h.tasks) for (const d of task.diffs) out.write(`${s.bold(t(`--- ${host}: ${task.task}`))}\n${colorDiff(t(renderDiff(d)), s)}\n`);
    }
  }
  const warnings = [
    ...report.warnings,
    ...Object.entries(report.hosts).flatMap(([host, h]) => [
      ...h.tasks.flatMap((task) => task.warnings.map((w) => `${host}: ${task.task}: ${w}`)),
    ]),
  ];
  if (warnings.length) out.write(`\n${s.yellow('WARNINGS')}\n${warnings.map((w) => `  ${safeText(w, { oneLine: true })}`).join('\n')}\n`);
  const failures = Object.entries(report.hosts).filter(([, h]) => h.status === 'failed' || h.status === 'unreachable');
  if (failures.length)
    out.write(`\n${s.red('FAILURES')}\n${failures.map(([host, h]) => `  ${safeText(`${host}: ${h.status}: ${h.message ?? ''}`, { oneLine: true })}`).join('\n')}\n`);
  if (report.stoppedBeforeChanges) out.write(`\n${s.red(report.stoppedBeforeChanges)}\n`);
  if (report.refused?.length)
    process.stderr.write(`pgtls: refused, no host was changed:\n${report.refused.map((r) => `  ${safeText(r, { oneLine: true })}`).join('\n')}\n`);
  out.write(`\n${s.bold('PLAY RECAP')}${report.check ? ' (check mode: nothing was changed)' : ''}\n`);
  for (const l of recapLines(report)) out.write(l + '\n');
  if (report.interrupted) out.write(s.red('interrupted: some tasks did not run\n'));
}

function colorDiff(text: string, s: ReturnType<typeof makeStyle>): string {
  return text
    .split('\n')
    .map((l) => (l.startsWith('+') && !l.startsWith('+++') ? s.green(l) : l.startsWith('-') && !l.startsWith('---') ? s.red(l) : l))
    .join('\n');
}
