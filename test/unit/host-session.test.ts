// Executor unit tests (HostSession on a fake Transport): the --check overlay, the journal and rollback on a
// failed verify, `touches`, controller-side (local) actions, and applyPlan's replan/verify-only rules.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyPlan } from '../../src/core/apply-plan.js';
import { statWithOverlay } from '../../src/core/path-stat.js';
import { SharedSteps } from '../../src/core/shared-steps.js';
import { defineLocalOp, defineVerifier, type Action, type Change, type LocalAction } from '../../src/lib/plan-types.js';
import { actionRegistry, type ActionRegistry } from '../../src/core/run-state.js';
import { runLocalOp } from '../../src/core/host-session.js';
import { sh } from '../../src/lib/sh.js';
import { HostShell } from '../../src/remote/host-shell.js';
import { TaskError } from '../../src/lib/errors.js';
import { Secret } from '../../src/lib/secret.js';
import { FakeTransport, fakeSession as fakeModuleSession, shellWords } from './fake-host.js';

// the write path's host scripts answer "done" (their own behaviour has tests of its own: write-path.test.ts)
const WRITE_PATH = { match: /pgtls-(lock|unlock|commit|write|remove|rollback|prepare|record)\b/, stdout: '' };
// no originals tracked, and no signing key (the repository's working directory may hold one)
const VARS = { pgtls_track_originals: false, pgtls_state_dir: '/var/lib/pgtls/state', pgtls_state_key_file: '/nonexistent/pgtls-test.state.key' };

const scriptsRun = (t: FakeTransport) =>
  t.log.map((l) => shellWords(l.cmd)).filter((w) => w[0] === 'sh' && w[1] === '-c').map((w) => ({ name: w[3]!, args: w.slice(4) }));

const write = (path: string, text: string): Action => ({ kind: 'write', path, content: Buffer.from(text) });

// Plans name their checks and controller steps; these are the test's own, recording what ran.
const ran: string[] = [];
const REGISTRY: ActionRegistry = actionRegistry([
  {
    name: 'test',
    verifiers: [
      defineVerifier('test.record', async (_ctx, p: { name: string }) => void ran.push(p.name)),
      defineVerifier('test.fail', async (_ctx, p: { why: string }) => Promise.reject(new Error(p.why))),
      // a check that asks twice, like the reload check's polls: its first question, then one more
      defineVerifier('test.asks', async (ctx) => {
        const first = (await ctx.query(sh`ask loaded`)).stdout.toString();
        const second = (await ctx.query(sh`ask served`)).stdout.toString();
        ran.push(`${first}+${second}`);
      }),
    ],
    localOps: [defineLocalOp('test.step', async (_t, p: { name: string; says: string | null }, simulate) => (ran.push(simulate ? `sim ${p.name}` : p.name), simulate && p.says ? `would ${p.says}` : p.says))],
  },
]);
const passes = (name: string) => ({ verifier: 'test.record', params: { name } });
const fails = (why: string) => ({ verifier: 'test.fail', params: { why } });
/** The fake host's executor, with the test's verifiers and controller steps. */
function fakeSession(...args: Parameters<typeof fakeModuleSession>): ReturnType<typeof fakeModuleSession> {
  const f = fakeModuleSession(...args);
  f.session.registry = REGISTRY;
  return f;
}

test('--check: a write goes to the overlay; readFile and stat answer from it; the host sees no write', async () => {
  const f = fakeSession({ files: { '/etc/a.conf': { content: 'old\n', mtime: 100 } }, answers: [WRITE_PATH] }, { check: true, vars: VARS });
  await f.session.apply([write('/etc/a.conf', 'new\n'), { kind: 'remove', path: '/etc/b' }], f.ctx);
  assert.is((await f.ctx.readFile('/etc/a.conf'))!.content.toString(), 'new\n');
  const st = await f.ctx.stat(['/etc/a.conf', '/etc/b', '/etc/none']);
  assert.ok(st.get('/etc/a.conf')!.pending);
  assert.is(st.get('/etc/a.conf')!.mtime, Infinity);
  assert.is(st.get('/etc/a.conf')!.size, 4);
  assert.not.ok(st.has('/etc/b'), 'a planned removal is absent');
  assert.equal(scriptsRun(f.transport).filter((s) => s.name !== 'pgtls-read').map((s) => s.name), [], 'no write, no lock');
  assert.is(f.transport.files.get('/etc/a.conf')!.content.toString(), 'old\n', 'the host is untouched');
});

test('--check: exec and verify do not run; an exec writing when applied marks its paths changed', async () => {
  const f = (fakeSession({ files: { '/k/server.crt': 'cert' } }, { check: true, vars: VARS }));
  ran.length = 0;
  await f.session.apply(
    [
      { kind: 'exec', description: 'keygen', cmd: sh`false`, writesWhenApplied: ['/k/server.crt', '/k/server.key'] },
      { kind: 'verify', description: 'v', ...passes('v') },
    ],
    f.ctx,
  );
  assert.equal(ran, [], 'no verify in --check');
  assert.not.ok(f.transport.log.some((l) => l.cmd === 'false'), 'the command did not run');
  const st = await f.ctx.stat(['/k/server.crt', '/k/server.key']);
  assert.ok(st.get('/k/server.crt')?.pending && st.get('/k/server.key')?.pending);
});

test('real run: stat of a path not planned comes from the host (nanoseconds, or whole seconds bumped)', async () => {
  const f = fakeSession({ files: { '/etc/a': { content: 'x', mtime: 1234.5, ctime: 1300 } } });
  const st = (await f.ctx.stat(['/etc/a', '/nope'])).get('/etc/a')!;
  assert.equal([st.mtime, st.ctime, st.size, st.pending], [1234.5, 1300, 1, undefined]);
  assert.not.ok((await f.ctx.stat(['/nope'])).has('/nope'));
  const sums = await f.ctx.stat(['/etc/a'], { sha256: true });
  assert.is(sums.get('/etc/a')!.sha256, '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881');
  // an old stat that cannot print %.9Y: nothing parses, whole seconds are asked and counted as the end of that second
  const old = new FakeTransport({}, [{ match: /%\.9Y/, stdout: '' }, { match: /stat -L -c '%Y %Z %s %n'/, stdout: '2000 2000 1 /etc/a\n' }]);
  const g = fakeSession({}, { transport: old });
  const o = (await g.ctx.stat(['/etc/a'])).get('/etc/a')!;
  assert.ok(o.mtime > 2000.99 && o.mtime < 2001);
});

test('real run: a held write is "pending" to stat, even when asking the host about other paths commits it', async () => {
  const f = fakeSession({ files: { '/etc/other': { content: 'o', mtime: 50 } }, answers: [WRITE_PATH] }, { vars: VARS });
  await f.session.apply([write('/etc/a.conf', 'new\n')], f.ctx);
  const st = await f.ctx.stat(['/etc/a.conf', '/etc/other']);
  assert.ok(st.get('/etc/a.conf')?.pending, 'the planned write counts as a change in this run');
  assert.is(st.get('/etc/other')!.mtime, 50);
  assert.ok(scriptsRun(f.transport).some((x) => x.name === 'pgtls-commit'), 'the probe committed the held write first');
});

test('real run: a failed verify restores the journal (newest first) and runs recover; the host fails', async () => {
  const f = fakeSession({ answers: [WRITE_PATH, { match: /^reload$/, stdout: '' }] }, { vars: VARS });
  let err: Error | undefined;
  try {
    await f.session.apply(
      [
        write('/etc/a', '1'),
        write('/etc/b', '2'),
        { kind: 'exec', description: 'reload', cmd: sh`reload` },
        { kind: 'verify', description: 'login check', ...fails('refused'), recover: { kind: 'exec', description: 'reload again', cmd: sh`reload` } },
      ],
      f.ctx,
    );
  } catch (e) {
    err = e as Error;
  }
  assert.ok(err, 'the apply fails');
  assert.match(err!.message, /^login check failed: refused \(previous files restored, reload again done\)$/);
  const s = scriptsRun(f.transport);
  // the commit and the reload in one round trip (batch.sh first-parallel: the commit first and alone)
  assert.equal(s.map((x) => x.name), ['pgtls-lock', 'pgtls-batch', 'pgtls-commit', 'pgtls-rollback'], 'both writes in one commit, before the reload');
  assert.equal(s[1]!.args.slice(0, 2), ['first-parallel', '10']);
  assert.match(s[1]!.args[3]!, /^reload$/);
  assert.equal(s[3]!.args.slice(1), ['restore', 'testrun-1', '/etc/b', '/etc/a']);
  assert.is(f.transport.log.filter((l) => l.cmd === 'reload').length, 2, 'the reload, then recover');
});

test('real run: a passing verify drops the rollback copies; keepRollback keeps them for a later verify', async () => {
  const f = fakeSession({ answers: [WRITE_PATH] }, { vars: VARS });
  await f.session.apply([write('/etc/a', '1'), { kind: 'verify', description: 'pre', keepRollback: true, ...passes('pre') }], f.ctx);
  assert.not.ok(scriptsRun(f.transport).some((s) => s.name === 'pgtls-rollback'), 'nothing dropped yet');
  await f.session.apply([{ kind: 'verify', description: 'after', ...passes('after') }], f.ctx);
  // (dropped in the host's next round trip: the unlock here)
  await f.session.finish();
  const drop = scriptsRun(f.transport).find((s) => s.name === 'pgtls-rollback')!;
  assert.equal(drop.args.slice(1), ['drop', 'testrun-1', '/etc/a']);
});

test('real run: a readOnly verify that fails puts nothing back', async () => {
  const f = fakeSession({ answers: [WRITE_PATH] }, { vars: VARS });
  await f.session.apply([write('/etc/a', '1')], f.ctx);
  try {
    await f.session.apply([{ kind: 'verify', readOnly: true, description: 'walsenders', ...fails('plaintext') }], f.ctx);
    assert.unreachable();
  } catch (e) {
    assert.is((e as Error).message, 'plaintext');
  }
  assert.not.ok(scriptsRun(f.transport).some((s) => s.name === 'pgtls-rollback'));
});

test('real run: `touches` are prepared (kept for rollback) before the command, and journaled', async () => {
  const f = fakeSession({ answers: [WRITE_PATH, { match: /^install-key$/, stdout: '' }] }, { vars: VARS });
  await f.session.apply([{ kind: 'exec', description: 'install key', cmd: sh`install-key`, touches: ['/k/server.key'] }], f.ctx);
  const names = scriptsRun(f.transport).map((s) => s.name);
  assert.equal(names, ['pgtls-lock', 'pgtls-prepare']);
  assert.ok(f.transport.log.findIndex((l) => l.cmd === 'install-key') > f.transport.log.findIndex((l) => /pgtls-prepare/.test(l.cmd)));
  await f.session.rollback();
  const rb = scriptsRun(f.transport).find((s) => s.name === 'pgtls-rollback')!;
  assert.equal(rb.args.slice(1), ['restore', 'testrun-1', '/k/server.key']);
});

test('local actions: run in a real run, simulated in --check; a shared step goes to the run and counts once', async () => {
  ran.length = 0;
  const calls = ran;
  const action: LocalAction = { kind: 'local', description: 'make CA', op: 'test.step', params: { name: 'run', says: 'make' } };
  const real = (fakeSession({}));
  assert.equal(await real.session.apply([action], real.ctx), { outcome: 'make' });
  const dry = (fakeSession({}, { check: true }));
  assert.equal(await dry.session.apply([action], dry.ctx), { outcome: 'would make' });
  assert.equal(calls, ['run', 'sim run']);

  const steps = new SharedSteps();
  const shared: LocalAction = { kind: 'local', description: 'remove the CA', shared: '/ca', op: 'test.step', params: { name: 'shared', says: null } };
  const a = (fakeSession({}, { host: 'pg1' }));
  const b = (fakeSession({}, { host: 'pg2' }));
  const runShared = (x: LocalAction) => runLocalOp(REGISTRY, { runState: a.ctx.runState, writeFile: async () => undefined }, x, false);
  a.session.shareStep = (k, x) => steps.add(k, 'pg1', x);
  b.session.shareStep = (k, x) => steps.add(k, 'pg2', x);
  assert.equal(await a.session.apply([shared], a.ctx), {}, 'the first host reports the change');
  assert.equal(await b.session.apply([shared], b.ctx), { outcome: null }, 'the second joins it');
  assert.equal(await steps.runAll((h) => (h === 'pg2' ? 'failed' : 'ok'), runShared), ['remove the CA: not done, pg2 did not finish']);
  assert.not.ok(calls.includes('shared'), 'one failed host keeps the shared CA');
  steps.add('/ca', 'pg1', shared);
  assert.equal(await steps.runAll(() => 'ok', runShared), []);
  assert.ok(calls.includes('shared'));
});

test('applyPlan: a real run applies up to a replan change and plans again; --check applies all, conditional', async () => {
  const planned: Change[][] = [
    [
      { summary: 'create the CA', replan: true, actions: [] },
      { summary: 'issue with a stand-in', actions: [] },
    ],
    [{ summary: 'issue from the CA', actions: [] }],
  ];
  let round = 0;
  const applied: string[] = [];
  const ctx = fakeSession({}).ctx;
  const plan = async () => planned[Math.min(round++, 1)]!;
  const apply = async () => ({});
  const real = await applyPlan(plan, async (a) => (applied.push(String(a.length)), apply()), ctx, false);
  assert.equal(real.summaries, ['create the CA', 'issue from the CA']);
  round = 0;
  const dry = await applyPlan(plan, apply, ctx, true);
  assert.equal(dry.summaries, ['would create the CA', 'conditional change: would issue with a stand-in']);
  const verifyOnly = await applyPlan(async () => [{ summary: 'check the login', verifyOnly: true, conditional: true, actions: [{ kind: 'verify', description: 'login', ...passes('login') }] }], apply, ctx, false);
  assert.is(verifyOnly.changed, false, 'a verify-only change leaves the task ok');
  assert.equal(verifyOnly.planned.map((p) => [p.kind, p.description, p.conditional]), [['verify', 'login', true]]);
});

test('applyPlan: planned actions carry a hash and length, never the content', async () => {
  const ctx = fakeSession({}).ctx;
  const r = await applyPlan(async () => [{ summary: 'write', actions: [write('/etc/secret.conf', 'password=hunter2\n')] }], async () => ({}), ctx, true);
  const text = JSON.stringify(r.planned);
  assert.not.ok(text.includes('hunter2'));
  assert.is(r.planned[0]!.bytes, 17);
  assert.match(r.planned[0]!.sha256!, /^[0-9a-f]{64}$/);
});

test('stat: a planned file stays "changed by this run" when asking the host commits it meanwhile; the host is asked the same question either way', async () => {
  const overlay = new Map<string, { content: Buffer; mode: string; owner: string; group: string } | null>([
    ['/etc/pg/postgresql.conf', { content: Buffer.from('ssl = on\n'), mode: '644', owner: 'postgres', group: 'postgres' }],
  ]);
  const got = await statWithOverlay(overlay, ['/etc/pg/postgresql.conf', '/etc/pg/pg_hba.conf'], async (rest) => {
    // (every path: the next run's replay record asks this identical query in its first round trip)
    assert.equal(rest, ['/etc/pg/postgresql.conf', '/etc/pg/pg_hba.conf'], 'every path, planned or not');
    overlay.clear(); // the probe waited for the pending writes: they are on the host now
    return new Map([
      ['/etc/pg/postgresql.conf', { mtime: 1, ctime: 1, size: 9 }],
      ['/etc/pg/pg_hba.conf', { mtime: 1, ctime: 1, size: 3 }],
    ]);
  });
  assert.ok(got.get('/etc/pg/postgresql.conf')?.pending, 'still newer than the last reload (a restart plans its reload)');
  assert.is(got.get('/etc/pg/pg_hba.conf')?.mtime, 1);
});

test("a command's output is read by the task's next planning round (replan); --check runs no command and has none", async () => {
  for (const check of [false, true]) {
    const f = fakeSession({ answers: [WRITE_PATH, { match: /^print-csr$/, stdout: 'CSR-1' }] }, { check, vars: VARS });
    const seen: (string | undefined)[] = [];
    const plan = async (): Promise<Change[]> => {
      const out = f.ctx.output('test.csr');
      seen.push(out?.toString());
      if (out) return [{ summary: 'issue', actions: [write('/k/server.crt', `signed ${out.toString()}`)] }];
      return [{ summary: 'issue', replan: true, actions: [{ kind: 'exec', description: 'keygen', cmd: sh`print-csr`, output: 'test.csr', writesWhenApplied: ['/k/server.crt'] }] }];
    };
    const applied = await applyPlan(plan, (a, c) => f.session.apply(a, c), f.ctx, check);
    assert.equal(seen, check ? [undefined] : [undefined, 'CSR-1'], check ? 'one round in --check' : 'planned again with the output');
    assert.equal(applied.summaries, [check ? 'would issue' : 'issue'], 'the same change, reported once');
    // a new task's context forgets the previous task's outputs
    assert.is(f.session.context({}, () => undefined).output('test.csr'), undefined);
  }
});

test('a verify or local action naming nothing the registry knows is a clear bug, not a silent pass', async () => {
  const f = fakeSession({ answers: [WRITE_PATH] }, { vars: VARS });
  for (const action of [
    { kind: 'verify', description: 'v', verifier: 'no.such', params: {} },
    { kind: 'local', description: 'l', op: 'no.such', params: {} },
  ] as Action[]) {
    try {
      await f.session.apply([action], f.ctx);
      assert.unreachable();
    } catch (e) {
      assert.match((e as Error).message, /^bug: no (verifier|controller operation) named no\.such/);
    }
  }
});


test('declared probes: asked with the lock (as their user), answer as many queries as declared them, then ask again', async () => {
  let asked = 0;
  const sql = sh`psql -c ${'select 1'}`;
  const f = fakeSession({ answers: [WRITE_PATH, { match: /psql -c/, user: 'postgres', stdout: () => `answer ${++asked}\n` }] }, { vars: VARS });
  f.session.expectQueries([{ cmd: sql, user: 'postgres' }, { cmd: sql, user: 'postgres' }]);
  await f.session.begin(VARS, () => undefined);
  const commands = f.transport.log.length;
  const first = await f.ctx.query(sql, { user: 'postgres' });
  const second = await f.ctx.query(sql, { user: 'postgres' });
  assert.is(f.transport.log.length, commands, 'both answered by what the lock round trip asked');
  assert.is(first.stdout.toString(), 'answer 1\n');
  assert.is(second.stdout.toString(), 'answer 1\n');
  const third = await f.ctx.query(sql, { user: 'postgres' });
  assert.is(third.stdout.toString(), 'answer 2\n', 'a third identical query (a retry) asks the host');
  assert.is(f.transport.log.length, commands + 1);
});

test("declared probes: a change on ANOTHER host of the run (a Pgpool-II restart) makes the kept answer stale", async () => {
  const sql = sh`psql -c ${'select sessions'}`;
  let asked = 0;
  const a = fakeSession({ answers: [WRITE_PATH, { match: /psql -c/, stdout: () => `sessions ${++asked}\n` }] }, { vars: VARS });
  const b = fakeSession({ answers: [WRITE_PATH, { match: /restart/, stdout: '' }] }, { vars: VARS, host: 'pg3' });
  b.session.runState = a.session.runState; // one run
  a.session.expectQueries([{ cmd: sql }]);
  await a.session.begin(VARS, () => undefined);
  await b.session.apply([{ kind: 'exec', description: 'restart', cmd: sh`restart` }], b.ctx);
  const got = await a.ctx.query(sql);
  assert.is(got.stdout.toString(), 'sessions 2\n', 'asked again after the other host changed');
  assert.is(asked, 2);
});

test('queries with stdin asked together (password logins to two backends) go in ONE round trip, each with its own stdin', async () => {
  const login = (host: string) => sh`psql ${`host=${host}`} -f -`;
  const f = fakeSession({ answers: [WRITE_PATH, { match: /psql host=/, stdout: (cmd, stdin) => `${cmd.includes('b1') ? 'b1' : 'b2'} got ${stdin}\n` }] }, { vars: VARS });
  const before = f.transport.log.length;
  const [one, two] = await Promise.all([
    f.ctx.query(login('b1'), { stdin: new Secret('pw-one'), timeoutMs: 20_000 }),
    f.ctx.query(login('b2'), { stdin: new Secret('pw-two'), timeoutMs: 20_000 }),
  ]);
  assert.is(one.stdout.toString(), 'b1 got pw-one\n');
  assert.is(two.stdout.toString(), 'b2 got pw-two\n');
  // (the fake host logs a batch, then each of its commands)
  const sent = f.transport.log.slice(before);
  assert.is(sent.filter((l) => /pgtls-batch/.test(l.cmd)).length, 1, 'one batch');
  assert.is(sent.filter((l) => !/pgtls-batch/.test(l.cmd)).length, 2, 'nothing asked outside it');
  assert.not.ok(sent.some((l) => l.cmd.includes('pw-one')), 'no password in a command line');
});

test('a lock refused in the first round trip fails the host when it would begin, with the refusal', async () => {
  const f = fakeSession({ answers: [WRITE_PATH] }, { vars: VARS });
  const shell = new HostShell(f.transport, 'root', false);
  f.session.keepFirstTrip({ lockRefused: new TaskError('another pgtls run is in progress on this host (run=x)'), reads: [], replayed: [] }, shell, '/var/lib/pgtls/state');
  const e = await f.session.begin(VARS, () => undefined).catch((x: Error) => x);
  assert.instance(e, TaskError);
  assert.match((e as Error).message, /another pgtls run is in progress/);
  assert.not.ok(scriptsRun(f.transport).some((x) => x.name === 'pgtls-lock'), 'no second try at the lock');
});

test("the server's facts (ctx.memo) outlive file writes, held and committed, and are found again after a command", async () => {
  const f = fakeSession({ files: { '/etc/a.conf': { content: 'old\n', mtime: 100 } }, answers: [WRITE_PATH, { match: /^true$/, stdout: '' }] }, { vars: VARS });
  let found = 0;
  const facts = () => f.ctx.memo('test:server', async () => ++found);
  assert.is(await facts(), 1);
  await f.session.apply([write('/etc/a.conf', 'new\n')], f.ctx);
  assert.is(await facts(), 1, 'a held write');
  await f.session.commit();
  assert.ok(scriptsRun(f.transport).some((x) => x.name === 'pgtls-commit'), 'the write was committed');
  assert.is(await facts(), 1, 'a committed write');
  await f.session.apply([{ kind: 'verify', description: 'check', ...passes('read-only'), readOnly: true }], f.ctx);
  assert.is(await facts(), 1, 'a read-only verify');
  await f.session.apply([{ kind: 'exec', description: 'reload', cmd: sh`true`, leavesAlone: ['files', 'server'] }], f.ctx);
  assert.is(await facts(), 1, 'a command that leaves the server alone (a reload)');
  await f.session.apply([{ kind: 'exec', description: 'restart', cmd: sh`true` }], f.ctx);
  assert.is(await facts(), 2, 'a command that may restart the server');
});

test("an exec that leaves the files alone (SQL, temp keys) keeps the run's reads; any other exec, or one that touches a file, does not", async () => {
  const f = fakeSession({ files: { '/etc/a.conf': { content: 'old\n', mtime: 100 } }, answers: [WRITE_PATH, { match: /^true$/, stdout: '' }] }, { vars: VARS });
  const reads = () => scriptsRun(f.transport).filter((x) => /^pgtls-read/.test(x.name)).length;
  await f.ctx.readFile('/etc/a.conf');
  const n = reads();
  await f.session.apply([{ kind: 'exec', description: 'ALTER ROLE', cmd: sh`true`, leavesAlone: ['files', 'server'] }], f.ctx);
  await f.ctx.readFile('/etc/a.conf');
  assert.is(reads(), n, 'kept');
  await f.session.apply([{ kind: 'verify', description: 'check', ...passes('a check only asks') }], f.ctx);
  await f.ctx.readFile('/etc/a.conf');
  assert.is(reads(), n, 'kept across a passing check');
  await f.session.apply([{ kind: 'exec', description: 'fix a key', cmd: sh`true`, leavesAlone: ['files'], touches: ['/etc/key'] }], f.ctx);
  await f.ctx.readFile('/etc/a.conf');
  assert.is(reads(), n + 1, 'a command that touches a file: read again');
  await f.session.apply([{ kind: 'exec', description: 'anything', cmd: sh`true` }], f.ctx);
  await f.ctx.readFile('/etc/a.conf');
  assert.is(reads(), n + 2, 'read again');
});

test('a local step independent of the host (a new CA) neither commits the held writes nor forgets what was read', async () => {
  const registry = actionRegistry([
    { name: 'test', localOps: [defineLocalOp('test.free', async () => void ran.push('free'), { independentOfHost: true }), defineLocalOp('test.bound', async () => void ran.push('bound'))] },
  ]);
  const f = fakeModuleSession({ files: { '/etc/a.conf': { content: 'old\n', mtime: 100 } }, answers: [WRITE_PATH] }, { vars: VARS });
  f.session.registry = registry;
  await f.ctx.readFile('/etc/a.conf');
  const reads = () => scriptsRun(f.transport).filter((x) => /^pgtls-read/.test(x.name)).length;
  const commits = () => scriptsRun(f.transport).filter((x) => x.name === 'pgtls-commit').length;
  const readsBefore = reads();
  await f.session.apply([write('/etc/b.conf', 'b\n'), { kind: 'local', description: 'free', op: 'test.free', params: {} }], f.ctx);
  await f.ctx.readFile('/etc/a.conf');
  assert.is(commits(), 0, 'the held write waits');
  assert.is(reads(), readsBefore, 'the read still holds');
  // a step that may depend on the host's files: the held writes go first, reads are asked again
  await f.session.apply([{ kind: 'local', description: 'bound', op: 'test.bound', params: {} }], f.ctx);
  assert.is(commits(), 1);
  await f.ctx.readFile('/etc/a.conf');
  assert.ok(reads() > readsBefore);
});

test('a commit forgets only the files it wrote; one whose content, owner and mode the run set is known without reading it back', async () => {
  const files = { '/etc/a.conf': { content: 'a\n', mtime: 100 }, '/etc/b.conf': { content: 'b\n', mtime: 100 }, '/etc/c.conf': { content: 'c\n', mtime: 100 } };
  // (the fake's own read and commit: only the lock and the records are answered as done)
  const f = fakeSession({ files, answers: [{ match: /' pgtls-(lock|unlock|prepare|record|sign)\b/, stdout: '' }] }, { vars: VARS });
  assert.is(f.ctx.effectiveUser, 'root', '(the fake logs in as root)');
  const reads = () => scriptsRun(f.transport).filter((x) => /^pgtls-read/.test(x.name)).length;
  await Promise.all(['/etc/a.conf', '/etc/b.conf', '/etc/c.conf'].map((p) => f.ctx.readFile(p)));
  const n = reads();
  await f.session.apply([{ kind: 'write', path: '/etc/a.conf', content: Buffer.from('A\n'), mode: '640', owner: 'root', group: 'postgres' }, write('/etc/b.conf', 'B\n')], f.ctx);
  await f.session.commit();
  assert.equal({ ...(await f.ctx.readFile('/etc/a.conf'))!, content: (await f.ctx.readFile('/etc/a.conf'))!.content.toString() }, { content: 'A\n', mode: '640', owner: 'root', group: 'postgres' });
  assert.is((await f.ctx.readFile('/etc/c.conf'))!.content.toString(), 'c\n');
  assert.is(reads(), n, 'neither the written file nor the untouched one is read again');
  // a write that left owner and mode to the file it replaced: read back
  await f.ctx.readFile('/etc/b.conf');
  assert.is(reads(), n + 1);
});

test('a recovery that fails is tried again (the port may be free a moment later), at most three times, and the error says so', async () => {
  let tries = 0;
  // the first two recoveries fail (the port still taken), the third works
  const firstTwo = { test: (cmd: string) => cmd === 'start' && ++tries <= 2 } as RegExp;
  const f = fakeSession({ answers: [WRITE_PATH, { match: /^true$/, stdout: '' }, { match: firstTwo, exitCode: 1, stderr: 'port 9999 taken' }, { match: /^start$/, stdout: '' }] }, { vars: VARS });
  let err: Error | undefined;
  try {
    await f.session.apply([write('/etc/a', '1'), { kind: 'exec', description: 'restart', cmd: sh`true`, okCodes: [0] }, { kind: 'verify', description: 'serves', ...fails('port taken'), recover: { kind: 'exec', description: 'start again', cmd: sh`start` } }], f.ctx);
  } catch (e) {
    err = e as Error;
  }
  assert.match(err?.message ?? '', /^serves failed: port taken \(previous files restored, start again done \(attempt 3\)\)$/);
});

test('a command riding the commit: when the commit fails, the command does not run and the error is the commit\'s (no recovery)', async () => {
  const f = fakeSession({ answers: [{ match: /' pgtls-commit\b/, exitCode: 1, stderr: 'No space left on device' }, WRITE_PATH, { match: /^reload$/, stdout: '' }] }, { vars: VARS });
  let err: Error | undefined;
  try {
    await f.session.apply([write('/etc/a', '1'), { kind: 'exec', description: 'reload', cmd: sh`reload` }, { kind: 'verify', description: 'check', ...passes('never') }], f.ctx);
  } catch (e) {
    err = e as Error;
  }
  assert.match(err?.message ?? '', /^writing \/etc\/a: .*No space left on device/);
  assert.is(f.transport.log.filter((l) => l.cmd === 'reload').length, 0, 'the command after a failed commit never runs');
  assert.not.ok(scriptsRun(f.transport).some((x) => x.name === 'pgtls-rollback'), 'no recovery: nothing was changed');
});

test('a question riding the commit gets the files as committed; when the commit fails it is not asked', async () => {
  const f = fakeSession({ answers: [WRITE_PATH, { match: /^cat \/etc\/a$/, stdout: 'as committed' }] }, { vars: VARS });
  await f.session.apply([write('/etc/a', '1')], f.ctx);
  const r = await f.ctx.query(sh`cat /etc/a`);
  assert.is(r.stdout.toString(), 'as committed');
  const s = scriptsRun(f.transport);
  assert.equal(s.map((x) => x.name), ['pgtls-lock', 'pgtls-batch', 'pgtls-commit'], 'one round trip: the commit, then the question');
  assert.is(s[1]!.args[0], 'first-parallel');
  const g = fakeSession({ answers: [{ match: /' pgtls-commit\b/, exitCode: 1, stderr: 'read-only file system' }, WRITE_PATH, { match: /^cat \/etc\/a$/, stdout: 'x' }] }, { vars: VARS });
  await g.session.apply([write('/etc/a', '1')], g.ctx);
  let err: Error | undefined;
  await g.ctx.query(sh`cat /etc/a`).catch((e: Error) => void (err = e));
  assert.match(err?.message ?? '', /^writing \/etc\/a: .*read-only file system/);
  assert.is(g.transport.log.filter((l) => l.cmd === 'cat /etc/a').length, 0);
});

test('an answer fetched ahead counts once more when its task plans again after a step that changed no host (a new CA), not after a change', async () => {
  const { KeptAnswers } = await import('../../src/core/kept-answers.js');
  let stamp = { host: 0, run: 0 };
  const kept = new KeptAnswers(() => stamp);
  const probe = { cmd: sh`probe keys` };
  const answer = { command: 'probe keys', exitCode: 0, signal: null, stdout: Buffer.from('keys'), stderr: Buffer.alloc(0), timedOut: false, durationMs: 1 };
  kept.keep(probe, 'root', answer);
  kept.planRound(false);
  assert.is(kept.take(probe.cmd, {}, 'root')?.stdout.toString(), 'keys', 'the first round');
  assert.is(kept.take(probe.cmd, {}, 'root'), undefined, 'used up: a retry asks the host');
  kept.planRound(true);
  assert.is(kept.take(probe.cmd, {}, 'root')?.stdout.toString(), 'keys', 'planned again: once more');
  kept.planRound(true);
  stamp = { host: 1, run: 1 };
  assert.is(kept.take(probe.cmd, {}, 'root'), undefined, 'a host changed since: stale');
  kept.keep(probe, 'root', answer);
  kept.planRound(false);
  kept.take(probe.cmd, {}, 'root');
  kept.planRound(false);
  assert.is(kept.take(probe.cmd, {}, 'root'), undefined, 'another task: not again');
});

test("a probe of the host's own files stays fresh when another host changes something; any other answer does not", async () => {
  const { KeptAnswers } = await import('../../src/core/kept-answers.js');
  let stamp = { host: 0, run: 0 };
  const kept = new KeptAnswers(() => stamp);
  const answer = (t: string) => ({ command: t, exitCode: 0, signal: null, stdout: Buffer.from(t), stderr: Buffer.alloc(0), timedOut: false, durationMs: 1 });
  const files = { cmd: sh`probe keys`, scope: 'host' as const };
  const sessions = { cmd: sh`psql sessions` };
  kept.keep(files, 'root', answer('keys'));
  kept.keep(sessions, 'root', answer('sessions'));
  stamp = { host: 0, run: 1 }; // another host committed something
  assert.is(kept.take(files.cmd, {}, 'root')?.stdout.toString(), 'keys');
  assert.is(kept.take(sessions.cmd, {}, 'root'), undefined, 'what a server sees may change with another host (a Pgpool-II restart)');
  kept.keep(files, 'root', answer('keys'));
  stamp = { host: 1, run: 2 }; // this host changed something
  assert.is(kept.take(files.cmd, {}, 'root'), undefined);
});

test('a question asked live is kept for the later tasks that declared it, while nothing changes; never one with stdin', async () => {
  const { KeptAnswers } = await import('../../src/core/kept-answers.js');
  let stamp = { host: 0, run: 0 };
  const kept = new KeptAnswers(() => stamp);
  const answer = (t: string) => ({ command: t, exitCode: 0, signal: null, stdout: Buffer.from(t), stderr: Buffer.alloc(0), timedOut: false, durationMs: 1 });
  const sessions = { cmd: sh`psql sessions` };
  // two checks declare it; the first asks it live (after changes: nothing fetched ahead holds)
  kept.expect([sessions, sessions]);
  stamp = { host: 3, run: 5 };
  kept.planRound(false);
  assert.is(kept.take(sessions.cmd, {}, 'root'), undefined);
  kept.keepForLater(sessions.cmd, {}, 'root', answer('live'), kept.stamp());
  assert.is(kept.take(sessions.cmd, {}, 'root'), undefined, 'the same task asking again is a retry (a poll): it asks the host');
  kept.planRound(false);
  assert.is(kept.take(sessions.cmd, {}, 'root')?.stdout.toString(), 'live', 'the second check: no round trip');
  assert.is(kept.take(sessions.cmd, {}, 'root'), undefined, 'declared twice, asked twice: a third asks the host');
  // a change between the question and the next task: asked again
  const again = new KeptAnswers(() => stamp);
  again.expect([sessions, sessions]);
  again.take(sessions.cmd, {}, 'root');
  const asked = again.stamp();
  stamp = { host: 3, run: 6 }; // another host restarted Pgpool-II meanwhile
  again.keepForLater(sessions.cmd, {}, 'root', answer('before'), asked);
  again.planRound(false);
  assert.is(again.take(sessions.cmd, {}, 'root'), undefined);
  // as another user, or undeclared, or with stdin (a password): not kept
  const other = new KeptAnswers(() => stamp);
  other.expect([sessions, sessions]);
  other.take(sessions.cmd, {}, 'root');
  other.keepForLater(sessions.cmd, {}, 'postgres', answer('as postgres'), other.stamp());
  assert.is(other.take(sessions.cmd, {}, 'root'), undefined);
  const login = { cmd: sh`psql login` };
  other.expect([login, login]);
  other.take(login.cmd, { stdin: 'pw' }, 'root');
  other.keepForLater(login.cmd, { stdin: 'pw' }, 'root', answer('t'), other.stamp());
  other.planRound(false);
  assert.is(other.take(login.cmd, { stdin: 'pw' }, 'root'), undefined);
  other.keepForLater(sh`psql undeclared`, {}, 'root', answer('x'), other.stamp());
  assert.is(other.take(sh`psql undeclared`, {}, 'root'), undefined);
});

test('a question asked live counts once more when its task plans again after a step that changed no host (gencert after creating the CA)', async () => {
  const { KeptAnswers } = await import('../../src/core/kept-answers.js');
  let stamp = { host: 2, run: 2 };
  const kept = new KeptAnswers(() => stamp);
  const answer = { command: 'probe keys', exitCode: 0, signal: null, stdout: Buffer.from('keys'), stderr: Buffer.alloc(0), timedOut: false, durationMs: 1 };
  const keys = { cmd: sh`probe keys`, scope: 'host' as const };
  kept.expect([keys]);
  kept.planRound(false);
  assert.is(kept.take(keys.cmd, {}, 'root'), undefined);
  kept.keepForLater(keys.cmd, {}, 'root', answer, kept.stamp());
  stamp = { host: 2, run: 3 }; // another host changed something: a probe of this host's files still holds
  kept.planRound(true); // the CA was created on the controller
  assert.is(kept.take(keys.cmd, {}, 'root')?.stdout.toString(), 'keys');
  kept.planRound(true);
  stamp = { host: 3, run: 4 }; // this host changed: asked again
  assert.is(kept.take(keys.cmd, {}, 'root'), undefined);
  kept.planRound(false); // a new task: nothing carried over
  stamp = { host: 3, run: 4 };
  kept.keepForLater(keys.cmd, {}, 'root', answer, kept.stamp());
  kept.planRound(false);
  assert.is(kept.take(keys.cmd, {}, 'root'), undefined);
});

test('a command a check guards, with nothing to commit: the command and the check\'s first question in ONE round trip, the command first', async () => {
  ran.length = 0;
  const f = fakeSession({ answers: [WRITE_PATH, { match: /^reload$/, stdout: '' }, { match: /^ask loaded$/, stdout: 'loaded' }, { match: /^ask served$/, stdout: 'served' }] }, { vars: VARS });
  await f.session.apply([{ kind: 'exec', description: 'reload', cmd: sh`reload` }, { kind: 'verify', description: 'reload check', verifier: 'test.asks', params: {} }], f.ctx);
  assert.equal(ran, ['loaded+served'], 'the check ran once (not again as the next action)');
  const batches = scriptsRun(f.transport).filter((x) => x.name === 'pgtls-batch');
  assert.is(batches.length, 1);
  assert.equal(batches[0]!.args.slice(0, 2), ['first-parallel', '-']);
  assert.equal(batches[0]!.args.slice(2), ['reload', 'ask loaded'], 'the command first and alone, then the question');
  assert.is(f.transport.log.filter((l) => l.cmd === 'ask served').length, 1, 'the second question after the answer');
});

test('a guarded command that fails: the check asks nothing more, the error is the command\'s, files are restored and the recovery runs', async () => {
  ran.length = 0;
  const f = fakeSession({ answers: [WRITE_PATH, { match: /^reload$/, exitCode: 1, stderr: 'no such cluster' }, { match: /^start$/, stdout: '' }, { match: /^ask /, stdout: 'x' }] }, { vars: VARS });
  await f.session.apply([write('/etc/a', '1'), { kind: 'verify', description: 'written', ...passes('written'), keepRollback: true }], f.ctx);
  let err: Error | undefined;
  try {
    await f.session.apply([{ kind: 'exec', description: 'reload', cmd: sh`reload` }, { kind: 'verify', description: 'reload check', verifier: 'test.asks', params: {}, recover: { kind: 'exec', description: 'start again', cmd: sh`start` } }], f.ctx);
  } catch (e) {
    err = e as Error;
  }
  assert.ok(err);
  assert.match(err!.message, /^reload check failed: reload: .*no such cluster.* \(previous files restored, start again done\)$/);
  assert.not.ok(ran.some((r) => r.includes('+')), 'the check never judged a failed reload');
  await new Promise((r) => setTimeout(r, 50));
  assert.is(f.transport.log.filter((l) => /^ask /.test(l.cmd)).length, 0, 'its questions never ran on the host');
  assert.ok(scriptsRun(f.transport).some((x) => x.name === 'pgtls-rollback' && x.args[1] === 'restore'), 'the files were put back');
});

test('asked ahead: the next task\'s declared query goes in this task\'s round trip and answers it while nothing changed; after a change it is asked again', async () => {
  const walsenders = sh`psql -c ${'select walsenders'}`;
  const sessions = sh`psql -c ${'select sessions'}`;
  let asked = 0;
  const f = fakeSession({ answers: [WRITE_PATH, { match: /select (walsenders|sessions)/, stdout: (t) => `${/sessions/.test(t) ? 'sessions' : 'walsenders'} ${++asked}\n` }, { match: /^change$/, stdout: '' }] }, { vars: VARS });
  f.session.expectQueries([{ cmd: sessions }]);
  await f.session.begin(VARS, () => undefined);
  // (the lock's round trip answered the declared query; a change since makes that answer stale)
  await f.session.apply([{ kind: 'exec', description: 'change', cmd: sh`change` }], f.ctx);
  const before = f.transport.log.length;
  f.session.planRound(false); // the walsender check plans
  f.session.askAhead([{ cmd: sessions }]);
  assert.match((await f.ctx.query(walsenders)).stdout.toString(), /^walsenders/);
  const batch = f.transport.log.slice(before).find((l) => /pgtls-batch/.test(l.cmd));
  assert.ok(batch && /select walsenders/.test(batch.cmd) && /select sessions/.test(batch.cmd), 'one round trip for both');
  const logged = f.transport.log.length;
  f.session.planRound(false); // the sessions check plans: nothing changed since
  assert.match((await f.ctx.query(sessions)).stdout.toString(), /^sessions/);
  assert.is(f.transport.log.length, logged, 'answered by what was asked ahead');
  // asked ahead, then a change: the answer is stale, the host is asked
  f.session.askAhead([{ cmd: sessions }]);
  await f.ctx.query(walsenders);
  await f.session.apply([{ kind: 'exec', description: 'change', cmd: sh`change` }], f.ctx);
  f.session.planRound(false);
  const n = f.transport.log.length;
  await f.ctx.query(sessions);
  assert.ok(f.transport.log.length > n, 'asked again after the change');
});

test.run();
