import { existsSync } from 'node:fs';
import { abortOnSignals, applyVerbosity, FLEET_OPTIONS, fleetSettings, parseCommandLine, VAULT_USAGE, vaultKeyring } from './cli-options.js';
import { ConfigError, formatIssue, type ConfigIssue } from './lib/errors.js';
import { silentReporter, type Reporter } from './core/reporter.js';
import { prepare, runPlaybook, type RunOptions, type RunReport } from './core/runner.js';
import { packageVersion, resolvePlaybook, shippedPlaybooks } from './package-info.js';
import { githubAnnotations, underGithubActions } from './report/annotations.js';
import { renderDiff } from './report/diff.js';
import { jsonFailureReport, jsonReport, writeJsonFile } from './report/json.js';
import { junitForIssues, junitReport, writeJunit } from './report/junit.js';
import { LineReporter } from './report/line-reporter.js';
import { listHosts, listTags, listTasks } from './report/listing.js';
import { exitCodeOf, recapLines } from './report/recap.js';
import { safeText } from './report/sanitize.js';
import { makeStyle } from './report/style.js';
import { STATUS_USAGE, statusCommand } from './status/command.js';
import { modules } from './modules/index.js';

/** Exit codes (README "Exit codes"). 5 is a bug in pgtls, never a verdict on the fleet. */
export const EXIT = { ok: 0, failed: 1, badInput: 2, unreachable: 3, interrupted: 4, internal: 5 } as const;

const USAGE = `usage:
  pgtls run PLAYBOOK -i INVENTORY [options]   PLAYBOOK: a file, or a shipped playbook's name (pgtls playbooks)
  pgtls playbooks                             list the shipped playbooks
  pgtls --version

options:
  -i, --inventory FILE     Ansible inventory: YAML or INI, with group_vars/ and host_vars/ beside it (required)
  -e, --extra-vars VARS    key=value, @file.yaml or a JSON object (repeatable; highest precedence)
  -C, --check              plan only: change nothing, report what would change
  -D, --diff               show unified diffs of file changes (secrets are never shown)
  -f, --forks N            hosts worked on at once (default 50)
  -l, --limit PATTERN      only these hosts/groups (Ansible pattern)
  -t, --tags TAGS          only tasks with these tags (comma separated)
      --skip-tags TAGS     skip tasks with these tags
      --syntax-check       validate everything a run would, for every host, contact none (exit 0 or 2)
      --list-hosts         the hosts each play would run on (nothing contacted)
      --list-tasks         the tasks each play would run, with their tags
      --list-tags          the tags of each play
      --keep-going         a host whose facts cannot be read is left out (with its Pgpool-II node and
                           that node's other backends) instead of stopping the run before any change
      --allow-empty        a --limit or play pattern that matches no host is not an error
      --json FILE          write a machine-readable report (at every exit, bad input included)
      --junit FILE         write a JUnit XML report (a suite per play and host, a case per task)
      --known-hosts FILE   OpenSSH known_hosts to verify host keys (default ~/.ssh/known_hosts)
      --insecure-skip-host-key-check   do not verify host keys (explicit opt-out)
${VAULT_USAGE}
  -h, --help

exit codes: 0 ok, 1 a host failed, 2 bad input (nothing touched), 3 a host unreachable (none failed), 4 interrupted,
5 a bug in pgtls (printed with its stack; never a verdict on the fleet)

${STATUS_USAGE}`;

/** Where a run's reports go; known before the options are validated, so bad input gets its report too. */
interface ReportTargets {
  json?: string;
  junit?: string;
  playbook?: string;
  inventory?: string;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE + '\n');
    return command ? EXIT.ok : EXIT.badInput;
  }
  if (command === '--version' || command === '-V' || command === 'version') {
    process.stdout.write(`pgtls ${packageVersion()}\n`);
    return EXIT.ok;
  }
  const targets: ReportTargets = command === 'run' ? scanReportTargets(rest) : {};
  try {
    if (command === 'run') return await runCommand(rest, targets);
    if (command === 'status') return await statusCommand(rest, modules);
    if (command === 'playbooks') return listShippedPlaybooks();
    process.stderr.write(`pgtls: unknown command '${command}'\n${USAGE}\n`);
    return EXIT.badInput;
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(safeText(`pgtls: bad input, no host was contacted:\n${e.issues.map((i) => `  ${formatIssue(i)}`).join('\n')}\n`));
      if (underGithubActions()) process.stdout.write(safeText(githubAnnotations(e.issues).join('\n') + '\n'));
      writeFailureReports(targets, EXIT.badInput, e.issues);
      return EXIT.badInput;
    }
    process.stderr.write(safeText(`pgtls: internal error (this is a bug in pgtls, please report it):\n${e instanceof Error ? e.stack : String(e)}\n`));
    writeFailureReports(targets, EXIT.internal, [], e instanceof Error ? e.message : String(e));
    return EXIT.internal;
  }
}

/** --json/--junit from raw argv (before parsing, which may itself be what fails). */
function scanReportTargets(argv: string[]): ReportTargets {
  const t: ReportTargets = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    for (const name of ['json', 'junit', 'inventory'] as const) {
      if (a === `--${name}` || (name === 'inventory' && a === '-i')) t[name] = argv[i + 1];
      else if (a.startsWith(`--${name}=`)) t[name] = a.slice(name.length + 3);
    }
  }
  return t;
}

function writeFailureReports(t: ReportTargets, exitCode: number, issues: ConfigIssue[], internalError?: string): void {
  try {
    if (t.json) writeJsonFile(t.json, jsonFailureReport({ playbook: t.playbook, inventory: t.inventory, exitCode, errors: issues, internalError }));
    if (t.junit) writeJunit(t.junit, junitForIssues(issues, internalError ?? 'internal error'));
  } catch (e) {
    process.stderr.write(`pgtls: cannot write the report: ${e instanceof Error ? e.message : String(e)}\n`);
  }
}

function listShippedPlaybooks(): number {
  const books = shippedPlaybooks();
  const width = Math.max(0, ...books.map((b) => b.name.length));
  for (const b of books) process.stdout.write(`${b.name.padEnd(width)}  ${b.summary}\n`);
  return EXIT.ok;
}

async function runCommand(argv: string[], targets: ReportTargets): Promise<number> {
  const { values: v, positionals } = parseCommandLine(argv, {
    ...FLEET_OPTIONS,
    check: { type: 'boolean', short: 'C' },
    diff: { type: 'boolean', short: 'D' },
    tags: { type: 'string', short: 't' },
    'skip-tags': { type: 'string' },
    json: { type: 'string' },
    junit: { type: 'string' },
    'syntax-check': { type: 'boolean' },
    'list-hosts': { type: 'boolean' },
    'list-tasks': { type: 'boolean' },
    'list-tags': { type: 'boolean' },
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
  const playbook = resolvePlaybook(positionals[0]!, existsSync);
  targets.playbook = playbook;
  const vault = vaultKeyring(v);
  applyVerbosity(v);
  const list = (s?: string) => (s ? s.split(',').map((t) => t.trim()).filter(Boolean) : []);
  const options: Omit<RunOptions, 'reporter'> = {
    modules,
    playbook,
    inventory: v.inventory!,
    extraVars: v['extra-vars'] ?? [],
    check: Boolean(v.check),
    forks,
    limit: v.limit,
    tags: list(v.tags),
    skipTags: list(v['skip-tags']),
    knownHosts,
    vault,
    factsPolicy: v['keep-going'] ? 'keep-going' : 'all-or-nothing',
    allowEmpty: Boolean(v['allow-empty']),
  };

  if (v['syntax-check'] || v['list-hosts'] || v['list-tasks'] || v['list-tags']) {
    // Everything a run validates, for every host, and nothing contacted.
    const { inv, book, warnings } = prepare({ ...options, reporter: silentReporter });
    const sel = { limit: options.limit, tags: options.tags, skipTags: options.skipTags };
    if (v['list-hosts']) process.stdout.write(listHosts(book, inv, sel));
    if (v['list-tasks']) process.stdout.write(listTasks(book, sel));
    if (v['list-tags']) process.stdout.write(listTags(book, sel));
    if (warnings.length) process.stderr.write(`WARNINGS\n${warnings.map((w) => `  ${w}`).join('\n')}\n`);
    if (v['syntax-check']) {
      const tasks = book.plays.reduce((n, p) => n + p.tasks.length + p.handlers.length, 0);
      process.stdout.write(`syntax OK: ${book.file}: ${book.plays.length} plays, ${tasks} tasks; ${inv.file}: ${inv.hosts.size} hosts (nothing was contacted)\n`);
    }
    if (v.json) writeJsonFile(v.json, { ...jsonFailureReport({ playbook: book.file, inventory: inv.file, exitCode: EXIT.ok, errors: [] }), warnings, check: true });
    return EXIT.ok;
  }

  const interactive = Boolean(process.stdout.isTTY) && !process.env.CI;
  // listr2 is loaded only for a terminal: CI logs and pipes do not pay for it.
  const reporter: Reporter = interactive ? new (await import('./report/listr-reporter.js')).ListrReporter() : new LineReporter();
  const abort = new AbortController();
  const stopListening = abortOnSignals(abort, '\npgtls: interrupted: finishing the running tasks, starting no new ones (again to quit now)\n');
  try {
    const report = await runPlaybook({ ...options, reporter, signal: abort.signal });
    printSummary(report, Boolean(v.diff));
    if (v.json) writeJsonFile(v.json, jsonReport(report));
    if (v.junit) writeJunit(v.junit, junitReport(report));
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
  if (report.interrupted) {
    out.write(s.red('interrupted: some tasks did not run\n'));
    // per host: rolled back to its last proven state, or nothing of it left half-done
    for (const [host, h] of Object.entries(report.hosts))
      if (h.status === 'interrupted') out.write(`  ${safeText(`${host}: ${h.message ?? ''}`, { oneLine: true })}\n`);
  }
}

function colorDiff(text: string, s: ReturnType<typeof makeStyle>): string {
  return text
    .split('\n')
    .map((l) => (l.startsWith('+') && !l.startsWith('+++') ? s.green(l) : l.startsWith('-') && !l.startsWith('---') ? s.red(l) : l))
    .join('\n');
}
