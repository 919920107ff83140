// Module-level tests of `pg_enc` (and the small pure helpers of the Pgpool-II facts and restart).
// The byte-for-byte table against the real pg_enc lives in pool-passwd.test.ts (the crypto helper);
// here: what the MODULE decides and writes, with a fake read-only host.
import { MapRunState } from '../../src/core/run-state.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Secret } from '../../src/lib/secret.js';
import type { Change, FileState, PlanContext, WriteAction } from '../../src/lib/plan-types.js';
import { encryptPoolPassword, poolPasswdEntry } from '../../src/crypto/pool-passwd.js';
import { optionValue, pgpoolSetting, poolPasswdPath } from '../../src/facts/pgpool.js';
import { planPoolPasswd } from '../../src/modules/pg-enc/entries.js';
import { pgEnc } from '../../src/modules/pg-enc/module.js';
import { parseState, restartCommand } from '../../src/pgpool/restart.js';
import { quoteConninfoValue } from '../../src/pgconf/conninfo.js';

const KEY = 'probe-pgpool-key-123';

/** A host made of in-memory files; everything else fails loudly (pg_enc must not run commands). */
function fakeHost(files: Record<string, string | FileState>): { ctx: PlanContext; warnings: string[] } {
  const warnings: string[] = [];
  const ctx: PlanContext = {
    host: 'fake',
    vars: {},
    facts: { hostname: 'fake', fqdn: 'fake', addresses: [], loginUser: 'root' },

    effectiveUser: 'root',
    output: () => undefined,
    runState: new MapRunState(),
    async readFile(path) {
      const f = files[path];
      if (f === undefined) return null;
      return typeof f === 'string' ? { content: Buffer.from(f), mode: '640', owner: 'root', group: 'postgres' } : f;
    },
    query: () => Promise.reject(new Error('pg_enc must not run commands')),
    stat: () => Promise.reject(new Error('pg_enc must not run commands')),
    memo: (_k, c) => c(),
    memoStable: (_k, c) => c(),
    warn: (m) => warnings.push(m),
  };
  return { ctx, warnings };
}

function parse(a: unknown) {
  const r = pgEnc.args.safeParse(a);
  if (!r.success) throw new Error(r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return r.data;
}

const writes = (changes: Change[]) => changes.flatMap((c) => c.actions).filter((a): a is WriteAction => a.kind === 'write');
const keyFile = (mode = '600', owner = 'postgres'): FileState => ({ content: Buffer.from(KEY + '\n'), mode, owner, group: 'postgres' });

test('an entry that already decrypts to the password is kept; other lines byte for byte', () => {
  const others = 'legacy:md5' + 'a'.repeat(32) + '\nweird\\:name:AESxyz\nno colon line\r\n';
  const text = poolPasswdEntry('app', 'appsecret', KEY) + '\n' + others;
  const same = planPoolPasswd(text, [{ name: 'app', password: 'appsecret' }], KEY);
  assert.equal(same.changed, []);
  assert.is(same.text, text);

  const changed = planPoolPasswd(text, [{ name: 'app', password: 'new' }], KEY);
  assert.equal(changed.changed, ['app']);
  assert.is(changed.text, poolPasswdEntry('app', 'new', KEY) + '\n' + others, 'replaced in place, the rest untouched');
});

test('md5/text entries and entries under another key are replaced; foreign AES entries reported', () => {
  const text = `web:md5${'b'.repeat(32)}\npgpool:${encryptPoolPassword('pw', 'other-key')}\nsomeone:${encryptPoolPassword('x', 'other-key')}\n`;
  const p = planPoolPasswd(text, [{ name: 'web', password: 'w' }, { name: 'pgpool', password: 'pw' }, { name: 'new', password: 'n' }], KEY);
  assert.equal(p.changed, ['web', 'pgpool', 'new']);
  assert.equal(p.undecryptable, ['someone']);
  assert.ok(p.text.endsWith(`someone:${encryptPoolPassword('x', 'other-key')}\nnew:${encryptPoolPassword('n', KEY)}\n`));
});

test('validation: 79 bytes accepted, 80 refused (counted in UTF-8 bytes), message without the password', () => {
  const ok = parse({ key_file: '/k', path: '/p', users: [{ name: 'a', password: 'p'.repeat(79) }] });
  assert.is(ok.users.length, 1);
  assert.ok(ok.users[0]!.password instanceof Secret);
  for (const pw of ['p'.repeat(80), 'ä'.repeat(40), 'x'.repeat(200)]) {
    const r = pgEnc.args.safeParse({ key_file: '/k', path: '/p', users: [{ name: 'a', password: pw }] });
    assert.not.ok(r.success, `${Buffer.byteLength(pw)} bytes must be refused`);
    const msg = r.error!.issues.map((i) => i.message).join(' ');
    assert.match(msg, /over 79 bytes/);
    assert.not.ok(msg.includes(pw), 'the password is not echoed');
  }
  assert.not.ok(pgEnc.args.safeParse({ key_file: '/k', path: '/p', users: [{ name: 'a', password: '' }] }).success);
});

test('validation: nested lists are flattened (pgtls_users), duplicates and missing path/conf refused', () => {
  const a = parse({
    key_file: '/k',
    conf_file: '/etc/pgpool2/pgpool.conf',
    users: [{ name: 'webadmin', password: 'w' }, [{ name: 'app', password: 'a', cert: true }, { name: 'b', password: 'b' }]],
  });
  assert.equal(a.users.map((u) => u.name), ['webadmin', 'app', 'b']);
  assert.not.ok(pgEnc.args.safeParse({ key_file: '/k', path: '/p', users: [{ name: 'a', password: 'x' }, [{ name: 'a', password: 'y' }]] }).success);
  assert.not.ok(pgEnc.args.safeParse({ key_file: '/k', users: [] }).success);
});

test('plan: pool_passwd path from pgpool.conf, one redacted change, existing owner/mode kept', async () => {
  const conf = "# pool_passwd = 'ignored'\npool_passwd = 'pp/custom'   # relative to the conf dir\n";
  const { ctx } = fakeHost({ '/etc/pgpool-II/pgpool.conf': conf, '/var/lib/pgsql/.pgpoolkey': keyFile(), '/etc/pgpool-II/pp/custom': 'other:AESabc\n' });
  const changes = await pgEnc.plan(ctx, parse({ conf_file: '/etc/pgpool-II/pgpool.conf', key_file: '/var/lib/pgsql/.pgpoolkey', users: [{ name: 'webadmin', password: 's3cret' }] }));
  assert.is(changes.length, 1);
  const c = changes[0]!;
  assert.equal(c.diff?.kind, 'redacted');
  assert.not.ok(JSON.stringify(c).includes('s3cret'));
  const [w] = writes(changes);
  assert.is(w!.path, '/etc/pgpool-II/pp/custom');
  assert.is(w!.mode, undefined, 'an existing file keeps its mode and owner');
  assert.is(w!.content.toString(), `other:AESabc\nwebadmin:${encryptPoolPassword('s3cret', KEY)}\n`);
  // converged: nothing to do
  const again = fakeHost({ '/etc/pgpool-II/pgpool.conf': conf, '/var/lib/pgsql/.pgpoolkey': keyFile(), '/etc/pgpool-II/pp/custom': w!.content.toString() });
  assert.equal(await pgEnc.plan(again.ctx, parse({ conf_file: '/etc/pgpool-II/pgpool.conf', key_file: '/var/lib/pgsql/.pgpoolkey', users: [{ name: 'webadmin', password: 's3cret' }] })), []);
});

test('plan: no key file -> a random key (0600, pgpool user), never shown, and entries use it', async () => {
  const { ctx } = fakeHost({});
  const a = parse({ path: '/etc/pgpool2/pool_passwd', key_file: '/home/pg/.pgpoolkey', os_user: 'pg', users: [{ name: 'u', password: 'pw' }] });
  const changes = await pgEnc.plan(ctx, a);
  const [key, pp] = writes(changes);
  assert.is(key!.path, '/home/pg/.pgpoolkey');
  assert.is(key!.mode, '600');
  assert.is(key!.owner, 'pg');
  const k = key!.content.toString().trimEnd();
  assert.ok(k.length >= 40 && k !== 'defaultpgpoolkey');
  assert.is(changes[0]!.diff?.kind, 'redacted');
  assert.not.ok(JSON.stringify(changes.map((c) => [c.summary, c.diff])).includes(k), 'the key never appears in summaries or diffs');
  assert.is(pp!.content.toString(), `u:${encryptPoolPassword('pw', k)}\n`);
  assert.is(pp!.mode, '600');
  const second = await pgEnc.plan(fakeHost({}).ctx, a);
  assert.is.not(writes(second)[0]!.content.toString(), key!.content.toString(), 'random per creation');
});

test('plan: warns about the well-known key and a key pgpool cannot read', async () => {
  const { ctx, warnings } = fakeHost({
    '/k': { content: Buffer.from('defaultpgpoolkey\n'), mode: '600', owner: 'root', group: 'root' },
    '/p': '',
  });
  await pgEnc.plan(ctx, parse({ path: '/p', key_file: '/k', users: [{ name: 'u', password: 'pw' }] }));
  assert.is(warnings.length, 2);
  assert.match(warnings[0]!, /publicly known/);
  assert.match(warnings[1]!, /may not be able to read/);
});

test('plan: a null password (pgpool_password not set) keeps that entry, with a warning', async () => {
  const line = `pgpool:${encryptPoolPassword('old', 'another-key')}\n`;
  const { ctx, warnings } = fakeHost({ '/k': keyFile(), '/p': line });
  const changes = await pgEnc.plan(ctx, parse({ path: '/p', key_file: '/k', users: [{ name: 'pgpool', password: null }, { name: 'w', password: 'pw' }] }));
  assert.is(writes(changes)[0]!.content.toString(), line + `w:${encryptPoolPassword('pw', KEY)}\n`);
  assert.ok(warnings.some((w) => /no password given for pgpool/.test(w)), warnings.join('\n'));
});

// The whole module path (key file -> entries -> file text) against the real pg_enc, when installed.
const PG_ENC = process.env.PGTLS_PG_ENC ?? '/usr/sbin/pg_enc';
test('plan output equals `pg_enc -m -i` on the same key file, and is converged on pg_enc\'s own file', async () => {
  // Under CI the real tool must be there (pgpool2 is installed by .ci/run): a missing pg_enc fails.
  if (!existsSync(PG_ENC) && process.env['CI'] !== 'true') return console.log('  (pg_enc not installed: skipped)');
  assert.ok(existsSync(PG_ENC), `${PG_ENC} is missing (Debian package pgpool2)`);
  const dir = mkdtempSync(join(tmpdir(), 'pgtls-pgenc-'));
  const users = [
    { name: 'webadmin', password: `Web Admin's "pw" 1` },
    { name: 'appuser', password: "app:pa ss'w0rd" },
    { name: 'ünï', password: 'pässwörd' },
    { name: 'long', password: 'p'.repeat(79) },
  ];
  writeFileSync(join(dir, 'pgpool.conf'), "backend_clustering_mode = 'streaming_replication'\n"); // pg_enc refuses an empty one
  writeFileSync(join(dir, 'pool_passwd'), '');
  writeFileSync(join(dir, 'key'), KEY + '\n', { mode: 0o600 });
  writeFileSync(join(dir, 'in'), users.map((u) => `${u.name}:${u.password}\n`).join(''), { mode: 0o600 });
  const r = spawnSync(PG_ENC, ['-m', '-k', join(dir, 'key'), '-f', join(dir, 'pgpool.conf'), '-i', join(dir, 'in')], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const real = readFileSync(join(dir, 'pool_passwd'), 'utf8');
  const files = { [join(dir, 'key')]: keyFile(), [join(dir, 'pool_passwd')]: '', [join(dir, 'pgpool.conf')]: '' };
  const a = parse({ conf_file: join(dir, 'pgpool.conf'), key_file: join(dir, 'key'), users });
  assert.is(writes(await pgEnc.plan(fakeHost(files).ctx, a))[0]!.content.toString(), real);
  assert.equal(await pgEnc.plan(fakeHost({ ...files, [join(dir, 'pool_passwd')]: real }).ctx, a), []);
});

test('pgpool.conf parsing: last active line wins, quotes, comments, no prefix matches', () => {
  const conf = "#port = 5433\nport = 9999 # the port\nportx = 1\nssl_key = 'a''b\\'c.key'\nssl_key = '/k/server.key'\nssl=on\n";
  assert.is(pgpoolSetting(conf, 'port'), '9999');
  assert.is(pgpoolSetting(conf, 'ssl_key'), '/k/server.key');
  assert.is(pgpoolSetting("ssl_key = 'a''b\\'c.key'", 'ssl_key'), "a'b'c.key");
  assert.is(pgpoolSetting(conf, 'ssl'), 'on');
  assert.is(pgpoolSetting(conf, 'ssl_cert'), undefined);
  assert.is(poolPasswdPath('/etc/pgpool2/pgpool.conf', ''), '/etc/pgpool2/pool_passwd');
  assert.is(poolPasswdPath('/etc/pgpool2/pgpool.conf', "pool_passwd = '/srv/pp'"), '/srv/pp');
  assert.is(poolPasswdPath('/etc/pgpool2/pgpool.conf', "pool_passwd = ''"), '/etc/pgpool2/pool_passwd');
});

test('pgpool argv options, restart state parsing, conninfo quoting', () => {
  assert.is(optionValue(['/usr/sbin/pgpool', '-n', '-f', '/x/pgpool.conf'], 'f', 'config-file'), '/x/pgpool.conf');
  assert.is(optionValue(['pgpool', '--config-file=/y.conf', '-k/key'], 'f', 'config-file'), '/y.conf');
  assert.is(optionValue(['pgpool', '-k/key'], 'k', 'key-file'), '/key');
  assert.is(optionValue(['pgpool', '-n'], 'k', 'key-file'), undefined);
  const st = parseState('running 42 1700000000.5\nfile 1700000001.25 - /etc/pgpool2/pgpool.conf\nabsent /k\n');
  assert.equal(st.running, { pid: 42, startedAt: 1700000000.5 });
  assert.equal(st.files.get('/etc/pgpool2/pgpool.conf'), { ctime: 1700000001.25, sha256: null });
  assert.is(st.files.get('/k'), null);
  assert.is(parseState('stopped\n').running, null);
  assert.type(restartCommand({ kind: 'unknown' }, '', { pidFile: '/p', port: 1, waitSeconds: 1 }), 'string');
  assert.type(restartCommand({ kind: 'unknown' }, 'my-restart', { pidFile: '/p', port: 1, waitSeconds: 1 }), 'object');
  assert.is(quoteConninfoValue("it's a \\ path"), "'it\\'s a \\\\ path'");
});

// The same role from two sources (pgpool_password and pgtls_users) is one entry.
const duplicateCases: { name: string; users: unknown[]; ok: boolean; count?: number }[] = [
  { name: 'same password twice', users: [{ name: 'pgpool', password: 'p' }, [{ name: 'pgpool', password: 'p' }]], ok: true, count: 1 },
  { name: 'keep (null) then a password', users: [{ name: 'pgpool', password: null }, [{ name: 'pgpool', password: 'p' }]], ok: true, count: 1 },
  { name: 'two different passwords', users: [{ name: 'pgpool', password: 'p' }, [{ name: 'pgpool', password: 'q' }]], ok: false },
];
for (const c of duplicateCases) {
  test(`pg_enc users: ${c.name}`, () => {
    const r = pgEnc.args.safeParse({ users: c.users, conf_file: '/etc/pgpool2/pgpool.conf', key_file: '/var/lib/postgresql/.pgpoolkey', os_user: 'postgres' });
    assert.is(r.success, c.ok, JSON.stringify(r.error?.issues));
    if (r.success) assert.is((r.data as { users: unknown[] }).users.length, c.count);
  });
}

test.run();
