import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isLoopbackAddress } from '../../src/hba/address.js';
import { hbaQuote, REJECT_MARK, rewriteHba, type HbaRewriteOptions } from '../../src/hba/rewrite.js';

/** Joins lines with \n and ends the file with one. Every expected output below is written by hand. */
const f = (...l: string[]): string => `${l.join('\n')}\n`;

const HEADER = '# TYPE  DATABASE        USER            ADDRESS                 METHOD';
const CATCH4 = 'hostssl all             all             0.0.0.0/0               scram-sha-256';
const CATCH6 = 'hostssl all             all             ::/0                    scram-sha-256';
const MARK = '# pgtls: remote clients need TLS and SCRAM-SHA-256';

interface Case {
  name: string;
  input: string;
  opts?: HbaRewriteOptions;
  expect: string;
  warnings?: RegExp[];
}

const cases: Case[] = [
  {
    name: 'Debian layout with md5: host rules (IPv4, IPv6, replication) rewritten, local untouched, catch-alls appended',
    input: f(
      HEADER,
      'local   all             postgres                                peer',
      'local   all             all                                     md5',
      'host    all             all             127.0.0.1/32            md5',
      'host    all             all             ::1/128                 md5',
      'local   replication     all                                     peer',
      'host    replication     all             127.0.0.1/32            md5',
      'host    replication     all             ::1/128                 md5',
    ),
    expect: f(
      HEADER,
      'local   all             postgres                                peer',
      'local   all             all                                     md5',
      'hostssl all             all             127.0.0.1/32            scram-sha-256',
      'hostssl all             all             ::1/128                 scram-sha-256',
      'local   replication     all                                     peer',
      'hostssl replication     all             127.0.0.1/32            scram-sha-256',
      'hostssl replication     all             ::1/128                 scram-sha-256',
      '',
      MARK,
      CATCH4,
      CATCH6,
    ),
  },
  {
    name: 'already converted file is returned byte for byte',
    input: f(
      'local   all             all                                     peer',
      'hostssl all             all             127.0.0.1/32            scram-sha-256',
      '',
      MARK,
      CATCH4,
      CATCH6,
    ),
    expect: f(
      'local   all             all                                     peer',
      'hostssl all             all             127.0.0.1/32            scram-sha-256',
      '',
      MARK,
      CATCH4,
      CATCH6,
    ),
  },
  {
    name: 'non-password methods are left alone; host trust is reported',
    input: f(
      'host    all             all             10.1.0.0/16             trust',
      'host    all             ops             10.2.0.0/16             ident',
      'hostssl all             app             10.3.0.0/16             cert',
      'host    all             bad             10.4.0.0/16             reject',
      'hostssl all             all             0.0.0.0/0               scram-sha-256',
      'hostssl all             all             ::/0                    scram-sha-256',
    ),
    expect: f(
      'host    all             all             10.1.0.0/16             trust',
      'host    all             ops             10.2.0.0/16             ident',
      'hostssl all             app             10.3.0.0/16             cert',
      'host    all             bad             10.4.0.0/16             reject',
      'hostssl all             all             0.0.0.0/0               scram-sha-256',
      'hostssl all             all             ::/0                    scram-sha-256',
    ),
    warnings: [/line 1: 'host … trust' still accepts connections without TLS/, /line 2: 'host … ident'/],
  },
  {
    name: 'password and hostnossl md5 become hostssl scram (hostnossl is 2 chars longer: the gap grows)',
    input: f(
      'host      all  all  10.0.0.0/8  password',
      'hostnossl all  all  10.9.0.0/16 md5',
      'hostssl   all  all  0.0.0.0/0   md5',
      'hostssl   all  all  ::/0        password',
    ),
    expect: f(
      'hostssl   all  all  10.0.0.0/8  scram-sha-256',
      'hostssl   all  all  10.9.0.0/16 scram-sha-256',
      'hostssl   all  all  0.0.0.0/0   scram-sha-256',
      'hostssl   all  all  ::/0        scram-sha-256',
    ),
  },
  {
    name: 'hostnossl reject stays and does not count as a catch-all',
    input: f('hostnossl all all 0.0.0.0/0 reject', 'hostnossl all all ::/0 reject'),
    expect: f(
      'hostnossl all all 0.0.0.0/0 reject',
      'hostnossl all all ::/0 reject',
      '',
      MARK,
      'hostssl all all 0.0.0.0/0 scram-sha-256',
      'hostssl all all ::/0 scram-sha-256',
    ),
  },
  {
    name: 'address with a separate netmask column: the method is the 6th field',
    input: f('host all all 192.168.0.0 255.255.0.0 md5', 'host all all 0.0.0.0 0.0.0.0 md5'),
    expect: f(
      'hostssl all all 192.168.0.0 255.255.0.0 scram-sha-256',
      'hostssl all all 0.0.0.0 0.0.0.0 scram-sha-256',
      '',
      MARK,
      'hostssl all all ::/0 scram-sha-256',
    ),
  },
  {
    name: 'auth options and trailing comments are kept; later columns keep their place',
    input: f(
      'host    all     all     10.0.0.0/8      md5     clientcert=verify-ca',
      'host    sales   all     10.5.0.0/16     md5     # office',
      'host    all     all     0.0.0.0/0       md5',
      'host    all     all     ::/0            md5',
    ),
    expect: f(
      'hostssl all     all     10.0.0.0/8      scram-sha-256 clientcert=verify-ca',
      'hostssl sales   all     10.5.0.0/16     scram-sha-256 # office',
      'hostssl all     all     0.0.0.0/0       scram-sha-256',
      'hostssl all     all     ::/0            scram-sha-256',
    ),
  },
  {
    name: 'commented-out rules are not rewritten (the seed turned #host into #hostssl)',
    input: f('#host all all 0.0.0.0/0 md5', '# host all all ::/0 md5', 'hostssl all all all scram-sha-256'),
    expect: f('#host all all 0.0.0.0/0 md5', '# host all all ::/0 md5', 'hostssl all all all scram-sha-256'),
  },
  {
    name: 'an earlier catch-all reject wins first-match: nothing is added for that family',
    input: f('host all all 0.0.0.0/0 reject', 'host all all 10.0.0.0/8 md5'),
    expect: f(
      'host all all 0.0.0.0/0 reject',
      'hostssl all all 10.0.0.0/8 scram-sha-256',
      '',
      MARK,
      'hostssl all all ::/0 scram-sha-256',
    ),
  },
  {
    name: 'address `all` covers both families',
    input: f('host all all all md5'),
    expect: f('hostssl all all all scram-sha-256'),
  },
  {
    name: 'cert_users go directly above the first password rule, after earlier rejects',
    input: f(
      'local   all     postgres                        peer',
      'host    all     mallory 0.0.0.0/0               reject',
      'host    all     all     10.0.0.0/8              md5',
    ),
    opts: { certUsers: ['certuser'] },
    expect: f(
      'local   all     postgres                        peer',
      'host    all     mallory 0.0.0.0/0               reject',
      'hostssl all     certuser 0.0.0.0/0              cert',
      'hostssl all     certuser ::/0                   cert',
      'hostssl all     all     10.0.0.0/8              scram-sha-256',
      '',
      MARK,
      'hostssl all     all     0.0.0.0/0               scram-sha-256',
      'hostssl all     all     ::/0                    scram-sha-256',
    ),
  },
  {
    name: 'cert_users already present: no change (second run)',
    input: f(
      'hostssl all certuser 0.0.0.0/0 cert',
      'hostssl all certuser ::/0 cert',
      'hostssl all all 0.0.0.0/0 scram-sha-256',
      'hostssl all all ::/0 scram-sha-256',
    ),
    opts: { certUsers: ['certuser'] },
    expect: f(
      'hostssl all certuser 0.0.0.0/0 cert',
      'hostssl all certuser ::/0 cert',
      'hostssl all all 0.0.0.0/0 scram-sha-256',
      'hostssl all all ::/0 scram-sha-256',
    ),
  },
  {
    name: 'cert user needing quotes, no TCP rule at all: Debian columns, cert lines before the catch-alls',
    input: f('local all all peer'),
    opts: { certUsers: ['Bob Smith'] },
    expect: f(
      'local all all peer',
      'hostssl all             "Bob Smith"     0.0.0.0/0               cert',
      'hostssl all             "Bob Smith"     ::/0                    cert',
      '',
      MARK,
      CATCH4,
      CATCH6,
    ),
  },
  {
    name: 'tab-separated file stays tab-separated',
    input: f('local\tall\tall\t\tpeer', 'host\tall\tall\t127.0.0.1/32\tmd5'),
    expect: f(
      'local\tall\tall\t\tpeer',
      'hostssl\tall\tall\t127.0.0.1/32\tscram-sha-256',
      '',
      MARK,
      'hostssl\tall\tall\t0.0.0.0/0\tscram-sha-256',
      'hostssl\tall\tall\t::/0\tscram-sha-256',
    ),
  },
  {
    name: 'quoted database and user names with spaces and #',
    input: f('host "my db" "bob #1" 10.0.0.0/8 md5 # why'),
    opts: { catchAll: false },
    expect: f('hostssl "my db" "bob #1" 10.0.0.0/8 scram-sha-256 # why'),
  },
  {
    name: 'empty file gets only the catch-alls',
    input: '',
    expect: f(MARK, CATCH4, CATCH6),
  },
  {
    name: 'CRLF line endings are kept',
    input: 'host all all 10.0.0.0/8 md5\r\n',
    opts: { catchAll: false },
    expect: 'hostssl all all 10.0.0.0/8 scram-sha-256\r\n',
  },
  {
    name: 'catch_all off: only rewrites',
    input: f('host all all 10.0.0.0/8 md5', 'local all all md5'),
    opts: { catchAll: false },
    expect: f('hostssl all all 10.0.0.0/8 scram-sha-256', 'local all all md5'),
  },
  {
    name: 'hostgssenc and unknown types are left; include directives are reported',
    input: f('hostgssenc all all 0.0.0.0/0 md5', 'include_dir conf.d', 'hostssl all all all cert'),
    expect: f('hostgssenc all all 0.0.0.0/0 md5', 'include_dir conf.d', 'hostssl all all all cert'),
    warnings: [/line 2: include_dir conf.d: included files are not rewritten/],
  },
  {
    name: 'no final newline and nothing to do: untouched',
    input: 'hostssl all all all scram-sha-256',
    expect: 'hostssl all all all scram-sha-256',
  },
  {
    name: 'PostgreSQL 16 continuation lines are left alone with a warning',
    input: f('host all all \\', '  10.0.0.0/8 md5', 'hostssl all all all scram-sha-256'),
    expect: f('host all all \\', '  10.0.0.0/8 md5', 'hostssl all all all scram-sha-256'),
    warnings: [/line 1: continued rule left unchanged/],
  },
  {
    name: 'reject_plaintext: hostnossl … reject (IPv4, IPv6, replication) directly above the first remote rule; loopback rules above keep working',
    input: f(
      'local   all             postgres                                peer',
      'hostssl all             all             127.0.0.1/32            scram-sha-256',
      'host    all             all             ::1/128                 trust',
      'local   replication     all                                     peer',
      'host    all             all             10.0.0.0/8              trust',
      CATCH4,
      CATCH6,
    ),
    opts: { rejectPlaintext: true },
    expect: f(
      'local   all             postgres                                peer',
      'hostssl all             all             127.0.0.1/32            scram-sha-256',
      'host    all             all             ::1/128                 trust',
      'local   replication     all                                     peer',
      REJECT_MARK,
      'hostnossl all           all             0.0.0.0/0               reject',
      'hostnossl all           all             ::/0                    reject',
      'hostnossl replication   all             0.0.0.0/0               reject',
      'hostnossl replication   all             ::/0                    reject',
      'host    all             all             10.0.0.0/8              trust',
      CATCH4,
      CATCH6,
    ),
  },
  {
    name: 'reject_plaintext without remote rules: at the end, above the catch-alls; pool_hba has no replication rules',
    input: f('local all all peer', 'host all all 127.0.0.1/32 md5'),
    opts: { rejectPlaintext: true, rejectReplication: false },
    expect: f(
      'local all all peer',
      'hostssl all all 127.0.0.1/32 scram-sha-256',
      REJECT_MARK,
      'hostnossl all all 0.0.0.0/0 reject',
      'hostnossl all all ::/0 reject',
      '',
      MARK,
      'hostssl all all 0.0.0.0/0 scram-sha-256',
      'hostssl all all ::/0 scram-sha-256',
    ),
  },
  {
    name: 'reject_plaintext: a loopback rule below the first remote rule is reported (its non-TLS clients now meet the reject rules)',
    input: f('host all all 0.0.0.0/0 md5', 'host all all 127.0.0.1/32 trust'),
    opts: { rejectPlaintext: true, catchAll: false },
    expect: f(
      REJECT_MARK,
      'hostnossl all all 0.0.0.0/0 reject',
      'hostnossl all all ::/0 reject',
      'hostnossl replication all 0.0.0.0/0 reject',
      'hostnossl replication all ::/0 reject',
      'hostssl all all 0.0.0.0/0 scram-sha-256',
      'host all all 127.0.0.1/32 trust',
    ),
    warnings: [/'host all all 127\.0\.0\.1\/32 trust' \(loopback\) is below the first remote rule/],
  },
  {
    name: 'reject_plaintext: rules already there (some of them) are not added twice',
    input: f('hostnossl all all 0.0.0.0/0 reject', 'hostssl all all all scram-sha-256'),
    opts: { rejectPlaintext: true, catchAll: false, rejectReplication: false },
    expect: f(REJECT_MARK, 'hostnossl all all ::/0 reject', 'hostnossl all all 0.0.0.0/0 reject', 'hostssl all all all scram-sha-256'),
  },
];

test('without reject_plaintext: only remote rules without TLS are reported, loopback ones are not', () => {
  const r = rewriteHba(f('host all all 127.0.0.1/32 trust', 'host all all ::1/128 ident', 'host all all localhost trust', 'host all all 10.0.0.0/8 trust', 'host all all 127.0.0.1 0.0.0.0 trust'));
  assert.equal(r.warnings.map((w) => w.replace(/'.*$/, '')), ['line 4: ', 'line 5: ']);
  assert.equal(rewriteHba(f('host all all 10.0.0.0/8 trust'), { rejectPlaintext: true }).warnings, [], 'the reject rules above it answer non-TLS clients first');
});

test('loopback addresses', () => {
  const yes: [string, string?][] = [['127.0.0.1/32'], ['127.0.0.0/8'], ['127.1.2.3'], ['127.0.0.1', '255.255.255.255'], ['::1/128'], ['::1'], ['0:0:0:0:0:0:0:1/128'], ['localhost'], ['samehost']];
  const no: [string | null, string?][] = [['0.0.0.0/0'], ['126.0.0.0/7'], ['127.0.0.1', '0.0.0.0'], ['::/0'], ['::1/64'], ['10.0.0.0/8'], ['samenet'], ['all'], ['db.example.com'], [null], ['127.0.0.1/x']];
  for (const [a, m] of yes) assert.ok(isLoopbackAddress(a, m), `${a} ${m ?? ''}`);
  for (const [a, m] of no) assert.not.ok(isLoopbackAddress(a, m), `${a} ${m ?? ''}`);
});

for (const c of cases) {
  test(c.name, () => {
    const r = rewriteHba(c.input, c.opts);
    assert.fixture(r.text, c.expect);
    assert.is(r.changed, c.input !== c.expect);
    for (const w of c.warnings ?? []) assert.ok(r.warnings.some((x) => w.test(x)), `warning ${w} in ${JSON.stringify(r.warnings)}`);
    // Idempotent: a second pass changes nothing.
    const again = rewriteHba(r.text, c.opts);
    assert.fixture(again.text, r.text);
    assert.is(again.changed, false);
  });
}

test('hbaQuote quotes keywords and names with special characters', () => {
  assert.is(hbaQuote('webadmin'), 'webadmin');
  assert.is(hbaQuote('all'), '"all"');
  assert.is(hbaQuote('a"b c'), '"a""b c"');
});

test.run();
