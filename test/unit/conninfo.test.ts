import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { conninfoPolicy } from '../../src/facts/replication.js';
import { decideUpstream, targets, type FleetHost } from '../../src/modules/replication-tls/upstream.js';
import {
  ConninfoError,
  conninfoValue,
  maskConninfoPassword,
  parseConninfo,
  quoteConninfoValue,
  setConninfoParams,
} from '../../src/pgconf/conninfo.js';
import { editGucValue, findGucAssignment, GucFileError, maskConninfoPasswords, quoteGucValue, replaceGucLine } from '../../src/pgconf/guc-file.js';

// ---- parsing (libpq's rules) ----
const parseCases: { in: string; want: Record<string, string> }[] = [
  { in: 'host=10.0.0.1 port=5432 user=replicator', want: { host: '10.0.0.1', port: '5432', user: 'replicator' } },
  { in: "  host = db1   application_name='my app' ", want: { host: 'db1', application_name: 'my app' } },
  { in: "password='it''s'", want: {} }, // '' is NOT libpq's escape: 'it' then 's' -> error below
  { in: "password='a\\'b\\\\c d'", want: { password: "a'b\\c d" } },
  { in: 'password=a\\ b', want: { password: 'a b' } },
  { in: "sslmode=prefer sslmode=disable", want: { sslmode: 'disable' } }, // the last one wins
  { in: "dbname=''", want: { dbname: '' } },
];
for (const c of parseCases.filter((c) => !c.in.includes("''s"))) {
  test(`parse ${JSON.stringify(c.in)}`, () => {
    const p = parseConninfo(c.in);
    for (const [k, v] of Object.entries(c.want)) assert.is(conninfoValue(p, k), v, k);
  });
}

const bad: [string, RegExp][] = [
  ['host', /missing "=" after "host"/],
  ["host='abc", /unterminated quoted string/],
  ["password='it''s'", /missing "=" after the word at character 14/],
  ['password=a b', /missing "=" after the word at character 12/], // never "b": it is part of the password
];
for (const [s, re] of bad) {
  test(`refuse ${JSON.stringify(s)}`, () => {
    assert.throws(() => parseConninfo(s), (e: unknown) => e instanceof ConninfoError && re.test((e as Error).message));
  });
}

test('URI form: hosts, ports, userinfo password, query parameters', () => {
  const p = parseConninfo('postgresql://rep:s%3Acret@db1:5433,[::1]:5434/postgres?sslmode=prefer&application_name=pg2');
  assert.is(p.form, 'uri');
  assert.equal(p.uri!.hosts, ['db1', '::1']);
  assert.equal(p.uri!.ports, ['5433', '5434']);
  assert.is(conninfoValue(p, 'password'), 's:cret');
  assert.is(conninfoValue(p, 'sslmode'), 'prefer');
  assert.is(conninfoValue(p, 'host'), 'db1,::1');
  assert.throws(() => parseConninfo('postgresql://db1/?sslmode'), /missing "=" in the connection URI's parameter at character 19/);
  assert.throws(() => parseConninfo('postgresql://db1/?a=%zz'), /percent-encoding/);
});

// ---- editing: only sslmode/sslrootcert change, every other byte stays ----
const setCases: { name: string; in: string; out: string }[] = [
  {
    name: 'pg_basebackup -R style, keywords replaced in place, sslrootcert appended',
    in: "user=replicator passfile='/var/lib/postgresql/.pgpass' channel_binding=prefer host=10.0.0.1 port=5432 sslmode=prefer sslcompression=0",
    out: "user=replicator passfile='/var/lib/postgresql/.pgpass' channel_binding=prefer host=10.0.0.1 port=5432 sslmode=verify-full sslcompression=0 sslrootcert=/k/server/root.crt",
  },
  {
    name: 'no sslmode: both appended after the last pair, trailing blanks kept',
    in: "host=db1 password='p w\\'d'  ",
    out: "host=db1 password='p w\\'d' sslmode=verify-full sslrootcert=/k/server/root.crt  ",
  },
  {
    name: 'duplicates all set (libpq uses the last)',
    in: 'sslmode=disable host=db1 sslmode=prefer',
    out: 'sslmode=verify-full host=db1 sslmode=verify-full sslrootcert=/k/server/root.crt',
  },
  {
    name: 'odd spacing around = is replaced only for the keyword set',
    in: "host = db1  sslmode = 'prefer'  application_name = 'a b'",
    out: "host = db1  sslmode=verify-full  application_name = 'a b' sslrootcert=/k/server/root.crt",
  },
  {
    name: 'already right: no edit',
    in: 'host=db1 sslmode=verify-full sslrootcert=/k/server/root.crt',
    out: 'host=db1 sslmode=verify-full sslrootcert=/k/server/root.crt',
  },
  {
    name: 'URI: query parameters replaced / appended, percent-encoded',
    in: 'postgresql://rep:pw@db1:5432/?sslmode=prefer',
    out: 'postgresql://rep:pw@db1:5432/?sslmode=verify-full&sslrootcert=%2Fk%2Fserver%2Froot.crt',
  },
  { name: 'URI without a query', in: 'postgres://db1', out: 'postgres://db1?sslmode=verify-full&sslrootcert=%2Fk%2Fserver%2Froot.crt' },
];
for (const c of setCases) {
  test(`set: ${c.name}`, () => {
    const { edits, result } = setConninfoParams(c.in, { sslmode: 'verify-full', sslrootcert: '/k/server/root.crt' });
    assert.is(result, c.out);
    assert.is(edits.length === 0, c.in === c.out);
    const p = parseConninfo(result);
    assert.is(conninfoValue(p, 'sslmode'), 'verify-full');
    assert.is(conninfoValue(p, 'sslrootcert'), '/k/server/root.crt');
  });
}

test('quoteConninfoValue round-trips through the parser', () => {
  for (const v of ['plain', '', 'a b', "it's", 'back\\slash', "x'\\ y"]) {
    assert.is(conninfoValue(parseConninfo(`k=${quoteConninfoValue(v)}`), 'k'), v, v);
  }
});

test('maskConninfoPassword: keyword, quoted, URI; nothing else changes', () => {
  assert.is(maskConninfoPassword("host=db1 password='s e\\'cret' user=r"), 'host=db1 password=******** user=r');
  assert.is(maskConninfoPassword('postgresql://rep:secret@db1/?password=x&sslmode=prefer'), 'postgresql://rep:********@db1/?password=********&sslmode=prefer');
  assert.is(maskConninfoPassword('host=db1 user=r'), 'host=db1 user=r');
  assert.is(maskConninfoPassword("host=db1 password='unterminated"), 'host=db1 password********');
});

// ---- the configuration-file layer (guc-file.l quoting) ----
test('findGucAssignment: the last active line wins, comments and case ignored', () => {
  const text = [
    "#primary_conninfo = 'host=commented'",
    "primary_conninfo = 'host=first'",
    "PRIMARY_CONNINFO 'host=''q'' x=\\'y\\'' # trailing comment",
    'other = 1',
  ].join('\n');
  const a = findGucAssignment(text, 'primary_conninfo')!;
  assert.is(a.line, 3);
  assert.is(a.value, "host='q' x='y'");
  assert.is(findGucAssignment('x = 1\n', 'primary_conninfo'), null);
  assert.throws(() => findGucAssignment("primary_conninfo = 'open\n", 'primary_conninfo'), (e: unknown) => e instanceof GucFileError);
});

test('editGucValue: auto.conf line as pg_basebackup -R writes it; only the edited bytes change', () => {
  const text =
    "# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n" +
    "primary_conninfo = 'user=replicator password=''pa ss'' host=10.0.0.1 port=5432 sslmode=prefer'\n" +
    "primary_slot_name = 'pg2'\n";
  const a = findGucAssignment(text, 'primary_conninfo')!;
  assert.is(a.value, "user=replicator password='pa ss' host=10.0.0.1 port=5432 sslmode=prefer");
  const { edits, result } = setConninfoParams(a.value, { sslmode: 'verify-full', sslrootcert: "/k/it's/root.crt" });
  const out = editGucValue(text, a, edits, result);
  assert.is(
    out,
    "# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n" +
      "primary_conninfo = 'user=replicator password=''pa ss'' host=10.0.0.1 port=5432 sslmode=verify-full sslrootcert=''/k/it\\\\''s/root.crt'''\n" +
      "primary_slot_name = 'pg2'\n",
  );
  assert.is(findGucAssignment(out, 'primary_conninfo')!.value, result);
  assert.is(conninfoValue(parseConninfo(result), 'sslrootcert'), "/k/it's/root.crt");
});

test('editGucValue keeps the \\\' quoting style of the rest of the line', () => {
  const text = "primary_conninfo = 'application_name=\\'a b\\' host=db1' # set by hand\n";
  const a = findGucAssignment(text, 'primary_conninfo')!;
  const { edits, result } = setConninfoParams(a.value, { sslmode: 'verify-full' });
  assert.is(editGucValue(text, a, edits, result), "primary_conninfo = 'application_name=\\'a b\\' host=db1 sslmode=verify-full' # set by hand\n");
});

test('unquoted value becomes one quoted literal; replaceGucLine puts an original line back', () => {
  const text = 'primary_conninfo = host=db1\n';
  const a = findGucAssignment(text, 'primary_conninfo')!;
  const { edits, result } = setConninfoParams(a.value, { sslmode: 'verify-ca' });
  const out = editGucValue(text, a, edits, result);
  assert.is(out, "primary_conninfo = 'host=db1 sslmode=verify-ca'\n");
  assert.is(replaceGucLine(out, findGucAssignment(out, 'primary_conninfo')!, 'primary_conninfo = host=db1'), text);
  assert.is(quoteGucValue("a'b\\c"), "'a''b\\\\c'");
});

test('maskConninfoPasswords: the password never survives in any primary_conninfo line', () => {
  const text = [
    "primary_conninfo = 'user=r password=''s3cr3t x'' host=db1'",
    "#primary_conninfo = 'password=old-secret host=x'",
    "primary_conninfo = 'password=''broken",
    "application_name = 'password is fine here'",
  ].join('\n');
  const out = maskConninfoPasswords(text, maskConninfoPassword);
  assert.not.match(out, /s3cr3t|old-secret|broken/);
  assert.match(out, /^primary_conninfo = 'user=r password=\*\*\*\*\*\*\*\* host=db1'$/m);
  assert.match(out, /^#primary_conninfo = 'password=\*\*\*\*\*\*\*\* host=x'$/m);
  assert.match(out, /application_name = 'password is fine here'/);
});

// ---- how a version applies a new primary_conninfo ----
const policy: [number, string, string][] = [
  [170002, 'setting', 'reload'],
  [150010, 'setting', 'reload'],
  [130000, 'setting', 'reload'],
  [120017, 'setting', 'restart'],
  [110022, 'recovery.conf', 'restart'],
  [90624, 'recovery.conf', 'restart'],
];
for (const [v, location, apply] of policy) {
  test(`conninfoPolicy(${v}) = ${location}, ${apply}`, () => {
    assert.equal(conninfoPolicy(v), { location, apply });
  });
}

// ---- verify-full or verify-ca, from the inventory ----
const fleet: FleetHost[] = [
  { name: 'pg1', certNames: ['pg1', '10.0.0.11', 'db1.example.com'], address: '10.0.0.11' },
  { name: 'pg2', certNames: ['pg2', '10.0.0.12'], address: '10.0.0.12' },
];
const none = new Map<string, string[]>();
const upstreamCases: { name: string; t: [string?, string?, string?]; resolved?: Map<string, string[]>; mode: string | null; re?: RegExp }[] = [
  { name: 'ansible_host address', t: ['10.0.0.11'], mode: 'verify-full' },
  { name: 'a pgtls_cert_sans name', t: ['DB1.example.com.'], mode: 'verify-full' },
  { name: 'inventory name with hostaddr', t: ['pg2', '10.0.0.12'], mode: 'verify-full' },
  { name: 'only hostaddr', t: [undefined, '10.0.0.12'], mode: 'verify-ca', re: /only by hostaddr/ },
  { name: 'another DNS name resolving to ansible_host', t: ['db2.internal'], resolved: new Map([['db2.internal', ['10.0.0.12']]]), mode: 'verify-ca', re: /pgtls_cert_sans/ },
  { name: 'multi-host: both in the fleet', t: ['10.0.0.11,10.0.0.12', undefined, '5432,5433'], mode: 'verify-full' },
  { name: 'outside the fleet', t: ['10.9.9.9'], mode: null, re: /not a host of this inventory/ },
  { name: 'multi-host with one outside', t: ['10.0.0.11,other'], mode: null, re: /other is not a host/ },
  { name: 'Unix socket', t: ['/var/run/postgresql'], mode: null, re: /Unix socket/ },
  { name: 'no host at all', t: [], mode: null, re: /Unix socket/ },
];
for (const c of upstreamCases) {
  test(`decideUpstream: ${c.name}`, () => {
    const d = decideUpstream(targets(...c.t), fleet, c.resolved ?? none);
    assert.is(d.mode, c.mode);
    if (c.re) assert.match(d.mode === null ? d.reason : d.notes.join(' '), c.re);
  });
}

test('targets: one port for all hosts, or one each; default 5432', () => {
  assert.equal(targets('a,b', undefined, '6000'), [
    { host: 'a', hostaddr: '', port: '6000' },
    { host: 'b', hostaddr: '', port: '6000' },
  ]);
  assert.equal(targets('a,b', undefined, '1,2').map((t) => t.port), ['1', '2']);
  assert.is(targets('a', undefined, undefined)[0]!.port, '5432');
});

test.run();
