// Fault suite, part 1: the controller interrupted (SIGINT, SIGTERM, a double Ctrl-C, SIGKILL) at
// seeded random points across install, reissue and uninstall, and the SSH connection cut while a
// file's content is in flight. One lab (pg1 primary, pg2 standby, pg3 Pgpool-II) for all of it.
// After every point: no file half-written, missing, empty or with a temp file; every server still
// serving (directly and through Pgpool-II); then a re-run converges and the next reports changed=0.
// PGTLS_FAULT_SEED=N replays a run; PGTLS_FAULT_POINTS / PGTLS_FAULT_CUTS set how many (default 30 / 20).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { haveLab } from './lab.js';
import {
  ALL_HOSTS, INSTALL, PG_CONF_DIR, REISSUE, UNINSTALL, WRITE_RE, attempt, checkAfterFault, checkServing, converge,
  countCommands, expectNone, faultLab, hostPath, learnStableLines, nthCommand, note, readTree, recover, requireLab, sameFiles, seededRandom, show, sleep,
  startAgent, summaryLine, totals, waitForCommand, type Agent, type FaultLab, type Problems,
} from './faults-lib.js';

let fl: FaultLab | undefined;
const clean: Record<string, number> = {};

test('lab up; a clean install, reissue and uninstall (their wall times bound the interrupt points)', async () => {
  if (!requireLab()) return;
  fl = await faultLab('faults-interrupts');
  for (const [name, playbook] of [['install', INSTALL], ['reissue', REISSUE], ['uninstall', UNINSTALL]] as const) {
    const r = await fl.pgtls(playbook);
    assert.is(r.code, 0, `${name}: ${show(r)}`);
    clean[name] = r.ms;
    if (name === 'install') learnStableLines(fl);
  }
  const f = fl;
  expectNone(ALL_HOSTS.flatMap((h) => sameFiles(f, h, f.originals[h]!, [...f.originals[h]!.keys()])), 'the clean uninstall restores every file');
  console.log(`  clean runs: ${JSON.stringify(clean)} ms`);
});

type Signal = 'SIGINT' | 'SIGTERM' | 'SIGKILL' | 'SIGINT×2';
const SIGNALS: readonly Signal[] = ['SIGINT', 'SIGTERM', 'SIGKILL', 'SIGINT×2'];

test('SIGINT, SIGTERM, double SIGINT and SIGKILL at random points of install, reissue and uninstall', async () => {
  if (!haveLab(fl)) return;
  const f = fl;
  const rnd = seededRandom('interrupts');
  const wanted = Number(process.env['PGTLS_FAULT_POINTS'] ?? 30);
  // Groups of 1-3 interrupted runs of one playbook in a row (each interrupting what the previous left),
  // then the re-run that must converge; install → reissue → uninstall → install …
  const cycle = [['install', INSTALL], ['reissue', REISSUE], ['uninstall', UNINSTALL]] as const;
  let points = 0;
  let afterEnd = 0;
  const failures: Problems = [];
  for (let g = 0; points < wanted; g++) {
    const [name, playbook] = cycle[g % cycle.length]!;
    const k = Math.min(rnd.int(1, 3), wanted - points);
    // keys a killed run's host was generating wait for the next run that gets as far as the host's lock
    let killedInGroup = false;
    for (let i = 0; i < k; i++) {
      const signal = rnd.pick(SIGNALS);
      const delay = rnd.int(150, Math.max(400, Math.floor(clean[name]! * 0.8)));
      const what = `point ${points + 1} (${name}, ${signal} at ${delay} ms)`;
      note(f, what);
      const p = f.spawnPgtls(playbook);
      // (the delay counts from when pgtls catches signals: on a loaded machine Node alone can take longer to start)
      await p.catching();
      await sleep(delay);
      if (p.exited()) {
        // The run was already over: not an interrupt point. An install or uninstall that ran to its
        // end leaves nothing to interrupt in this group (the next run would change nothing).
        afterEnd++;
        await p.done;
        if (name === 'reissue') continue;
        break;
      }
      points++;
      const problems = await attempt(f, 'interrupt', what, async () => {
        if (signal === 'SIGINT×2') {
          p.child.kill('SIGINT');
          await sleep(rnd.int(20, 400));
          if (!p.exited()) p.child.kill('SIGINT');
        } else p.child.kill(signal);
        const r = await p.done;
        const exit: Problems = [];
        if (signal === 'SIGKILL' && r.signal !== 'SIGKILL') exit.push(`SIGKILL did not kill it: ${show(r)}`);
        // The second SIGINT can land when the run has already ended and written its report, while the
        // process exits (Node has put the default handlers back): the kernel then ends it by the signal.
        // Nothing was left to quit; that is not a run that failed to exit 4.
        const signalledWhileExiting = signal === 'SIGINT×2' && r.signal === 'SIGINT' && r.report !== undefined && /^PLAY RECAP$/m.test(r.stdout);
        if (signal !== 'SIGKILL' && r.code !== 4 && r.code !== 0 && !signalledWhileExiting) exit.push(`an interrupted run exits 4: ${show(r)}`);
        if ((signal === 'SIGINT' || signal === 'SIGTERM') && r.code === 4)
          for (const [h, rep] of Object.entries(r.report?.hosts ?? {}))
            if (rep.status === 'interrupted' && !/rolled back to its last proven state|nothing was written since its last proven state/.test(rep.message ?? ''))
              exit.push(`${h} was interrupted mid-play, and the run does not say whether it was rolled back: ${rep.message ?? '(no message)'}`);
        if (signal === 'SIGKILL' || signal === 'SIGINT×2') killedInGroup = true;
        return [...exit, ...(await checkAfterFault(f, { abrupt: killedInGroup }))];
      });
      failures.push(...problems);
    }
    const what = `group ${g + 1} (${name}, after point ${points})`;
    const problems = await attempt(f, 'check', what, async () => {
      const c = name === 'reissue' ? await converge(f, REISSUE, INSTALL) : await converge(f, playbook);
      if (name !== 'uninstall' || c.length) return c;
      return ALL_HOSTS.flatMap((h) => sameFiles(f, h, f.originals[h]!, [...f.originals[h]!.keys()])).map((p) => `uninstall restores every file: ${p}`);
    });
    failures.push(...problems);
    if (problems.length) await recover(f, playbook);
  }
  console.log(`  ${points} interrupt points (${afterEnd} more fell after the end of their run)`);
  assert.ok(points >= wanted);
  expectNone(failures, `${failures.length} problems over ${points} interrupt points`);
});

const CUT_FILES = [`${PG_CONF_DIR}/postgresql.conf`, `${PG_CONF_DIR}/pg_hba.conf`];
// The tiny playbook of the cut test: two real config files of pg1 written per run (a comment line).
const CUT_PLAYBOOK = `- name: fault suite, connection cuts
  hosts: pg1
  tasks:
    - name: a comment in postgresql.conf
      lineinfile:
        path: ${PG_CONF_DIR}/postgresql.conf
        regexp: '^# pgtls fault suite:'
        line: "# pgtls fault suite: {{ mark }}"
    - name: a comment in pg_hba.conf
      lineinfile:
        path: ${PG_CONF_DIR}/pg_hba.conf
        regexp: '^# pgtls fault suite:'
        line: "# pgtls fault suite: {{ mark }}"
`;

test('the connection to pg1 cut while a file content is in flight (sshd behind a throttled relay)', async () => {
  if (!haveLab(fl)) return;
  const f = fl;
  const rnd = seededRandom('cuts');
  const wanted = Number(process.env['PGTLS_FAULT_CUTS'] ?? 20);
  const playbook = join(f.work, 'cut.yaml');
  writeFileSync(playbook, CUT_PLAYBOOK);
  // sshd moves to 127.0.0.1:2222 inside pg1; the relay takes its place on pg1's address, port 22
  // (same host key, same inventory: the controller cannot tell).
  const moved = await f.lab.exec('pg1', 'kill "$(cat /run/sshd.pid)"; rm -f /run/sshd.pid; /usr/sbin/sshd -E /var/log/auth.log -o ListenAddress=127.0.0.1 -o Port=2222');
  assert.is(moved.code, 0, moved.stderr);
  let relay: Agent | undefined;
  const failures: Problems = [];
  try {
    relay = await startAgent(f.lab, 'pg1', ['proxy', f.lab.ip('pg1'), '22', '127.0.0.1', '2222']);
    relay.send('rate 50000'); // a 30 kB postgresql.conf then takes ~0.6 s on the wire
    await relay.waitFor(/^rate/);
    const pristine = readTree(f.lab, 'pg1');
    const base = await f.pgtls(playbook, ['-e', 'mark=0']);
    assert.is(base.code, 0, show(base));
    // both files go in one commit at the end of the play (the executor holds writes until then)
    const writes = countCommands(base, 'pg1', WRITE_RE);
    assert.is(writes, 1, `the cut playbook commits pg1's two files at once: ${writes} commits`);
    let inFlight = 0;
    for (let i = 1; i <= wanted; i++) {
      const w = 1;
      const k = rnd.int(0, 40_000); // within postgresql.conf's ~30 kB or pg_hba.conf's, or after both
      const what = `cut ${i} (${k} bytes after the commit started)`;
      note(f, what);
      const problems = await attempt(f, 'fault', what, async () => {
        const p = f.spawnPgtls(playbook, ['-e', `mark=${i}`]);
        const started = await waitForCommand(p, nthCommand('pg1', WRITE_RE, w));
        if (!started) return [`the write never started: ${show(await p.done)}`];
        const before = relay!.lines.length;
        relay!.send(`cut ${k}`);
        const r = await p.done;
        const said = relay!.lines.slice(before).find((l) => l.startsWith('cut'));
        if (said && said !== 'cut none') inFlight++;
        const exit = r.code === 0 && said && said !== 'cut none' ? [`a run whose connection was cut exits 0: ${show(r)}`] : [];
        return [...exit, ...(await checkAfterFault(f)), ...(await converge(f, playbook, playbook, ['-e', `mark=${i}`]))];
      });
      failures.push(...problems);
      if (problems.length) {
        // pg1's two files as before the cuts (a re-run does not repair a truncated file), then again
        for (const file of CUT_FILES) writeFileSync(hostPath(f.lab, 'pg1', file), pristine.get(file)!);
        await recover(f, playbook);
      }
    }
    console.log(`  ${wanted} cuts, ${inFlight} of them while the run was sending`);
    expectNone(failures, `${failures.length} problems over ${wanted} cuts`);
  } finally {
    await relay?.stop();
    await f.lab.exec('pg1', 'kill "$(cat /run/sshd.pid)" 2>/dev/null; rm -f /run/sshd.pid; /usr/sbin/sshd -E /var/log/auth.log');
  }
  expectNone(await checkServing(f), 'after the cuts');
});

test('summary', () => {
  if (!haveLab(fl)) return;
  console.log(summaryLine('interrupts', fl.counts));
  console.log(summaryLine('so far (all fault files)', totals));
});

// teardown, not a test: it is not counted (a test must be able to fail)
test.after(async () => {
  await fl?.lab.down();
});

test.run();
