// pool_passwd AES entries checked against the real `pg_enc` (pgpool2 4.3.5): for every key file, one
// `pg_enc -m -f pgpool.conf -i users.txt` run writes users x passwords, and the resulting pool_passwd must be
// byte-identical to the lines we compute. Passwords only ever travel through the -i file, keys through a key
// file (-k or PGPOOLKEYFILE), so nothing secret is on argv.
//
// What `pg_enc -i` cannot express (src/tools/pgenc/pg_enc.c process_input_file), hence covered by our own
// round trips only:
//   - user names containing ":" (the line is split at the first colon; colons in the password are fine),
//   - passwords containing "\n" (one pair per line) or longer than 128 bytes (MAX_PGPASS_LEN),
//   - empty passwords ("invalid username:password pair"), and a line with an empty user name, which pg_enc
//     turns into an entry for the OS user running it (getpwuid), not an error.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  MAX_POOL_PASSWORD_BYTES,
  assertPoolPasswordLength,
  decryptPoolPassword,
  encryptPoolPassword,
  escapePoolPasswdUser,
  parsePoolPasswd,
  poolKeyBytesFromFile,
  poolKeyFromFile,
  poolPasswdEntry,
  upsertPoolPasswd,
} from '../../src/crypto/pool-passwd.js';

const PG_ENC = process.env.PGTLS_PG_ENC ?? '/usr/sbin/pg_enc';

interface KeyCase {
  name: string;
  /** exact key file content */
  file: string;
  /** the key pgpool derives from it */
  key: string;
  /** how pg_enc gets the key file */
  via: '-k' | 'PGPOOLKEYFILE';
}

const KEYS: KeyCase[] = [
  { name: 'lab key', file: 'probe-pgpool-key-123\n', key: 'probe-pgpool-key-123', via: '-k' },
  { name: 'spaces, second line ignored', file: 'key with  spaces \nsecond line is ignored\n', key: 'key with  spaces ', via: 'PGPOOLKEYFILE' },
  { name: 'CRLF keeps the \\r', file: 'crlf-key\r\n', key: 'crlf-key\r', via: '-k' },
  { name: 'utf-8, no trailing newline', file: 'ключ-ü€', key: 'ключ-ü€', via: '-k' },
  { name: '300-char line cut at 255 bytes', file: 'k'.repeat(300) + '\n', key: 'k'.repeat(255), via: 'PGPOOLKEYFILE' },
];

const USERS = ['app', 'ünï_user', 'user.with-dash'];

const PASSWORDS: { name: string; pw: string }[] = [
  { name: 'ascii', pw: 'appsecret' },
  { name: 'utf-8', pw: 'pässwörd' },
  { name: 'quotes', pw: `a'b"c` },
  { name: 'colons', pw: 'a:b:c' },
  { name: 'spaces', pw: '  leading and trailing  ' },
  { name: 'backslash + hash', pw: '#x\\y=z' },
  { name: 'one char', pw: 'x' },
  { name: 'exactly one AES block', pw: '0123456789abcdef' },
  { name: '79 bytes ascii', pw: 'p'.repeat(79) },
  { name: '79 bytes utf-8', pw: 'ä'.repeat(39) + 'x' },
];

function runPgEnc(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PG_ENC, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, out }));
  });
}

/** Runs `pg_enc -m -i` in its own dir (it writes dirname(pgpool.conf)/pool_passwd) and returns the file. */
async function pgEnc(root: string, name: string, keyFile: string | Buffer, via: '-k' | 'PGPOOLKEYFILE', input: string): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  const conf = path.join(dir, 'pgpool.conf');
  const key = path.join(dir, '.pgpoolkey');
  const inp = path.join(dir, 'users.txt');
  // pg_enc refuses an empty pgpool.conf ("Unable to get configuration"); one real setting is enough.
  await writeFile(conf, "backend_clustering_mode = 'streaming_replication'\n");
  await writeFile(key, keyFile, { mode: 0o600 });
  await writeFile(inp, input, { mode: 0o600 });
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: dir };
  const args = ['-m', '-f', conf, '-i', inp];
  if (via === '-k') args.push('-k', key);
  else env.PGPOOLKEYFILE = key;
  const r = await runPgEnc(args, env);
  assert.is(r.code, 0, r.out);
  assert.not.match(r.out, /LINE#|invalid|exceeds/, r.out);
  return readFile(path.join(dir, 'pool_passwd'), 'utf8');
}

const ctx = { root: '' };
const test = suite('pool_passwd vs pg_enc');

// A first test, not test.before(): uvu 0.5 swallows errors thrown in before().
test('setup', async () => {
  ctx.root = await mkdtemp(path.join(os.tmpdir(), 'pgtls-poolpw-'));
});
test.after(async () => {
  if (ctx.root) await rm(ctx.root, { recursive: true, force: true });
});

test('known answer from the lab notes (pg_enc output there)', () => {
  assert.is(poolPasswdEntry('app', 'appsecret', 'probe-pgpool-key-123'), 'app:AESuyYgDpw74IfJTmRMoIwPuw==');
  assert.is(decryptPoolPassword('AESuyYgDpw74IfJTmRMoIwPuw==', 'probe-pgpool-key-123'), 'appsecret');
});

test('poolKeyFromFile follows read_pool_key', () => {
  for (const k of KEYS) assert.is(poolKeyFromFile(k.file), k.key, k.name);
  assert.is(poolKeyFromFile('only\n\n'), 'only');
  assert.is(poolKeyFromFile('\nsecond\n'), '', 'blank first line = empty key (pgpool uses it)');
  assert.is(poolKeyFromFile('\0skipped\nnext\n'), 'next', 'a line starting with NUL reads as empty and is skipped');
  assert.is(poolKeyFromFile('ab\0cd\n'), 'ab', 'C string: stops at NUL');
  assert.throws(() => poolKeyFromFile(''), /no key/);
  // 254 ASCII bytes + a 2-byte char: the 255-byte cut splits the character
  const split = 'a'.repeat(254) + 'é';
  assert.throws(() => poolKeyFromFile(split), /UTF-8/);
  assert.is(poolKeyBytesFromFile(split)!.length, 255);
});

for (const k of KEYS) {
  test(`pg_enc -i byte-equality, key: ${k.name} (via ${k.via})`, async () => {
    const pairs = USERS.flatMap((u) => PASSWORDS.map((p, i) => ({ user: `${u}_${i}`, pw: p.pw })));
    const input = pairs.map((p) => `${p.user}:${p.pw}\n`).join('');
    const real = await pgEnc(ctx.root, `k${KEYS.indexOf(k)}`, k.file, k.via, input);

    const key = poolKeyFromFile(k.file);
    const ours = pairs.map((p) => poolPasswdEntry(p.user, p.pw, key) + '\n').join('');
    assert.is(real, ours, 'whole pool_passwd file is byte-identical');

    const parsed = parsePoolPasswd(real);
    assert.is(parsed.length, pairs.length);
    parsed.forEach((e, i) => {
      const p = pairs[i]!;
      assert.is(e.user, p.user);
      assert.is(e.type, 'aes');
      assert.not.ok(e.tooLong, `${p.user}: ${e.secret.length} chars`);
      assert.is(decryptPoolPassword(e.secret, key), p.pw, 'round trip');
      assert.is(decryptPoolPassword(e.secret, key + 'x'), null, 'wrong key');
    });
  });
}

test('empty key: pg_enc uses "" from a blank first line; we refuse it', async () => {
  const real = await pgEnc(ctx.root, 'blank', '\nignored\n', '-k', 'app:appsecret\n');
  assert.is(poolKeyFromFile('\nignored\n'), '');
  assert.match(real, /^app:AES[A-Za-z0-9+/=]+\n$/);
  assert.throws(() => encryptPoolPassword('appsecret', ''), /empty/);
});

test('80+ bytes: pg_enc writes an entry pgpool cannot read back; we refuse', async () => {
  const pw80 = 'p'.repeat(80);
  const real = await pgEnc(ctx.root, 'len80', 'probe-pgpool-key-123\n', '-k', `long:${pw80}\nok:${'p'.repeat(79)}\n`);
  const [long, ok] = parsePoolPasswd(real);
  assert.is(long!.secret.length, 131, '"AES" + 128 base64 chars');
  assert.ok(long!.tooLong, 'beyond pgpool\'s 128-char token: truncated on read -> "unable to decrypt"');
  assert.is(ok!.secret.length, 111);
  assert.not.ok(ok!.tooLong);

  assert.is(MAX_POOL_PASSWORD_BYTES, 79);
  assert.not.throws(() => assertPoolPasswordLength('ä'.repeat(39) + 'x'));
  for (const bad of [pw80, 'ä'.repeat(40), 'x'.repeat(200)]) {
    assert.throws(() => assertPoolPasswordLength(bad), /79 bytes/);
    assert.throws(() => encryptPoolPassword(bad, 'k'), /cannot decrypt/);
  }
});

test('round trips pg_enc -i cannot express, and refusals', () => {
  const key = 'probe-pgpool-key-123';
  for (const pw of ['multi\nline', 'tab\there', 'emoji 😀']) {
    assert.is(decryptPoolPassword(encryptPoolPassword(pw, key), key), pw);
  }
  assert.throws(() => encryptPoolPassword('', key), /empty/);
  assert.throws(() => encryptPoolPassword('a\0b', key), /NUL/);
  assert.throws(() => encryptPoolPassword('x', 'two\nlines'), /newline/);
  // deterministic: the idempotency check is a string comparison
  assert.is(encryptPoolPassword('same', key), encryptPoolPassword('same', key));
  assert.is.not(encryptPoolPassword('same', key), encryptPoolPassword('same', key + '!'));
  // the key may be given as bytes (e.g. from poolKeyBytesFromFile)
  assert.is(encryptPoolPassword('same', Buffer.from(key)), encryptPoolPassword('same', key));
});

test('decryptPoolPassword rejects garbage', () => {
  const key = 'k';
  const good = encryptPoolPassword('secret', key);
  assert.is(decryptPoolPassword(good + '\r', key), 'secret', 'pg_b64_decode skips whitespace (CRLF files)');
  for (const bad of ['', 'AES', 'md5abc', good.slice(3), good.slice(0, -4), 'AES!!!!', 'AESAAAA', good + 'A']) {
    assert.is(decryptPoolPassword(bad, key), null, bad);
  }
  assert.is(decryptPoolPassword(good, ''), null);
});

test('parsePoolPasswd: types, escapes, mapping, junk lines', () => {
  const text = [
    'app:AESuyYgDpw74IfJTmRMoIwPuw==',
    'legacy:md5' + 'a'.repeat(32),
    'scr:SCRAM-SHA-256$4096:c2FsdA==$a:b',
    'plain:hunter2',
    'txt:TEXThunter2',
    'we\\:ird\\\\name:AESx',
    'mapped:AESy:backend:AESz',
    'crlf:AESuyYgDpw74IfJTmRMoIwPuw==\r',
    'no colon here',
    ':emptyuser',
    '',
  ].join('\n');
  const e = parsePoolPasswd(text);
  assert.equal(
    e.map((x) => [x.user, x.type, x.secret]),
    [
      ['app', 'aes', 'AESuyYgDpw74IfJTmRMoIwPuw=='],
      ['legacy', 'md5', 'md5' + 'a'.repeat(32)],
      ['scr', 'scram-sha-256', 'SCRAM-SHA-256$4096'],
      ['plain', 'plain', 'hunter2'],
      ['txt', 'text', 'TEXThunter2'],
      ['we:ird\\name', 'aes', 'AESx'],
      ['mapped', 'aes', 'AESy'],
      ['crlf', 'aes', 'AESuyYgDpw74IfJTmRMoIwPuw==\r'],
    ],
  );
  assert.is(e[0]!.raw, 'app:AESuyYgDpw74IfJTmRMoIwPuw==');
  assert.is(decryptPoolPassword(e[7]!.secret, 'probe-pgpool-key-123'), 'appsecret');
});

test('escapes and upsert', () => {
  assert.is(escapePoolPasswdUser('plain_user'), 'plain_user');
  assert.is(escapePoolPasswdUser('we:ird\\'), 'we\\:ird\\\\');
  assert.is(parsePoolPasswd(poolPasswdEntry('we:ird\\', 'pw', 'k'))[0]!.user, 'we:ird\\');
  assert.throws(() => escapePoolPasswdUser(''), /empty/);
  assert.throws(() => escapePoolPasswdUser('a\nb'), /LF/);

  let t = upsertPoolPasswd('', 'a', 'AES1');
  assert.is(t, 'a:AES1\n');
  t = upsertPoolPasswd(t + 'b:AES2\nab:AES3\n', 'a', 'AES9');
  assert.is(t, 'a:AES9\nb:AES2\nab:AES3\n', 'replaced in place, prefix-named user untouched');
  assert.is(upsertPoolPasswd('x:1', 'y', '2'), 'x:1\ny:2\n');
  assert.throws(() => upsertPoolPasswd('', 'a', 'x\ny'));
});

test.run();
