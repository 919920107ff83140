// The benchmark's pure parts: reading the tools' outputs back (pgtls's command log and JSON report,
// Ansible's recap), the ratios, issue 12's target checks and the table.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { countCommands, parseAnsibleRecap, summarisePgtlsReport } from '../../bench/parse.js';
import { formatTable, ratios, targets, type BenchResult, type RunRecord } from '../../bench/report.js';

function run(tool: RunRecord['tool'], job: RunRecord['job'], wallS: number, extra: Partial<RunRecord> = {}): RunRecord {
  return {
    tool, job, wallS, userS: 1, sysS: 0.5, cpuS: 1.5, maxRssMB: 80, treePeakMB: 40, exitCode: 0,
    loadBefore: [0.5, 0.4, 0.3], loadAfter: [0.6, 0.4, 0.3],
    changed: null, failedHosts: null, commandsPerHost: null, topTasks: null, ...extra,
  };
}

test('countCommands: one line per command (newlines inside a command are escaped), counted per host', () => {
  const log = 'pg1\tcat /etc/x\npg2\tsh -c \'a\\nb\'\npg1\tid -u\n\n';
  assert.equal(countCommands(log), { pg1: 2, pg2: 1 });
  assert.equal(countCommands(''), {});
});

test('parseAnsibleRecap: the last PLAY RECAP counts; failed or unreachable hosts are counted', () => {
  const text = `PLAY RECAP ****\nold : ok=1 changed=9 unreachable=0 failed=0\n\nPLAY [x]\n\nPLAY RECAP *********\n` +
    `pg1                        : ok=37   changed=24   unreachable=0    failed=0    skipped=0    rescued=0    ignored=0\n` +
    `pg2                        : ok=30   changed=20   unreachable=0    failed=1    skipped=3    rescued=0    ignored=0\n` +
    `pg3                        : ok=0    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0\n`;
  assert.equal(parseAnsibleRecap(text), { changed: 44, failedHosts: 2 });
  assert.equal(parseAnsibleRecap('ERROR! the playbook could not be parsed'), { changed: null, failedHosts: null });
});

test('summarisePgtlsReport: changed summed, slowest tasks by mean over the hosts that ran them', () => {
  const s = summarisePgtlsReport({
    exitCode: 0,
    hosts: {
      pg1: { recap: { changed: 3, failed: 0, unreachable: 0 }, tasks: [{ name: 'a', durationMs: 100, changed: true }, { name: 'b', durationMs: 900, changed: true }] },
      pg2: { recap: { changed: 2, failed: 1, unreachable: 0 }, tasks: [{ name: 'a', durationMs: 300, changed: true }] },
    },
  });
  assert.is(s.changed, 5);
  assert.is(s.failedHosts, 1);
  assert.equal(s.topTasks, [
    { name: 'b', hosts: 1, meanMs: 900, maxMs: 900 },
    { name: 'a', hosts: 2, meanMs: 200, maxMs: 300 },
  ]);
});

test('ratios: wall-time quotients; a failed run or a missing tool gives null', () => {
  const runs = [run('pgtls', 'install', 2), run('pgtls', 'rerun', 0.5), run('ssh', 'floor', 0.25), run('ansible', 'install', 30), run('ansible', 'rerun', 20, { exitCode: 2 })];
  runs[3]!.cpuS = 15;
  assert.equal(ratios(runs), {
    installAnsibleOverPgtls: 15, rerunAnsibleOverPgtls: null, rerunPgtlsOverFloor: 2, installPgtlsOverFloor: 8,
    installCpuAnsibleOverPgtls: 10, rerunCpuAnsibleOverPgtls: null,
  });
  assert.equal(ratios([run('pgtls', 'install', 2)]), {
    installAnsibleOverPgtls: null, rerunAnsibleOverPgtls: null, rerunPgtlsOverFloor: null, installPgtlsOverFloor: null,
    installCpuAnsibleOverPgtls: null, rerunCpuAnsibleOverPgtls: null,
  });
});

test("targets: issue 12's thresholds per kind of run (N = 3, large N, lineinfile)", () => {
  const runs = [
    run('pgtls', 'install', 2, { commandsPerHost: { pg1: 14, pg2: 16 } }),
    run('pgtls', 'rerun', 0.5, { commandsPerHost: { pg1: 3, pg2: 3 } }),
    run('ssh', 'floor', 0.4),
    run('ansible', 'install', 17),
    run('ansible', 'rerun', 10),
  ];
  const small = targets('install', 3, runs, ratios(runs));
  assert.equal(small.map((t) => [t.what, t.met]), [
    ['first run: Ansible/pgtls', true],
    ['no-change re-run: Ansible/pgtls', true],
    ['no-change re-run: remote commands per host (max)', true],
    ['first run: remote commands per host (max)', false],
  ]);
  const big = targets('install', 50, runs, ratios(runs));
  assert.equal(big.find((t) => t.what === 'first run: Ansible/pgtls')?.met, false, '8.5× < 10×');
  assert.equal(big.find((t) => t.what === 'no-change re-run: pgtls/floor')?.met, true, '1.3× <= 2×');
  const noAnsible = targets('install', 3, runs.slice(0, 3), ratios(runs.slice(0, 3)));
  assert.is(noAnsible[0]?.met, null);
  assert.is(noAnsible[0]?.measured, 'not measured');
  // a second re-run (the steady state) is judged on its own line; the ratios stay the first re-run's
  const steady = targets('install', 3, [...runs, run('pgtls', 'rerun2', 0.4, { commandsPerHost: { pg1: 3, pg2: 4 } })], ratios(runs));
  assert.equal(steady.find((t) => t.what === 'second no-change re-run: remote commands per host (max)')?.met, false, '4 > 3');
  const li = targets('lineinfile', 200, [run('pgtls', 'install', 5, { maxRssMB: 310 }), run('pgtls', 'rerun', 3)], ratios([]));
  assert.equal(li.map((t) => t.met), [false, true]);
});

test('formatTable: one row per run, ratios, targets and the profile', () => {
  const runs = [
    run('pgtls', 'install', 2, { changed: 31, commandsPerHost: { pg1: 72, pg2: 68, pg3: 41 }, topTasks: [{ name: 'Issue certs', hosts: 2, meanMs: 1500, maxMs: 1700 }] }),
    run('pgtls', 'rerun', 0.5, { changed: 0, commandsPerHost: { pg1: 21, pg2: 21, pg3: 20 } }),
    run('ssh', 'floor', 0.25),
  ];
  const r: BenchResult = {
    version: 1, startedAt: '2026-12-01T10:00:00.000Z', finishedAt: '2026-12-01T10:01:00.000Z', n: 3, mode: 'install', quick: true,
    layout: 'pg1 primary, pg2 standby, pg3 Pgpool-II', busy: null,
    machine: { cores: 2, memGiB: 23.5, node: 'v20', ansible: null }, labs: [], logs: '/tmp', runs, ratios: ratios(runs), targets: [],
  };
  r.targets = targets(r.mode, r.n, runs, r.ratios);
  const t = formatTable(r);
  assert.match(t, /^pgtls bench: N = 3, pg1 primary/);
  assert.match(t, /first run\s+pgtls\s+2\.00\s+1\.50\s+80\s+40\s+pg1 72, pg2 68, pg3 41\s+31\s+0/);
  assert.match(t, /no-change re-run\s+pgtls\s+0\.50/);
  assert.match(t, /floor: 1 ssh\/host\s+ssh\s+0\.25/);
  assert.match(t, /re-run pgtls\/floor 2×/);
  assert.match(t, /ratios \(controller cpu\): first run Ansible\/pgtls n\/a/);
  assert.match(t, /NOT MEASURED\s+first run: Ansible\/pgtls/);
  assert.match(t, /MISSED\s+first run: remote commands per host \(max\): 72/);
  assert.match(t, /1\.50 s \/\s+1\.70 s  Issue certs \(2 hosts\)/);
});

test.run();
