import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
// The one SQL login helper (src/facts/pg-login.ts) against a real PostgreSQL 15, with each kind of
// `local` rule: trust and peer log in as the OS user, md5 and scram-sha-256 as webadmin with its
// password (on stdin: never in a command line). Plus the small pure parts, table-driven.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Secret } from '../../src/lib/secret.js';
import { psqlQuery } from '../../src/facts/postgres.js';
import { authFailure, passwordClientCommand, sqlInvocation, sqlLogin, type SqlLogin } from '../../src/facts/pg-login.js';
import { localContext } from './local-host.js';
import { psql, sqlLiteral, start, stop, type PgCluster } from './pg-throwaway.js';

const PW = `Web Admin's "pw" 1 $x \`y\``;

const pure = suite('pg-login: pure parts');

pure('authFailure classifies psql errors', () => {
  const rows: [string, ReturnType<typeof authFailure>][] = [
    ['psql: error: connection to server on socket "/x/.s.PGSQL.5432" failed: fe_sendauth: no password supplied', 'password-needed'],
    ['FATAL:  password authentication failed for user "webadmin"', 'password-rejected'],
    ['FATAL:  Peer authentication failed for user "postgres"', 'peer-rejected'],
    ['FATAL:  Ident authentication failed for user "postgres"', 'peer-rejected'],
    ['FATAL:  no pg_hba.conf entry for host "[local]", user "postgres", database "postgres", no encryption', 'no-rule'],
    ['psql: error: connection to server on socket "/x" failed: No such file or directory', null],
    ['ERROR:  syntax error at or near "selec"', null],
  ];
  for (const [stderr, want] of rows) assert.is(authFailure(stderr), want, stderr);
});

pure('a password login keeps the password off the command line and on stdin, before the SQL', () => {
  const s = { binDir: '/usr/lib/postgresql/15/bin', socketDir: '/var/run/postgresql', port: 5432 };
  const login: SqlLogin = { kind: 'password', role: 'webadmin', password: new Secret('s3cret-pw') };
  for (const sql of ['select 1;', new Secret("alter role x password 'SCRAM-SHA-256$v'")]) {
    const inv = sqlInvocation(s, login, sql);
    assert.not.ok(inv.cmd.text.includes('s3cret-pw'));
    assert.ok(inv.stdin instanceof Secret, 'the whole stdin is a secret');
    assert.ok((inv.stdin as Secret).reveal().startsWith('s3cret-pw\n'));
    assert.is(inv.user, undefined, 'runs as the login/become user, not as the database OS user');
    assert.match(inv.cmd.text, /-U webadmin/);
    assert.match(inv.cmd.text, /PGPASSFILE=\/dev\/null/);
  }
  const peer = sqlInvocation(s, { kind: 'os-user', osUser: 'postgres' }, 'select 1;');
  assert.is(peer.user, 'postgres');
  assert.is(peer.stdin, 'select 1;');
});

pure.run();

// ---------------------------------------------------------------------------------------------------------

const real = suite<{ cluster?: PgCluster }>('pg-login vs PostgreSQL 15 local rules', {});

real.before(async (ctx) => {
  ctx.cluster = await start();
  await psql(ctx.cluster, `SET password_encryption = 'md5';\nCREATE ROLE webadmin LOGIN SUPERUSER PASSWORD ${sqlLiteral(PW)};\n`);
});
real.after(async (ctx) => {
  await stop(ctx.cluster);
});

async function setLocalRule(c: PgCluster, method: string): Promise<void> {
  await writeFile(path.join(c.dataDir, 'pg_hba.conf'), `local all all ${method}\nhost all all 127.0.0.1/32 md5\n`);
  // reload through TCP is not possible before the rule exists: signal the postmaster
  await psql(c, 'select pg_reload_conf();', { via: 'tcp', user: 'webadmin', password: PW });
  await new Promise((r) => setTimeout(r, 300));
}

function server(c: PgCluster) {
  return { binDir: '/usr/lib/postgresql/15/bin', socketDir: c.socketDir, port: c.port, osUser: 'postgres' };
}

async function loginWith(c: PgCluster, vars: Record<string, unknown>) {
  const { ctx, warnings, transport } = localContext(vars);
  const s = server(c);
  const login = await sqlLogin(ctx, s, vars.webadmin_password === undefined ? undefined : new Secret(String(vars.webadmin_password)));
  const who = (await psqlQuery(ctx, { ...s, login }, 'select current_user;\n')).trim();
  return { login, who, warnings, commands: transport.commands };
}

real('webadmin can log in over TCP with SCRAM first (setup)', async (ctx) => {
  // pg_authid holds md5; the TCP rule is scram-sha-256, which accepts an md5 password? No: re-hash as SCRAM.
  await psql(ctx.cluster!, `SET password_encryption = 'scram-sha-256';\nALTER ROLE webadmin PASSWORD ${sqlLiteral(PW)};\n`);
  const r = await psql(ctx.cluster!, 'select 1;', { via: 'tcp', user: 'webadmin', password: PW });
  assert.is(r.stdout.trim(), '1');
});

for (const method of ['trust', 'peer']) {
  real(`local ${method}: SQL as OS user postgres, no password, nothing said`, async (ctx) => {
    await setLocalRule(ctx.cluster!, method);
    const r = await loginWith(ctx.cluster!, { webadmin_password: PW });
    assert.is(r.login.kind, 'os-user');
    assert.is(r.who, 'postgres');
    assert.equal(r.warnings, []);
  });
}

real('local scram-sha-256: SQL as webadmin with its password, and it says so', async (ctx) => {
  await setLocalRule(ctx.cluster!, 'scram-sha-256');
  const r = await loginWith(ctx.cluster!, { webadmin_password: PW });
  assert.is(r.login.kind, 'password');
  assert.is(r.who, 'webadmin');
  assert.is(r.warnings.length, 1);
  assert.match(r.warnings[0]!, /want a password.*webadmin/);
  for (const c of r.commands) assert.not.ok(c.includes(PW), 'never on a command line');
});

real('local md5 (webadmin stored as md5): SQL as webadmin with its password', async (ctx) => {
  await psql(ctx.cluster!, `SET password_encryption = 'md5';\nALTER ROLE webadmin PASSWORD ${sqlLiteral(PW)};\n`, { via: 'tcp', user: 'webadmin', password: PW });
  await setLocalRule(ctx.cluster!, 'md5');
  const r = await loginWith(ctx.cluster!, { webadmin_password: PW });
  assert.is(r.login.kind, 'password');
  assert.is(r.who, 'webadmin');
  for (const c of r.commands) assert.not.ok(c.includes(PW));
});

real('local md5 without webadmin_password: a clear error saying what to set', async (ctx) => {
  await setLocalRule(ctx.cluster!, 'md5');
  try {
    await loginWith(ctx.cluster!, {});
    assert.unreachable('must fail');
  } catch (e) {
    assert.match(String((e as Error).message), /refuse OS user postgres without a password.*set webadmin_password/);
  }
});

real('local md5 with a wrong password: both attempts named, the password never shown', async (ctx) => {
  await setLocalRule(ctx.cluster!, 'md5');
  try {
    await loginWith(ctx.cluster!, { webadmin_password: 'wrong-password-123' });
    assert.unreachable('must fail');
  } catch (e) {
    const m = String((e as Error).message);
    assert.match(m, /neither OS user postgres.*nor webadmin with webadmin_password/);
    assert.match(m, /password authentication failed/);
    assert.not.ok(m.includes('wrong-password-123'));
  }
});

real('a client login over TCP (the checks that log in like clients): password on stdin only', async (ctx) => {
  const { ctx: pc, transport } = localContext();
  const c = ctx.cluster!;
  const conninfo = `host=127.0.0.1 port=${c.port} user=webadmin dbname=postgres sslmode=disable`;
  const res = await pc.query(passwordClientCommand('/usr/lib/postgresql/15/bin/psql', conninfo, 'select current_user'), { stdin: new Secret(PW) });
  assert.is(res.stdout.toString('utf8').trim(), 'webadmin');
  for (const cmd of transport.commands) assert.not.ok(cmd.includes(PW));
  try {
    await pc.query(passwordClientCommand('/usr/lib/postgresql/15/bin/psql', conninfo, 'select 1'), { stdin: new Secret('nope-nope') });
    assert.unreachable('a wrong password must fail');
  } catch (e) {
    assert.match(String((e as Error).message), /password authentication failed/);
  }
});

real('a bare psql that is Debian\'s pg_wrapper runs the newest installed client directly (no Perl start per login)', async (ctx) => {
  const { ctx: pc } = localContext();
  const c = ctx.cluster!;
  const newest = readdirSync('/usr/lib/postgresql').filter((v) => existsSync(`/usr/lib/postgresql/${v}/bin/psql`)).sort((a, b) => parseFloat(b) - parseFloat(a))[0];
  const conninfo = `host=127.0.0.1 port=${c.port} user=webadmin dbname=postgres sslmode=disable`;
  // a stand-in wrapper first in PATH (named pg_wrapper, as Debian's): it must not run
  const dir = mkdtempSync(path.join(tmpdir(), 'pgtls-wrapper-'));
  mkdirSync(`${dir}/share`);
  writeFileSync(`${dir}/share/pg_wrapper`, '#!/bin/sh\necho wrapper-ran\n', { mode: 0o755 });
  symlinkSync(`${dir}/share/pg_wrapper`, `${dir}/psql`);
  const PATH = process.env['PATH'];
  process.env['PATH'] = `${dir}:${PATH}`;
  try {
    const res = await pc.query(passwordClientCommand('psql', conninfo, 'select 6'), { stdin: new Secret(PW) });
    assert.is(res.stdout.toString('utf8').trim(), '6', `the newest client (${newest}) answered, not the wrapper`);
  } finally {
    process.env['PATH'] = PATH;
    rmSync(dir, { recursive: true, force: true });
  }
  // a psql the task names is run as named
  const named = await pc.query(passwordClientCommand('/usr/bin/psql', conninfo, 'select 7'), { stdin: new Secret(PW) });
  assert.is(named.stdout.toString('utf8').trim(), '7');
});

real.run();
