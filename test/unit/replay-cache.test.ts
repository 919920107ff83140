// The replay record kept on the controller between runs (src/core/replay-cache.ts): its commands run on
// hosts as root, so a file anyone but this user could have written is ignored; and what a session
// records (HostSession.replayRecord): paths and command texts, never content or stdin; no first-trip discovery.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadReplay, replayDir, replayFile, saveReplay } from '../../src/core/replay-cache.js';
import { Secret } from '../../src/lib/secret.js';
import { sh } from '../../src/lib/sh.js';
import { FakeTransport, fakeSession } from './fake-host.js';
import { HostShell } from '../../src/remote/host-shell.js';
import { firstTrip } from '../../src/core/first-trip.js';
import { lockCommand } from '../../src/remote/lock.js';

const box = mkdtempSync(join(tmpdir(), 'pgtls-replay-'));
chmodSync(box, 0o700);
const who = { host: 'pg1', address: '10.0.0.11', port: 22, user: 'root' };
const record = { reads: [{ path: '/etc/postgresql/15/main/postgresql.conf' }], probes: [{ cmd: "stat -L -- /etc/x", user: 'postgres' }] };

test('saved 0600 and read back; one file per host and way of reaching it', () => {
  const dir = join(box, 'a');
  const file = replayFile(dir, who);
  saveReplay(file, record);
  assert.equal(loadReplay(file), record);
  assert.is.not(replayFile(dir, { ...who, becomeUser: 'postgres' }), file);
  assert.is.not(replayFile(dir, { ...who, address: '10.0.0.12' }), file);
});

test('a file others could have written, a symlink, or a file in a directory others can write is ignored', () => {
  const dir = join(box, 'b');
  const file = replayFile(dir, who);
  saveReplay(file, record);
  chmodSync(file, 0o620);
  assert.equal(loadReplay(file), { reads: [], probes: [] }, 'group-writable file');
  chmodSync(file, 0o600);
  chmodSync(dir, 0o777);
  assert.equal(loadReplay(file), { reads: [], probes: [] }, 'world-writable directory');
  chmodSync(dir, 0o700);
  const link = join(dir, 'link.json');
  symlinkSync(file, link);
  assert.equal(loadReplay(link), { reads: [], probes: [] }, 'symlink');
  const open = join(box, 'open');
  mkdirSync(open, { mode: 0o777 });
  chmodSync(open, 0o777);
  const inside = replayFile(join(open, 'replay'), who);
  saveReplay(inside, record);
  assert.equal(loadReplay(inside), { reads: [], probes: [] }, 'a parent anyone can write (not sticky)');
});

test('malformed records and commands naming a known secret are not kept', () => {
  const dir = join(box, 'c');
  const file = replayFile(dir, who);
  saveReplay(file, record);
  writeFileSync(file, '{"reads": [{"path": "relative"}], "probes": []}\n', { mode: 0o600 });
  assert.equal(loadReplay(file), { reads: [], probes: [] });
  const pw = new Secret('s3cr3t-replay-test-password');
  saveReplay(file, { reads: [], probes: [{ cmd: `echo ${pw.reveal()}` }, { cmd: 'echo fine' }] });
  assert.equal(loadReplay(file).probes, [{ cmd: 'echo fine' }]);
});

test('PGTLS_CACHE_DIR chooses the directory; off keeps none', () => {
  assert.is(replayDir({ PGTLS_CACHE_DIR: '/x' }), '/x/replay');
  assert.is(replayDir({ PGTLS_CACHE_DIR: 'off' }), null);
  assert.is(replayDir({ XDG_CACHE_HOME: '/c' }), '/c/pgtls/replay');
});

test("a session records the files it read (a private one by its path alone) and the stdin-free queries but discovery's", async () => {
  const f = fakeSession(
    {
      files: { '/etc/a.conf': { content: 'x', mode: '644' }, '/etc/key': { content: 'k', mode: '600' } },
      answers: [{ match: /^(stat|declared|discover|reload)/, stdout: '' }, { match: /pgtls-(lock|prepare|record)/, stdout: '' }],
    },
    { vars: { pgtls_track_originals: false } },
  );
  f.session.keepAnswers([{ cmd: sh`discover`, result: { command: 'discover', exitCode: 0, signal: null, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), timedOut: false, durationMs: 1 } }], 'root');
  f.session.expectQueries([{ cmd: sh`declared` }]);
  await f.ctx.readFile('/etc/a.conf');
  await f.ctx.readFile('/etc/key');
  await f.ctx.query(sh`discover`);
  await f.ctx.query(sh`declared`);
  await f.ctx.query(sh`stat -- /etc/a.conf`, { user: 'postgres' });
  await f.ctx.query(sh`stat -- /etc/b.conf`, { stdin: 'x' });
  const r = f.session.replayRecord();
  assert.equal(r.reads, [{ path: '/etc/a.conf' }, { path: '/etc/key' }]);
  assert.not.ok(JSON.stringify(r).includes('"k"'), 'no content');
  assert.equal(r.probes, [{ cmd: 'declared' }, { cmd: 'stat -- /etc/a.conf', user: 'postgres' }]);
  // asked once something changed: last (a no-change run asks what came before; the first round trip takes the record in order)
  await f.session.apply([{ kind: 'exec', description: 'reload', cmd: sh`reload` }], f.ctx);
  await f.ctx.query(sh`stat -- /etc/late.conf`);
  await f.ctx.query(sh`stat -- /etc/a.conf`, { user: 'postgres' });
  assert.equal(f.session.replayRecord().probes.map((p) => p.cmd), ['declared', 'stat -- /etc/a.conf', 'stat -- /etc/late.conf']);
});

test('cleanup', () => rmSync(box, { recursive: true, force: true }));


test('the first round trip: the lock first, then names, discovery, the replayed reads and probes; a lock refused stops it and is kept for the host to report', async () => {
  const transport = new FakeTransport({
    files: { '/etc/a.conf': { content: 'a', mode: '644' } },
    answers: [
      { match: /pgtls-lock/, stdout: 'lock taken\n' },
      { match: /^hostname/, stdout: 'pg1\npg1.lab\n10.0.0.11\n' },
      { match: /^discover/, stdout: 'found\n' },
      { match: /^stat/, user: 'postgres', stdout: 'stat as postgres\n' },
    ],
  });
  const shell = new HostShell(transport, 'root', false);
  const replay = { reads: [{ path: '/etc/a.conf' }], probes: [{ cmd: 'stat -- /etc/a.conf', user: 'postgres' }] };
  const trip = await firstTrip(shell, 'root', [sh`discover`], { lock: lockCommand('/var/lib/pgtls/state', 'run-1'), replay });
  assert.is(transport.log.filter((l) => /pgtls-batch/.test(l.cmd)).length, 1, 'one round trip');
  assert.is(trip.locked?.stdout.toString(), 'lock taken\n');
  assert.is(trip.facts.fqdn, 'pg1.lab');
  assert.is(trip.answers[0]?.result.stdout.toString(), 'found\n');
  assert.is(trip.reads[0]?.files.get('/etc/a.conf')?.content.toString(), 'a');
  assert.equal(trip.replayed.map((r) => [r.probe.user, r.result.stdout.toString()]), [['postgres', 'stat as postgres\n']]);

  const busy = new FakeTransport({ answers: [{ match: /pgtls-lock/, stderr: 'pgtls: another pgtls run is in progress on this host (run=x)\n', exitCode: 65 }, { match: /^hostname/, stdout: 'pg1\n' }] });
  const refused = await firstTrip(new HostShell(busy, 'root', false), 'root', [], { lock: lockCommand('/var/lib/pgtls/state', 'run-2'), replay });
  assert.match(String((refused.lockRefused as Error).message), /another pgtls run is in progress/, 'the refusal is kept for the host to report');
  assert.is(refused.locked, undefined);
  assert.equal(refused.replayed, [], 'nothing the lock guards ran');
  assert.is(refused.facts.hostname, 'pg1', 'the facts are asked again without the lock');
  const batches = busy.log.filter((l) => /pgtls-batch/.test(l.cmd));
  assert.is(batches.length, 1);
  assert.not.ok(busy.log.slice(0, busy.log.indexOf(batches[0]!) + 2).some((l) => /^hostname/.test(l.cmd)), 'nothing after the refused lock ran in its batch');
});

test('the first round trip stays one command line an argument can hold: replayed probes that would not fit are left to the tasks', async () => {
  const transport = new FakeTransport({ answers: [{ match: /pgtls-lock/, stdout: '' }, { match: /^hostname/, stdout: 'pg1\n' }, { match: /^(small|big)/, stdout: 'x' }] });
  const replay = { reads: [], probes: [{ cmd: `big ${'y'.repeat(80 * 1024)}` }, { cmd: `big ${'z'.repeat(80 * 1024)}` }, { cmd: 'small' }] };
  const trip = await firstTrip(new HostShell(transport, 'root', false), 'root', [], { lock: lockCommand('/var/lib/pgtls/state', 'run-3'), replay });
  assert.equal(trip.replayed.map((r) => r.probe.cmd.text.slice(0, 5)), ['big y', 'small']);
  const sent = transport.log.find((l) => /pgtls-batch/.test(l.cmd))!;
  assert.ok(sent.cmd.length < 128 * 1024, `${sent.cmd.length} bytes`);
});

test("a password login is recorded by the name of the host variable its password is, never the value; the next first round trip sends that variable's value", async () => {
  const password = new Secret('replay-login-pw-1');
  const f = fakeSession({ answers: [{ match: /^psql/, stdout: '1\n' }] }, { vars: { pgtls_track_originals: false } });
  f.session.secretVarOf = (p) => (p.reveal() === password.reveal() ? 'webadmin_password' : undefined);
  await f.ctx.query(sh`psql host=pg3 -f -`, { stdin: new Secret(password.reveal()), timeoutMs: 30_000 });
  await f.ctx.query(sh`psql host=pg9 -f -`, { stdin: new Secret('not-a-variable-pw'), timeoutMs: 30_000 });
  // a login a task declares but this run does not make (Pgpool-II restarted instead) is recorded too
  f.session.recordLogins([{ cmd: sh`psql host=backend1 -f -`, password: new Secret(password.reveal()), timeoutMs: 20_000 }]);
  const record = f.session.replayRecord();
  assert.equal(
    record.probes,
    [
      { cmd: 'psql host=pg3 -f -', stdinVar: 'webadmin_password' },
      { cmd: 'psql host=backend1 -f -', stdinVar: 'webadmin_password' },
    ],
    'only the logins whose password a variable holds',
  );
  const dir = mkdtempSync(join(tmpdir(), 'pgtls-replay-login-'));
  const file = join(dir, 'login.json');
  saveReplay(file, record);
  assert.not.ok(readFileSync(file, 'utf8').includes('replay-login-pw-1'), 'the value is not in the file');
  const loaded = loadReplay(file);
  assert.equal(loaded.probes, record.probes);

  const transport = new FakeTransport({ answers: [{ match: /pgtls-lock/, stdout: '' }, { match: /^hostname/, stdout: 'pg3\n' }, { match: /^psql host=pg3/, stdin: /^now-pw$/, stdout: 'in\n' }] });
  const now = new Secret('now-pw');
  const trip = await firstTrip(new HostShell(transport, 'root', false), 'root', [], { lock: lockCommand('/var/lib/pgtls/state', 'run-4'), replay: loaded, secret: (n) => (n === 'webadmin_password' ? now : undefined) });
  assert.is(trip.replayed.length, 2);
  assert.ok(trip.replayed.every((r) => r.probe.stdin === now), "the variable's value as it is now");
  assert.is(trip.replayed[0]!.result.stdout.toString(), 'in\n', 'and the host got it on stdin');
  assert.not.ok(transport.log.some((l) => l.cmd.includes('now-pw')), 'never on a command line');
  const none = await firstTrip(new HostShell(new FakeTransport({ answers: [{ match: /pgtls-lock/, stdout: '' }, { match: /^hostname/, stdout: 'pg3\n' }] }), 'root', false), 'root', [], { lock: lockCommand('/var/lib/pgtls/state', 'run-5'), replay: loaded });
  assert.equal(none.replayed, [], 'no such variable: not replayed');
  rmSync(dir, { recursive: true, force: true });
});

test.run();
