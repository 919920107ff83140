// The conninfo and configuration-file code checked against the real thing (PostgreSQL 15 and its libpq):
//  - what our editor writes into a connection string, libpq reads back as the same value (psql -d);
//  - what ALTER SYSTEM writes into postgresql.auto.conf, findGucAssignment decodes to the same value;
//  - after editGucValue, the server reads (pg_file_settings) exactly the edited conninfo.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { conninfoValue, parseConninfo, setConninfoParams } from '../../src/pgconf/conninfo.js';
import { editGucValue, findGucAssignment } from '../../src/pgconf/guc-file.js';
import { PG_BINDIR, psql, sqlLiteral, start, stop, type PgCluster } from './pg-throwaway.js';

let c: PgCluster | undefined;
const VALUES = ['plain', 'with space', "it's", 'back\\slash', "both ' and \\ and  two spaces", 'ünïcode', "''", '\\\''];

test('a throwaway PostgreSQL 15', async () => {
  if (!existsSync(path.join(PG_BINDIR, 'initdb'))) {
    if (process.env['CI']) assert.unreachable(`no PostgreSQL 15 in ${PG_BINDIR}`);
    return;
  }
  c = await start();
  assert.ok(c.port > 0);
});

test('libpq reads back every value setConninfoParams writes (application_name through psql -d)', async () => {
  assert.ok(c, 'cluster up');
  // (the server shows non-ASCII characters of application_name as '?': ASCII values only here)
  for (const v of VALUES.filter((x) => /^[\x20-\x7e]*$/.test(x))) {
    const { result } = setConninfoParams('dbname=postgres', { application_name: v });
    assert.is(conninfoValue(parseConninfo(result), 'application_name'), v, `our parser: ${result}`);
    const out = await psql(c!, 'show application_name;', { db: result });
    assert.is(out.stdout.replace(/\n$/, ''), v, `libpq: ${result}`);
  }
  // hand-written escapes, as a person or pg_basebackup may write them
  for (const [conninfo, want] of [
    ["dbname=postgres application_name='a\\'b\\\\c d'", "a'b\\c d"],
    ['dbname=postgres application_name=a\\ b', 'a b'],
    ["dbname = postgres   application_name = 'x'", 'x'],
  ] as const) {
    assert.is(conninfoValue(parseConninfo(conninfo), 'application_name'), want, conninfo);
    assert.is((await psql(c!, 'show application_name;', { db: conninfo })).stdout.replace(/\n$/, ''), want, conninfo);
  }
});

test('ALTER SYSTEM writes primary_conninfo; we decode it, edit it, and the server reads our edit', async () => {
  assert.ok(c, 'cluster up');
  const auto = path.join(c!.dataDir, 'postgresql.auto.conf');
  for (const v of VALUES) {
    const conninfo = `host=db1 application_name=${v.replace(/[\s'\\]/g, '\\$&')} password='${v.replace(/[\\']/g, '\\$&')}' sslmode=prefer`;
    await psql(c!, `ALTER SYSTEM SET primary_conninfo = ${sqlLiteral(conninfo)};`);
    const text = await readFile(auto, 'utf8');
    const a = findGucAssignment(text, 'primary_conninfo');
    assert.ok(a, text);
    assert.is(a!.value, conninfo, 'decoded as the server wrote it');
    const { edits, result } = setConninfoParams(a!.value, { sslmode: 'verify-full', sslrootcert: `/keys/${v}/root.crt` });
    await writeFile(auto, editGucValue(text, a!, edits, result));
    const read = await psql(c!, `select setting from pg_file_settings where name = 'primary_conninfo';`);
    assert.is(read.stdout.replace(/\n$/, ''), result, 'the server reads the edited file as intended');
    const p = parseConninfo(result);
    assert.is(conninfoValue(p, 'password'), v, 'the password is untouched');
    assert.is(conninfoValue(p, 'application_name'), v);
    assert.is(conninfoValue(p, 'sslrootcert'), `/keys/${v}/root.crt`);
  }
  await psql(c!, 'ALTER SYSTEM RESET primary_conninfo;');
});

test('stop', async () => {
  await stop(c);
  assert.ok(true);
});

test.run();
