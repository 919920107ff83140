// The discovery scripts (src/remote/scripts/discover-postgres.sh, discover-pgpool.sh) against this
// machine's real /proc: a stand-in postmaster (a copy of `sleep` named postgres, in a data directory
// whose postmaster.pid names it) is found with its pid file's fields, through the data-directory
// hint too; and the walk starts no process per /proc entry: every external command is counted
// (PATH wrappers), with and without 300 extra processes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { standaloneScript } from '../../src/remote/standalone-scripts.js';
import { parseDiscovery } from '../../src/facts/postgres.js';

const box = mkdtempSync(join(tmpdir(), 'pgtls-discover-'));
const data = join(box, 'data');
const counted = join(box, 'counted');
const calls = join(box, 'calls.log');
mkdirSync(data);
mkdirSync(join(box, 'bin'));
mkdirSync(counted);
const which = (name: string) => spawnSync('sh', ['-c', `command -v ${name}`]).stdout.toString().trim();
copyFileSync(which('sleep'), join(box, 'bin', 'postgres'));
chmodSync(join(box, 'bin', 'postgres'), 0o755);
// every external command the scripts may run, counted
for (const cmd of ['cat', 'sed', 'readlink', 'stat', 'head', 'tr', 'cut', 'getent', 'grep', 'systemctl', 'dd', 'sleep', 'ls']) {
  const real = which(cmd);
  if (!real) continue;
  writeFileSync(join(counted, cmd), `#!/bin/sh\necho ${cmd} >> '${calls}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
}

// (a day: uvu imports every test file before it runs any, and in npm test the e2e files come first)
const pm: ChildProcess = spawn(join(box, 'bin', 'postgres'), ['86400'], { cwd: data, stdio: 'ignore' });
writeFileSync(join(data, 'postmaster.pid'), `${pm.pid}\n${data}\n1700000000\n5999\n${box}/sock\n*\n  5999001    32768\nready\n`);
const extra: ChildProcess[] = [];

function discover(...args: string[]) {
  writeFileSync(calls, '');
  const r = spawnSync('sh', ['-c', standaloneScript('discover-postgres'), 'pgtls-discover', ...args], {
    env: { ...process.env, PATH: `${counted}:${process.env.PATH}` },
  });
  assert.is(r.status, 0, r.stderr.toString());
  const out = r.stdout.toString();
  return { out, d: parseDiscovery(out), externals: readFileSync(calls, 'utf8').split('\n').filter(Boolean).length };
}

test('the stand-in postmaster is found, with what its postmaster.pid says', () => {
  const { d } = discover();
  const me = d.postmasters.find((p) => p.pid === pm.pid);
  assert.ok(me, 'found by the walk');
  assert.is(me!.dataDir, realpathSync(data));
  assert.is(me!.port, 5999);
  assert.is(me!.socketDir, `${box}/sock`);
  assert.is(me!.pidFile, `${pm.pid}\n`);
  assert.is(me!.exe, realpathSync(join(box, 'bin', 'postgres')));
  assert.is(me!.net, 'same');
});

test('data directory first: its postmaster.pid names the one process looked at; a stale one falls back to the walk', () => {
  const hinted = discover(data);
  assert.equal(hinted.d.postmasters.map((p) => p.pid), [pm.pid]);
  const stale = join(box, 'stale');
  mkdirSync(stale, { recursive: true });
  writeFileSync(join(stale, 'postmaster.pid'), '999999999\n');
  const walked = discover(stale);
  assert.ok(walked.d.postmasters.some((p) => p.pid === pm.pid));
});

test('no process per /proc entry: external commands depend on the candidates only, not on the process count', () => {
  const before = discover();
  for (let i = 0; i < 300; i++) extra.push(spawn(which('sleep'), ['600'], { stdio: 'ignore' }));
  const after = discover();
  // per candidate row: readlink ×3, stat ×2, head, tr; plus one readlink for our own namespace
  const bound = (x: { d: ReturnType<typeof parseDiscovery>; externals: number }) => 1 + 7 * (x.d.postmasters.length + 1);
  assert.ok(before.externals <= bound(before), `${before.externals} external commands for ${before.d.postmasters.length} candidates`);
  assert.ok(after.externals <= bound(after), `${after.externals} external commands for ${after.d.postmasters.length} candidates, 300 more processes`);
  assert.ok(after.d.postmasters.some((p) => p.pid === pm.pid));
});

test("with SQL: the postmaster is asked it by the psql next to its binary, as its OS user, over the socket its pid file names", () => {
  // a stand-in psql: says what it was asked and where (exit 2 when told to fail, as psql does on a refused login)
  writeFileSync(join(box, 'bin', 'psql'), `#!/bin/sh\nfor a; do last=$a; done\n[ "$last" = fail ] && { echo 'password required' >&2; exit 2; }\nprintf '{"asked": "%s",\\n "args": "%s"}\\n' "$last" "$*"\n`, { mode: 0o755 });
  const { d } = discover(data, 'select 42');
  const got = d.settings.get(pm.pid!);
  assert.ok(got, 'a sql row for the postmaster');
  assert.is(got!.rc, 0);
  const j = JSON.parse(got!.answer) as { asked: string; args: string };
  assert.is(j.asked, 'select 42');
  assert.match(j.args, `-h ${box}/sock -p 5999 -d postgres`);
  const failed = discover(data, 'fail').d.settings.get(pm.pid!);
  assert.is(failed?.rc, 2, 'a failure is an exit code, not an answer');
  assert.is(discover(data).d.settings.size, 0, 'no SQL, no sql rows (the checks after a change)');
});

test('postmaster candidates that end while they are described do not end the discovery (busy hosts)', async () => {
  // short-lived processes named postgres whose parent is not one: each is a candidate the walk describes,
  // and many are gone half-way (a failed `exec 8<` on their /proc files used to end the script: exit 2)
  const churn = spawn('sh', ['-c', `while :; do for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do '${join(box, 'bin', 'postgres')}' 0 & done; wait; done`], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 60; i++) {
      const r = spawnSync('sh', ['-c', standaloneScript('discover-postgres'), 'pgtls-discover']);
      assert.is(r.status, 0, `round ${i}: ${r.stderr.toString()}`);
      assert.ok(parseDiscovery(r.stdout.toString()).postmasters.some((p) => p.pid === pm.pid), `round ${i}: the postmaster is still found`);
    }
  } finally {
    churn.kill('SIGKILL');
  }
});

test('pgpool: no process per /proc entry either', () => {
  writeFileSync(calls, '');
  const r = spawnSync('sh', ['-c', standaloneScript('discover-pgpool'), 'pgtls-discover', join(box, 'none.conf'), '--', 'pgpool-none.service'], {
    env: { ...process.env, PATH: `${counted}:${process.env.PATH}` },
  });
  assert.is(r.status, 0, r.stderr.toString());
  const rows = r.stdout.toString().split('\n').filter((l) => l.startsWith('pp\t')).length;
  const externals = readFileSync(calls, 'utf8').split('\n').filter(Boolean).length;
  // readlink for our namespace, getent+cut for postgres's home; per main-candidate row at most ~14
  assert.ok(externals <= 3 + 14 * rows, `${externals} external commands for ${rows} pgpool rows with 300+ processes around`);
});

test('cleanup', () => {
  pm.kill('SIGKILL');
  for (const p of extra) p.kill('SIGKILL');
  rmSync(box, { recursive: true, force: true });
  assert.ok(true);
});

test.run();
