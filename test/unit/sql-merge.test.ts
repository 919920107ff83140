// Several SQL reads of one server in one psql session (src/remote/sql-merge.ts): parsed back from
// the command sqlReadInvocation builds, merged per user and connection, and each query's answer as
// if it had run alone, against a real PostgreSQL 15 (a throwaway cluster).
import { suite, test } from 'uvu';
import * as assert from 'uvu/assert';
import { sqlReadInvocation } from '../../src/facts/pg-login.js';
import { mergeSqlReads, parseSqlRead } from '../../src/remote/sql-merge.js';
import { RemoteCommandError } from '../../src/lib/transport.js';
import { sh } from '../../src/lib/sh.js';
import { HostShell } from '../../src/remote/host-shell.js';
import { asUserInBatch, execBatch } from '../../src/remote/batch.js';
import { LocalTransport } from './local-host.js';
import { PG_BINDIR, start, stop, type PgCluster } from './pg-throwaway.js';

const server = { binDir: '/usr/lib/postgresql/15/bin', socketDir: '/var/run/postgresql', port: 5432 };
const login = { kind: 'os-user' as const, osUser: 'postgres' };

test("parseSqlRead: sqlReadInvocation's command gives back its SQL exactly (quotes, newlines); any other command is not one", () => {
  const sql = "SET standard_conforming_strings = on;\nselect 'it''s', $$x$$ from pg_authid where rolname in ('a', 'b');\n";
  const inv = sqlReadInvocation(server, login, sql);
  assert.equal(parseSqlRead(inv.cmd.text), { psql: "/usr/lib/postgresql/15/bin/psql -X -A -t -q -w -v ON_ERROR_STOP=1 -h /var/run/postgresql -p 5432 -d postgres", sql });
  assert.is(parseSqlRead(sh`cd / && exec psql -c ${'select 1'}; rm -rf /tmp/x`.text), null);
  assert.is(parseSqlRead(sh`stat -L -- /etc/x`.text), null);
});

test('mergeSqlReads: reads of one user and connection become one session at the first one\'s place; others stay; answers come back in order', () => {
  const q = (sql: string, user = 'postgres') => ({ cmd: sqlReadInvocation(server, login, sql).cmd, user });
  const other = { cmd: sh`stat -- /etc/x`, user: 'postgres' };
  const units = [q('select 1'), other, q('select 2'), q('select 3', 'other')];
  const { send, expand } = mergeSqlReads(units, () => [0]);
  assert.is(send.length, 3, 'the two of postgres together; the other user\'s alone');
  assert.match(send[0]!.cmd.text, /pgtls-sql-many 2 /);
  assert.is(send[1], other);
  const session = { command: 'x', exitCode: 0, signal: null, timedOut: false, durationMs: 1, stderr: Buffer.alloc(0),
    stdout: Buffer.from('pgtls-sql false 2\npgtls-sql true 0\npgtls-sql-end 0 6\n1\nboom!\n') };
  const statR = { ...session, stdout: Buffer.from('st') };
  const aloneR = { ...session, stdout: Buffer.from('3\n') };
  const [a, b, c, d] = expand([session, statR, aloneR]);
  assert.ok(a && !(a instanceof Error) && a.stdout.toString() === '1\n' && a.command === units[0]!.cmd.text);
  assert.is(b, statR);
  assert.ok(c instanceof RemoteCommandError && c.result.exitCode === 1 && c.result.stderr.toString() === 'boom!\n', 'a failed query: exit 1 and the session\'s stderr');
  assert.is(d, aloneR);
});

const pg = suite<{ cluster?: PgCluster }>('one psql session vs PostgreSQL 15');

pg('against a real server: each query answers exactly as it would alone (a SET does not leak, a failure stops nothing)', async (ctx) => {
  ctx.cluster = await start();
  const c = ctx.cluster;
  const s = { binDir: PG_BINDIR, socketDir: c.socketDir, port: c.port };
  const reads = [
    "SET standard_conforming_strings = off;\nselect current_setting('standard_conforming_strings');\n",
    "select current_setting('standard_conforming_strings');\n",
    'select 1/0;\n',
    "select json_agg(x) from (values ('pgtls-sql false 99'), (E'a\\nb')) v(x);\n",
  ].map((sql) => ({ cmd: sqlReadInvocation(s, login, sql).cmd, user: 'postgres' }));
  const shell = new HostShell(new LocalTransport(), 'root', false);
  const alone = await Promise.all(reads.map((r) => shell.exec(r.cmd, { user: r.user, okCodes: [0, 1, 2, 3] })));
  const { send, expand } = mergeSqlReads(reads, () => [0, 1, 2, 3]);
  assert.is(send.length, 1);
  const together = expand(await execBatch(shell, send.map((u) => ({ ...u, cmd: asUserInBatch(shell, u.cmd, u.user) })), 'all'));
  for (const [i, a] of alone.entries()) {
    const t = together[i];
    assert.ok(t && !(t instanceof Error), `query ${i + 1} answered`);
    assert.is(t.exitCode, a.exitCode, `query ${i + 1}: exit code`);
    assert.is(t.stdout.toString(), a.stdout.toString(), `query ${i + 1}: output`);
  }
  assert.is(alone[1]!.stdout.toString(), 'on\n', "(the first query's SET is its own)");
  assert.match((together[2] as { stderr: Buffer }).stderr.toString(), /division by zero/);
});

pg.after(async (ctx) => stop(ctx.cluster));

test.run();
pg.run();
