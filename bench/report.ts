// The benchmark's results: the JSON shape, the ratios and the table printed on stdout.
import type { Measurement } from './measure.js';

export interface TaskTime {
  name: string;
  hosts: number;
  meanMs: number;
  maxMs: number;
}

export interface RunRecord extends Measurement {
  tool: 'pgtls' | 'ansible' | 'ssh';
  /** rerun2: pgtls's second no-change re-run (the steady state: its replay record is a no-change run's). */
  job: 'install' | 'rerun' | 'rerun2' | 'floor';
  /** Tasks reported changed, summed over hosts (null when unknown). */
  changed: number | null;
  /** Hosts that failed or were unreachable (null when unknown). */
  failedHosts: number | null;
  /** pgtls only: remote commands per host (PGTLS_COMMAND_LOG). */
  commandsPerHost: Record<string, number> | null;
  /** pgtls only: the slowest tasks (mean over hosts), from its --json report. */
  topTasks: TaskTime[] | null;
}

export interface Ratios {
  installAnsibleOverPgtls: number | null;
  rerunAnsibleOverPgtls: number | null;
  rerunPgtlsOverFloor: number | null;
  installPgtlsOverFloor: number | null;
  /** Controller CPU (user+sys): less sensitive than wall time to a shared machine's load. */
  installCpuAnsibleOverPgtls: number | null;
  rerunCpuAnsibleOverPgtls: number | null;
}

export interface Target {
  what: string;
  target: string;
  measured: string;
  met: boolean | null;
}

export interface BenchResult {
  version: 1;
  startedAt: string;
  finishedAt: string;
  n: number;
  mode: 'install' | 'lineinfile';
  quick: boolean;
  layout: string;
  busy: { processesPerHost: number; realBackendsPerHost: number; seen: number[] } | null;
  machine: { cores: number; memGiB: number; node: string; ansible: string | null };
  labs: { tool: string; upS: number }[];
  logs: string;
  runs: RunRecord[];
  ratios: Ratios;
  /** Issue 12's "what it must show", checked against this run's figures (null = not measured). */
  targets: Target[];
}

function find(runs: RunRecord[], tool: RunRecord['tool'], job: RunRecord['job']): RunRecord | undefined {
  return runs.find((r) => r.tool === tool && r.job === job);
}

function ratio(a: RunRecord | undefined, b: RunRecord | undefined, of: 'wallS' | 'cpuS' = 'wallS'): number | null {
  if (!a || !b || a.exitCode !== 0 || b.exitCode !== 0 || b[of] <= 0) return null;
  return Math.round((a[of] / b[of]) * 10) / 10;
}

export function ratios(runs: RunRecord[]): Ratios {
  const p1 = find(runs, 'pgtls', 'install');
  const p2 = find(runs, 'pgtls', 'rerun');
  const floor = find(runs, 'ssh', 'floor');
  return {
    installAnsibleOverPgtls: ratio(find(runs, 'ansible', 'install'), p1),
    rerunAnsibleOverPgtls: ratio(find(runs, 'ansible', 'rerun'), p2),
    rerunPgtlsOverFloor: ratio(p2, floor),
    installPgtlsOverFloor: ratio(p1, floor),
    installCpuAnsibleOverPgtls: ratio(find(runs, 'ansible', 'install'), p1, 'cpuS'),
    rerunCpuAnsibleOverPgtls: ratio(find(runs, 'ansible', 'rerun'), p2, 'cpuS'),
  };
}

function maxCommands(r: RunRecord | undefined): number | null {
  const v = Object.values(r?.commandsPerHost ?? {});
  return v.length ? Math.max(...v) : null;
}

/** The issue's targets that this kind of run can show. */
export function targets(mode: BenchResult['mode'], n: number, runs: RunRecord[], q: Ratios): Target[] {
  const t: Target[] = [];
  const atLeast = (what: string, min: number, v: number | null): void =>
    void t.push({ what, target: `>= ${min}×`, measured: v === null ? 'not measured' : `${v}×`, met: v === null ? null : v >= min });
  const atMost = (what: string, max: number, v: number | null, unit: string): void =>
    void t.push({ what, target: `<= ${max}${unit}`, measured: v === null ? 'not measured' : `${v}${unit}`, met: v === null ? null : v <= max });
  const p1 = find(runs, 'pgtls', 'install');
  const p2 = find(runs, 'pgtls', 'rerun');
  if (mode === 'install') {
    const big = n > 3;
    atLeast('first run: Ansible/pgtls', big ? 10 : 8, q.installAnsibleOverPgtls);
    atLeast('no-change re-run: Ansible/pgtls', 20, q.rerunAnsibleOverPgtls);
    if (big) atMost('no-change re-run: pgtls/floor', 2, q.rerunPgtlsOverFloor, '×');
    atMost('no-change re-run: remote commands per host (max)', 3, maxCommands(p2), '');
    const p3 = find(runs, 'pgtls', 'rerun2');
    if (p3) atMost('second no-change re-run: remote commands per host (max)', 3, maxCommands(p3), '');
    atMost('first run: remote commands per host (max)', 15, maxCommands(p1), '');
  } else {
    atMost('pgtls controller peak RSS, first run', 300, p1 ? Math.round(p1.maxRssMB) : null, ' MB');
    atMost('pgtls controller peak RSS, re-run', 300, p2 ? Math.round(p2.maxRssMB) : null, ' MB');
  }
  return t;
}

function commandsSummary(c: Record<string, number> | null): string {
  if (!c) return '-';
  const v = Object.values(c);
  if (v.length === 0) return '0';
  const min = Math.min(...v);
  const max = Math.max(...v);
  if (v.length <= 4) return Object.entries(c).sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true })).map(([h, k]) => `${h} ${k}`).join(', ');
  return min === max ? String(min) : `${min}–${max}`;
}

const JOB_LABEL: Record<RunRecord['job'], string> = { install: 'first run', rerun: 'no-change re-run', rerun2: 'second re-run', floor: 'floor: 1 ssh/host' };
const x = (r: number | null): string => (r === null ? 'n/a' : `${r}×`);

export function formatTable(r: BenchResult): string {
  const load = (l: number[]): string => l.map((v) => v.toFixed(2)).join('/');
  const lines: string[] = [];
  lines.push(`pgtls bench: N = ${r.n}, ${r.layout}${r.busy ? `, busy: ${r.busy.processesPerHost} processes per PostgreSQL host (${r.busy.realBackendsPerHost} real idle sessions, the rest sleep; seen ${Math.min(...r.busy.seen)}–${Math.max(...r.busy.seen)})` : ''}`);
  lines.push(`${r.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${r.machine.cores} cores, node ${r.machine.node}${r.machine.ansible ? `, ${r.machine.ansible}` : ''}`);
  lines.push('');
  const head = ['job', 'tool', 'wall s', 'cpu s', 'rss MB', 'tree MB', 'remote cmds/host', 'changed', 'exit', 'load 1/5/15 before'];
  const rows = r.runs.map((run) => [
    JOB_LABEL[run.job],
    run.tool,
    run.wallS.toFixed(2),
    run.cpuS.toFixed(2),
    run.maxRssMB.toFixed(0),
    run.treePeakMB === null ? '-' : run.treePeakMB.toFixed(0),
    commandsSummary(run.commandsPerHost),
    run.changed === null ? '-' : String(run.changed),
    run.exitCode === 0 && !run.failedHosts ? '0' : `${run.exitCode} FAILED`,
    load(run.loadBefore),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (row: string[]): string => row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  lines.push(fmt(head), fmt(widths.map((w) => '-'.repeat(w))), ...rows.map(fmt));
  lines.push('');
  const q = r.ratios;
  lines.push(
    `ratios (wall): first run Ansible/pgtls ${x(q.installAnsibleOverPgtls)}; re-run Ansible/pgtls ${x(q.rerunAnsibleOverPgtls)}; ` +
      `re-run pgtls/floor ${x(q.rerunPgtlsOverFloor)}; first run pgtls/floor ${x(q.installPgtlsOverFloor)}`,
    `ratios (controller cpu): first run Ansible/pgtls ${x(q.installCpuAnsibleOverPgtls)}; re-run Ansible/pgtls ${x(q.rerunCpuAnsibleOverPgtls)}`,
  );
  if (r.targets.length) {
    lines.push('', 'issue 12 targets:');
    for (const t of r.targets) {
      const verdict = t.met === null ? 'NOT MEASURED' : t.met ? 'met' : 'MISSED';
      lines.push(`  ${verdict.padEnd(12)} ${t.what}: ${t.measured} (target ${t.target})`);
    }
  }
  for (const run of r.runs.filter((x) => x.topTasks && x.topTasks.length)) {
    lines.push('', `where pgtls's time goes (${JOB_LABEL[run.job]}; task duration, mean / max over hosts):`);
    for (const t of run.topTasks!) lines.push(`  ${(t.meanMs / 1000).toFixed(2).padStart(7)} s / ${(t.maxMs / 1000).toFixed(2).padStart(7)} s  ${t.name} (${t.hosts} hosts)`);
  }
  lines.push(
    '',
    'cpu = user+sys of the tool and every process it waited for; rss = peak RSS of its largest process;',
    'tree = peak memory charged to all its processes together (cgroup: private memory + page cache they brought in)',
  );
  return lines.join('\n');
}
