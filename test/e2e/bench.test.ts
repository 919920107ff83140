// The benchmark harness cannot rot: its quick mode (N = 3: pg1 primary, pg2 standby, pg3 Pgpool-II;
// pgtls first run + no-change re-run, then the plain-ssh floor) runs on a real lab and must produce
// a sane table and JSON. No timing is asserted (the machine is shared): only that every figure is
// there, every run succeeded, the re-run changed nothing and remote commands were counted per host.
// The lineinfile and busy-host modes get a small run each, for the same reason.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { labAvailable, labUnavailableReason, REPO_ROOT, run } from './lab.js';
import type { BenchResult } from '../../bench/report.js';

if (!labAvailable()) {
  console.log(`  bench.test: SKIPPED: ${labUnavailableReason()}`);
} else {
  test('bench --quick: table and JSON with pgtls (first run, re-run) and the floor', async () => {
    const out = path.join(tmpdir(), `pgtls-bench-${process.pid}.json`);
    rmSync(out, { force: true });
    // dist/ is built by the test command; the harness brings up (and takes down) its own lab
    const r = await run('node', [path.join(REPO_ROOT, 'dist', 'bench', 'compare.js'), '--quick', '--out', out], { timeoutMs: 300_000 });
    assert.is(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);

    for (const s of ['first run', 'no-change re-run', 'floor: 1 ssh/host', 'ratios (wall)', "where pgtls's time goes"]) {
      assert.ok(r.stdout.includes(s), `table lacks "${s}":\n${r.stdout}`);
    }
    const j = JSON.parse(readFileSync(out, 'utf8')) as BenchResult;
    rmSync(out, { force: true });
    rmSync(out.replace(/\.json$/, '.txt'), { force: true });
    assert.is(j.n, 3);
    assert.is(j.mode, 'install');
    assert.is(j.quick, true);
    assert.equal(j.runs.map((x) => `${x.tool}/${x.job}`), ['pgtls/install', 'pgtls/rerun', 'pgtls/rerun2', 'ssh/floor']);
    for (const x of j.runs) {
      const what = `${x.tool}/${x.job}`;
      assert.is(x.exitCode, 0, what);
      assert.ok(Number.isFinite(x.wallS) && x.wallS > 0, `${what}: wall ${x.wallS}`);
      assert.ok(Number.isFinite(x.cpuS) && x.cpuS >= 0, `${what}: cpu ${x.cpuS}`);
      assert.ok(x.maxRssMB > 0, `${what}: rss ${x.maxRssMB}`);
      assert.is(x.loadBefore.length, 3, what);
    }
    const [install, rerun, rerun2] = j.runs;
    assert.ok(install!.changed !== null && install!.changed > 0, `first run changed ${install!.changed}`);
    assert.is(rerun!.changed, 0, 'the no-change re-run changed something');
    assert.is(rerun2!.changed, 0, 'the second re-run changed something');
    assert.is(install!.failedHosts, 0);
    for (const x of [install!, rerun!, rerun2!]) {
      const c = x.commandsPerHost ?? {};
      assert.equal(Object.keys(c).sort(), ['pg1', 'pg2', 'pg3'], `${x.job}: commands counted per host`);
      for (const [h, k] of Object.entries(c)) assert.ok(k > 0, `${x.job}: ${h} ${k}`);
      assert.ok((x.topTasks ?? []).length > 0, `${x.job}: per-task durations from the JSON report`);
    }
    // a re-run never issues more commands than the first run on the same host, the second no more than the first re-run
    for (const [h, k] of Object.entries(rerun!.commandsPerHost ?? {})) {
      assert.ok(k <= (install!.commandsPerHost?.[h] ?? 0), `${h}: re-run ${k} commands > first run`);
      assert.ok((rerun2!.commandsPerHost?.[h] ?? Infinity) <= k, `${h}: second re-run ${rerun2!.commandsPerHost?.[h]} commands > re-run ${k}`);
    }
    assert.ok(j.ratios.rerunPgtlsOverFloor !== null && j.ratios.rerunPgtlsOverFloor > 0);
    assert.is(j.ratios.installAnsibleOverPgtls, null, 'quick mode runs no Ansible');
  });

  test('bench --lineinfile: files seeded on hosts without PostgreSQL, first run changes them, re-run does not', async () => {
    const out = path.join(tmpdir(), `pgtls-bench-li-${process.pid}.json`);
    const r = await run('node', [path.join(REPO_ROOT, 'dist', 'bench', 'compare.js'), '2', '--lineinfile', '--no-ansible', '--out', out], { timeoutMs: 300_000 });
    assert.is(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    const j = JSON.parse(readFileSync(out, 'utf8')) as BenchResult;
    rmSync(out, { force: true });
    rmSync(out.replace(/\.json$/, '.txt'), { force: true });
    assert.is(j.mode, 'lineinfile');
    const [install, rerun, rerun2, floor] = j.runs;
    // 14 lineinfile tasks on 2 hosts, every one a change on the seeded files
    assert.is(install!.changed, 28);
    assert.is(rerun!.changed, 0);
    assert.is(rerun2!.changed, 0);
    assert.is(floor!.job, 'floor');
    assert.is(floor!.exitCode, 0, 'the floor read every seeded file');
    assert.equal(j.targets.map((t) => t.what), ['pgtls controller peak RSS, first run', 'pgtls controller peak RSS, re-run']);
  });

  test('bench --busy: each PostgreSQL host sees the asked process count, with real idle sessions', async () => {
    const out = path.join(tmpdir(), `pgtls-bench-busy-${process.pid}.json`);
    const r = await run('node', [path.join(REPO_ROOT, 'dist', 'bench', 'compare.js'), '1', '--busy', '150', '--backends', '5', '--no-ansible', '--out', out], { timeoutMs: 300_000 });
    assert.is(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    const j = JSON.parse(readFileSync(out, 'utf8')) as BenchResult;
    rmSync(out, { force: true });
    rmSync(out.replace(/\.json$/, '.txt'), { force: true });
    assert.equal(j.busy?.processesPerHost, 150);
    assert.is(j.busy?.seen.length, 1);
    const seen = j.busy!.seen[0]!;
    assert.ok(seen >= 148 && seen <= 160, `pg1 sees ${seen} processes`);
    assert.is(j.runs[1]!.changed, 0, 'the busy host re-run changed nothing');
  });
}

test.run();
