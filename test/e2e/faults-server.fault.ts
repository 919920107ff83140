// Fault suite, part 3: a server that does not come back, and two runs at once. One lab (pg1 primary,
// pg2 standby, pg3 Pgpool-II, SSH as root). The fault is planted from inside the host at the very
// moment pgtls installs a file (fault-agent.ts watches the rename), so it hits what this run wrote:
//   pg1's new server key made world-readable (PostgreSQL refuses it on reload) · port 9999 taken
//   while Pgpool-II restarts · a broken line in the pgpool.conf / postgresql.conf pgtls just wrote.
// Each → the host failed with the server's own log lines in the message, its files rolled back
// byte for byte, the server serving again; then a re-run converges and the next reports changed=0.
// Then two `pgtls run` at once on the same inventory: per host, one run does the work and the other
// waits for it or refuses naming it (never interleaved writes), nothing corrupted, a re-run converges.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { haveLab } from './lab.js';
import {
  ALL_HOSTS, INSTALL, PGPOOL_CONF_DIR, PG_CONF_DIR, REISSUE, UNINSTALL, WRITE_RE, attempt, checkAfterFault, converge, expectNone, faultLab,
  hostMessages, learnStableLines, readTree, recover, requireLab, sameFiles, show, sleep, startAgent, summaryLine, totals,
  type FaultLab, type PgtlsChild, type PgtlsRun, type Problems,
} from './faults-lib.js';

let fl: FaultLab | undefined;
const KEYS = '/var/lib/jelastic/keys/SSL-TLS';
const BROKEN = 'this = is = broken';

test('lab up; a clean install learns what every file keeps', async () => {
  if (!requireLab()) return;
  fl = await faultLab('faults-server');
  const r = await fl.pgtls(INSTALL);
  assert.is(r.code, 0, show(r));
  learnStableLines(fl);
});

/**
 * A server that does not come back: plant the fault with an agent on `host`, run `playbook`, then:
 * the host failed quoting its server's log (`log`), its files as before the run, everyone serving.
 */
async function serverFault(
  name: string,
  opts: { host: string; playbook: string; agent: string[]; log: RegExp; convergeWith: [string, string] },
): Promise<void> {
  if (!haveLab(fl)) return;
  const f = fl;
  const problems = await attempt(f, 'fault', name, async () => {
    const before = readTree(f.lab, opts.host);
    const agent = await startAgent(f.lab, opts.host, opts.agent);
    let r: PgtlsRun;
    try {
      r = await f.pgtls(opts.playbook);
    } finally {
      await agent.stop();
    }
    if (!agent.lines.some((l) => /^(fired|bound)/.test(l))) return [`the fault was not injected (the agent said ${JSON.stringify(agent.lines)}): ${show(r)}`];
    const out: Problems = [];
    if (r.code !== 1) out.push(`the run must fail (exit 1): ${show(r)}`);
    if (r.report?.hosts[opts.host]?.status !== 'failed') out.push(`${opts.host} is reported ${r.report?.hosts[opts.host]?.status}, not failed: ${show(r)}`);
    else if (!opts.log.test(hostMessages(r, opts.host))) out.push(`the message for ${opts.host} does not quote the server's log (${opts.log}): ${hostMessages(r, opts.host).trim()}`);
    // rolled back: every file as before the run (the executor's records of originals aside)
    const paths = [...new Set([...before.keys(), ...readTree(f.lab, opts.host).keys()])].filter((p) => !/^\/var\/lib\/pgtls\//.test(p));
    out.push(...sameFiles(f, opts.host, before, paths).map((p) => `rollback: ${p}`));
    out.push(...(await checkAfterFault(f)));
    out.push(...(await converge(f, opts.convergeWith[0], opts.convergeWith[1])));
    return out;
  });
  if (problems.length) await recover(f, INSTALL);
  expectNone(problems, name);
}

test("pg1's new server key readable by everyone (reissue): PostgreSQL refuses it on reload", () =>
  serverFault('bad key permissions', {
    host: 'pg1',
    playbook: REISSUE,
    agent: ['on-replace', `${KEYS}/server/server.key`, 'chmod', '644'],
    // PostgreSQL's log line, or pgtls's own check of the key that says the same before PostgreSQL does
    log: /group or world access|has mode 644 owned by postgres: PostgreSQL wants 0600/,
    convergeWith: [REISSUE, INSTALL],
  }));

test('port 9999 taken while Pgpool-II restarts (reissue)', () =>
  serverFault('port taken', {
    host: 'pg3',
    playbook: REISSUE,
    agent: ['squat', '9999', '/var/log/syslog', 'Address already in use|failed to create INET domain socket|bind'],
    // Pgpool-II's own FATAL line (its DETAIL names the error), quoted from its log
    log: /Address already in use|FATAL: +failed to create INET domain socket/,
    convergeWith: [REISSUE, INSTALL],
  }));

test('a broken line in the pgpool.conf pgtls just wrote (install)', async () => {
  if (!haveLab(fl)) return;
  const u = await fl.pgtls(UNINSTALL);
  assert.is(u.code, 0, `the uninstall before the case: ${show(u)}`);
  await serverFault('broken pgpool.conf', {
    host: 'pg3',
    playbook: INSTALL,
    agent: ['on-replace', `${PGPOOL_CONF_DIR}/pgpool.conf`, 'append', BROKEN],
    log: /syntax error in configuration file/,
    convergeWith: [INSTALL, INSTALL],
  });
});

test('a broken line in the postgresql.conf pgtls just wrote (install)', async () => {
  if (!haveLab(fl)) return;
  const u = await fl.pgtls(UNINSTALL);
  assert.is(u.code, 0, `the uninstall before the case: ${show(u)}`);
  await serverFault('broken postgresql.conf', {
    host: 'pg1',
    playbook: INSTALL,
    agent: ['on-replace', `${PG_CONF_DIR}/postgresql.conf`, 'append', BROKEN],
    // PostgreSQL's log line, or pg_ctlcluster's own check of the file (it refuses to reload it)
    log: /syntax error in file|invalid line \d+ in \/etc\/postgresql\/15\/main\/postgresql\.conf: this = is = broken/,
    convergeWith: [INSTALL, INSTALL],
  });
});

/** When each line of a run's command log appeared (polled every 15 ms while the run lasts). */
function watchCommands(p: PgtlsChild): { lines: { t: number; host: string; cmd: string }[]; stop: () => void } {
  const lines: { t: number; host: string; cmd: string }[] = [];
  let seen = 0;
  const poll = (): void => {
    const all = readFileSync(p.commandLog, 'utf8').split('\n');
    const t = Date.now();
    for (; seen < all.length - 1; seen++) {
      const l = all[seen]!;
      const tab = l.indexOf('\t');
      lines.push({ t, host: l.slice(0, tab), cmd: l.slice(tab + 1) });
    }
  };
  const timer = setInterval(poll, 15);
  return { lines, stop: () => { clearInterval(timer); poll(); } };
}

const LOCK_MESSAGE = /another pgtls run|run lock|locked by|lock held|is locked|in progress/i;

async function twoAtOnce(name: string, playbook: string): Promise<void> {
  if (!haveLab(fl)) return;
  const f = fl;
  const problems = await attempt(f, 'fault', name, async () => {
    const a = f.spawnPgtls(playbook);
    const wa = watchCommands(a);
    await sleep(300);
    const b = f.spawnPgtls(playbook);
    const wb = watchCommands(b);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    wa.stop();
    wb.stop();
    const runs = [[ra, wa], [rb, wb]] as const;
    const out: Problems = [];
    for (const [r] of runs) if (r.code !== 0 && r.code !== 1) out.push(`a run ended with exit ${r.code}, neither ok nor refused: ${show(r)}`);
    for (const h of ALL_HOSTS) {
      // the other run's lock is a refusal naming it, never "unreachable" (the host answered)
      for (const [r] of runs) if (r.report?.hosts[h]?.status === 'unreachable') out.push(`a run called ${h} unreachable while the other held its lock: ${hostMessages(r, h).trim()}`);
      const refused = runs.filter(([r]) => r.report?.hosts[h]?.status === 'failed');
      if (refused.length === 2) out.push(`${h}: both runs failed it, neither did the work:\n${show(ra)}\n${show(rb)}`);
      for (const [r] of refused)
        if (!LOCK_MESSAGE.test(hostMessages(r, h))) out.push(`a run failed ${h} without naming the other run: ${hostMessages(r, h).trim()}`);
      if (refused.length) continue;
      // both worked on h: then one after the other, never interleaved
      const [wa1, wb1] = runs.map(([, w]) => w.lines.filter((l) => l.host === h && WRITE_RE.test(l.cmd)).map((l) => l.t)) as [number[], number[]];
      if (wa1.length === 0 || wb1.length === 0) continue;
      if (!(Math.max(...wa1) <= Math.min(...wb1) || Math.max(...wb1) <= Math.min(...wa1)))
        out.push(`on ${h} the two runs wrote at the same time (${wa1.length} and ${wb1.length} writes interleaved): the second must wait for the first or refuse`);
    }
    out.push(...(await checkAfterFault(f)));
    out.push(...(await converge(f, playbook)));
    return out;
  });
  if (problems.length) await recover(f, playbook);
  expectNone(problems, name);
}

test('two uninstalls at once on the same inventory', () => twoAtOnce('two uninstalls at once', UNINSTALL));
test('two installs at once on the same inventory', () => twoAtOnce('two installs at once', INSTALL));

// teardown, not a test: it is not counted (a test must be able to fail)
test.after(async () => {
  if (fl) {
    console.log(summaryLine('server', fl.counts));
    console.log(summaryLine('so far (all fault files)', totals));
  }
  await fl?.lab.down();
});

test.run();
