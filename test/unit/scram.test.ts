// SCRAM-SHA-256 verifiers checked against a real PostgreSQL 15: the server hashes each password of the table
// (CREATE ROLE ... PASSWORD sent over psql's stdin), and our code must reproduce pg_authid.rolpassword byte
// for byte from the same salt and iteration count. The table is built around SASLprep, the part that is easy
// to get subtly wrong: NFKC, mapped spaces, removed characters, and every road back to the raw bytes.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHmac, createHash } from 'node:crypto';
import {
  buildScramVerifier,
  md5Verifier,
  parseScramVerifier,
  saslprep,
  scramPasswordBytes,
  scramVerifierMatches,
  verifierType,
} from '../../src/crypto/scram.js';
import { psql, sqlIdent, sqlLiteral, start, stop, type PgCluster } from './pg-throwaway.js';

type Prep = 'ascii' | 'success' | 'prohibited' | 'invalid-utf8';
interface Case {
  name: string;
  password: string;
  /** what pg_saslprep returns ('ascii' = the pure-ASCII short cut, also 'success') */
  prep: Prep;
  /** for 'success' on non-ASCII input: the normalized text PostgreSQL hashes */
  prepped?: string;
}

const CASES: Case[] = [
  { name: 'plain ascii', password: 'appsecret', prep: 'ascii' },
  { name: 'quotes and backslash', password: `a'b"c\\d`, prep: 'ascii' },
  { name: 'sql-ish', password: `'); DROP ROLE x; --`, prep: 'ascii' },
  { name: 'leading/trailing spaces', password: '  spaced out  ', prep: 'ascii' },
  { name: 'ascii control chars (short cut skips checks)', password: 'bell\u0007tab\tnl\n', prep: 'ascii' },
  { name: 'long (200 chars)', password: 'x'.repeat(199) + '!', prep: 'ascii' },
  { name: 'utf-8 NFC', password: 'pässwörd', prep: 'success', prepped: 'pässwörd' },
  { name: 'utf-8 NFD -> NFC', password: 'pa\u0308sswo\u0308rd', prep: 'success', prepped: 'pässwörd' },
  { name: 'fullwidth -> ascii (NFKC)', password: 'ｆｕｌｌｗｉｄｔｈ', prep: 'success', prepped: 'fullwidth' },
  { name: 'halfwidth katakana -> fullwidth', password: 'ｶﾀｶﾅ', prep: 'success', prepped: 'カタカナ' },
  { name: 'ligature + roman numeral', password: 'ﬁle Ⅻ', prep: 'success', prepped: 'file XII' },
  { name: 'non-ascii spaces -> U+0020', password: 'a\u00a0b\u2003c\u3000d', prep: 'success', prepped: 'a b c d' },
  { name: 'zero-width space is C.1.2 (space), not B.1', password: 'zw\u200bsp\u00e9', prep: 'success', prepped: 'zw spé' },
  { name: 'mapped to nothing (soft hyphen, ZWJ, VS16)', password: 'so\u00adft\u200dé\ufe0f', prep: 'success', prepped: 'softé' },
  { name: 'CJK', password: '日本語パスワード', prep: 'success', prepped: '日本語パスワード' },
  { name: 'RTL only (bidi ok)', password: 'שלום', prep: 'success', prepped: 'שלום' },
  { name: 'control char in non-ascii -> raw', password: 'ctrl\u0007ü', prep: 'prohibited' },
  { name: 'C1 control -> raw', password: 'c1\u0085ü', prep: 'prohibited' },
  { name: 'private use -> raw', password: 'pua\ue000', prep: 'prohibited' },
  { name: 'unassigned in Unicode 3.2 (U+0221) -> raw', password: 'x\u0221', prep: 'prohibited' },
  { name: 'emoji (unassigned in 3.2) -> raw', password: 'emoji 😀', prep: 'prohibited' },
  { name: 'mixed LTR + RTL -> raw', password: 'abc\u05d0', prep: 'prohibited' },
  { name: 'RTL not at both ends -> raw', password: '\u05d01', prep: 'prohibited' },
  { name: 'only mapped-to-nothing -> empty -> raw', password: '\u00ad', prep: 'prohibited' },
  { name: 'BOM only -> raw', password: '\ufeff', prep: 'prohibited' },
  // Raw fallback where the raw bytes differ from what mapping + NFKC would give, so a wrong 'success' verdict
  // (hashing the normalized text) could not pass against the server:
  { name: 'ligature + control -> raw (not "fi")', password: '\ufb01le\u0007', prep: 'prohibited' },
  { name: 'NBSP + private use -> raw (NBSP kept)', password: 'a\u00a0b\ue000', prep: 'prohibited' },
  { name: 'NFD + unassigned -> raw (not composed)', password: 'pa\u0308ss\u0221', prep: 'prohibited' },
  { name: 'fullwidth + RTL mix -> raw', password: '\uff46\u05d0', prep: 'prohibited' },
  { name: 'soft hyphen + emoji -> raw (hyphen kept)', password: 'so\u00adft😀', prep: 'prohibited' },
];

const WRONG = (pw: string) => pw + 'x';

const unit = suite('scram (no server)');

unit('saslprep classification and output for every case', () => {
  for (const c of CASES) {
    const r = saslprep(c.password);
    const expected = c.prep === 'ascii' ? 'success' : c.prep;
    assert.is(r.status, expected, c.name);
    if (c.prep === 'ascii') assert.ok(r.output?.equals(Buffer.from(c.password)), c.name);
    if (c.prep === 'success') assert.is(r.output?.toString('utf8'), c.prepped, c.name);
    const bytes = scramPasswordBytes(c.password);
    if (c.prep === 'prohibited') assert.ok(bytes.equals(Buffer.from(c.password)), `${c.name}: falls back to raw bytes`);
  }
});

unit('saslprep: invalid UTF-8 bytes -> raw bytes; NUL refused', () => {
  for (const raw of [Buffer.from([0x61, 0xff]), Buffer.from([0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80])]) {
    assert.is(saslprep(raw).status, 'invalid-utf8');
    assert.ok(scramPasswordBytes(raw).equals(raw));
  }
  assert.throws(() => buildScramVerifier('a\0b'), /NUL/);
  assert.not.ok(scramVerifierMatches(buildScramVerifier('ab'), 'a\0b'));
});

unit('RFC 7677 test vector: our keys drive the published exchange', () => {
  // RFC 7677 section 3: user "user", password "pencil". If our StoredKey/ServerKey are right, the published
  // ClientProof recovers StoredKey and the published ServerSignature is HMAC(ServerKey, AuthMessage).
  const v = buildScramVerifier('pencil', { salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), iterations: 4096 });
  const p = parseScramVerifier(v)!;
  const auth =
    'n=user,r=rOprNGfwEbeRWgbNEkqO,' +
    'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,' +
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
  const serverSig = createHmac('sha256', p.serverKey).update(auth).digest('base64');
  assert.is(serverSig, '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  const clientSig = createHmac('sha256', p.storedKey).update(auth).digest();
  const proof = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');
  const clientKey = Buffer.from(proof.map((b, i) => b ^ clientSig[i]!));
  assert.ok(createHash('sha256').update(clientKey).digest().equals(p.storedKey));
});

unit('buildScramVerifier: format, random salt, options, refusals', () => {
  const a = buildScramVerifier('same');
  const b = buildScramVerifier('same');
  assert.match(a, /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
  assert.is.not(a, b, 'fresh random salt each time');
  assert.ok(scramVerifierMatches(a, 'same') && scramVerifierMatches(b, 'same'));
  const fixed = { salt: Buffer.alloc(16, 7), iterations: 10 };
  assert.is(buildScramVerifier('same', fixed), buildScramVerifier('same', fixed), 'deterministic with fixed salt');
  assert.ok(buildScramVerifier('x', { iterations: 10 }).startsWith('SCRAM-SHA-256$10:'));
  assert.throws(() => buildScramVerifier(''), /empty/);
  assert.throws(() => buildScramVerifier('x', { iterations: 0 }), /iteration/);
  assert.throws(() => buildScramVerifier('x', { salt: Buffer.alloc(0) }), /salt/);
});

unit('parseScramVerifier rejects malformed input', () => {
  const good = buildScramVerifier('pw', { salt: Buffer.alloc(16, 1) });
  const parsed = parseScramVerifier(good)!;
  assert.is(parsed.iterations, 4096);
  assert.ok(parsed.salt.equals(Buffer.alloc(16, 1)));
  assert.is(parsed.storedKey.length, 32);
  const [, rest] = good.split('$4096:');
  const bad = [
    '',
    'md5' + 'a'.repeat(32),
    good.replace('SCRAM-SHA-256', 'SCRAM-SHA-1'),
    good.replace('$4096:', '$0:'),
    good.replace('$4096:', '$-1:'),
    good.replace('$4096:', '$40x96:'),
    `SCRAM-SHA-256$4096:${rest!.replace('$', () => '$$')}`, // empty field
    good.slice(0, -2), // truncated ServerKey
    good.replace(/:([^:]+)$/, ':AAAA'), // ServerKey of the wrong length
    good + ':extra',
    good.replace(/\$4096:[^$]+/, '$4096:!!!!'),
  ];
  for (const s of bad) {
    assert.is(parseScramVerifier(s), null, s);
    assert.not.ok(scramVerifierMatches(s, 'pw'), s);
  }
});

unit('md5Verifier and verifierType', () => {
  // md5('password' + 'postgres'), a classic
  assert.is(md5Verifier('postgres', 'password'), 'md5' + createHash('md5').update('passwordpostgres').digest('hex'));
  assert.is(verifierType(md5Verifier('u', 'p')), 'md5');
  assert.is(verifierType(buildScramVerifier('p')), 'scram-sha-256');
  assert.is(verifierType(null), 'none');
  assert.is(verifierType('md5NOTHEX'), 'plaintext');
});

unit.run();

// ---------------------------------------------------------------------------------------------------------

const pg = suite<{ cluster?: PgCluster; real: Map<string, string | null> }>('scram vs PostgreSQL 15', { real: new Map() });

pg.before(async (ctx) => {
  ctx.cluster = await start();
});
pg.after(async (ctx) => {
  await stop(ctx.cluster);
});

const role = (i: number) => `scram_case_${i}`;

pg('server hashes the whole table (CREATE ROLE ... PASSWORD via stdin)', async (ctx) => {
  const sql = CASES.map((c, i) => `CREATE ROLE ${sqlIdent(role(i))} LOGIN PASSWORD ${sqlLiteral(c.password)};`).join('\n');
  await psql(ctx.cluster!, `SET password_encryption = 'scram-sha-256';\n${sql}\n`);
  const out = await psql(
    ctx.cluster!,
    `SELECT json_object_agg(rolname, rolpassword) FROM pg_authid WHERE rolname LIKE 'scram\\_case\\_%';`,
  );
  const rows = JSON.parse(out.stdout) as Record<string, string | null>;
  CASES.forEach((_, i) => ctx.real.set(role(i), rows[role(i)] ?? null));
  assert.is(Object.keys(rows).length, CASES.length);
});

for (const [i, c] of CASES.entries()) {
  pg(`matches PostgreSQL: ${c.name}`, (ctx) => {
    const real = ctx.real.get(role(i));
    assert.type(real, 'string', 'server stored a verifier');
    const parsed = parseScramVerifier(real!);
    assert.ok(parsed, `parseable: ${real}`);
    assert.is(parsed!.iterations, 4096);
    assert.is(parsed!.salt.length, 16);
    assert.is(buildScramVerifier(c.password, { salt: parsed!.salt, iterations: parsed!.iterations }), real);
    assert.ok(scramVerifierMatches(real!, c.password), 'right password matches');
    assert.not.ok(scramVerifierMatches(real!, WRONG(c.password)), 'wrong password does not');
    if (c.prep === 'success' && c.prepped) {
      // the normalized spelling hashes identically: proves it is SASLprep output, not the raw bytes, that PG hashed
      assert.ok(scramVerifierMatches(real!, c.prepped));
    }
  });
}

pg('empty password: PostgreSQL stores NULL; we refuse to build one', async (ctx) => {
  const res = await psql(
    ctx.cluster!,
    `CREATE ROLE scram_empty LOGIN PASSWORD '';\nSELECT coalesce(rolpassword, '<null>') FROM pg_authid WHERE rolname = 'scram_empty';`,
  );
  assert.is(res.stdout.trim(), '<null>');
  assert.match(res.stderr, /empty string is not a valid password/);
  assert.throws(() => buildScramVerifier(''));
});

pg('md5Verifier equals what PostgreSQL stores under password_encryption = md5', async (ctx) => {
  const users = ['legacy', 'Lëgacy_ü'];
  const pw = `md5 'pw' ü`;
  const res = await psql(
    ctx.cluster!,
    `SET password_encryption = 'md5';\n` +
      users.map((u) => `CREATE ROLE ${sqlIdent(u)} LOGIN PASSWORD ${sqlLiteral(pw)};`).join('\n') +
      `\nSELECT json_object_agg(rolname, rolpassword) FROM pg_authid WHERE rolname IN (${users.map(sqlLiteral).join(', ')});`,
  );
  const rows = JSON.parse(res.stdout) as Record<string, string>;
  for (const u of users) {
    assert.is(rows[u], md5Verifier(u, pw), u);
    assert.is(verifierType(rows[u]), 'md5');
    assert.not.ok(scramVerifierMatches(rows[u]!, pw), 'an md5 hash is never a SCRAM match');
  }
});

// Logins over TCP through `host all all 127.0.0.1/32 scram-sha-256`: a verifier computed here and installed
// with ALTER ROLE must let libpq (which does its own SASLprep) authenticate with the plain password.
const LOGINS = [
  { user: 'login_ascii', set: 'S3cret-ascii', login: 'S3cret-ascii' },
  { user: 'login_nfd', set: 'pa\u0308sswo\u0308rd', login: 'pässwörd' },
  { user: 'login_raw', set: 'emoji 😀 x\u0221', login: 'emoji 😀 x\u0221' },
  { user: 'login_quotes', set: `q'u"o\\te s`, login: `q'u"o\\te s` },
];

for (const l of LOGINS) {
  pg(`our verifier logs in over TCP: ${l.user}`, async (ctx) => {
    const c = ctx.cluster!;
    const verifier = buildScramVerifier(l.set);
    await psql(c, `CREATE ROLE ${sqlIdent(l.user)} LOGIN;\nALTER ROLE ${sqlIdent(l.user)} PASSWORD ${sqlLiteral(verifier)};`);
    const stored = await psql(c, `SELECT rolpassword FROM pg_authid WHERE rolname = ${sqlLiteral(l.user)};`);
    assert.is(stored.stdout.trim(), verifier, 'PostgreSQL kept the verifier as-is (did not hash it as a password)');

    const ok = await psql(c, 'SELECT current_user;', { via: 'tcp', user: l.user, password: l.login, check: false });
    assert.is(ok.code, 0, ok.stderr);
    assert.is(ok.stdout.trim(), l.user);

    const bad = await psql(c, 'SELECT 1;', { via: 'tcp', user: l.user, password: WRONG(l.login), check: false });
    assert.is.not(bad.code, 0);
    assert.match(bad.stderr, /password authentication failed/);
  });
}

pg.run();
