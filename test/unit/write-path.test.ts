// The write path against a hostile database user, on this machine: pgtls's own host scripts run as
// root (through the executor-level code: HostShell, writeRemoteFile, the gencert commands, the
// restore_originals module on a HostSession) in a temp dir, against an unprivileged user created
// for the test. One row per finding of issue 9 points 1-3 (and the read cap, owner/mode on
// uninstall), then the issue 10 write guarantees: a cut stdin never installs a partial file, a dead
// run's rollback copies are never restored, one run at a time per host.
//
// The attacker is deterministic: a `sync` on PATH (the scripts call it right after a temp file got
// its content, the moment an inotify watcher would win) swaps, with the attacker's rights, every
// pgtls temp file in the attacked directory for a link to a root-owned canary.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostSession } from '../../src/core/host-session.js';
import type { Action, PlanContext } from '../../src/lib/plan-types.js';
import { keyAttrsCommand, keyDirsCommand, keygenCommand, probeCommand } from '../../src/modules/gencert/host.js';
import { restoreOriginals } from '../../src/modules/restore-originals/module.js';
import { parseReadMany, readRemoteFile, readRemoteFiles, writeRemoteFile } from '../../src/remote/files.js';
import { HostShell } from '../../src/remote/host-shell.js';
import { sh as shCommand } from '../../src/lib/sh.js';
import { lockHost, unlockHost } from '../../src/remote/lock.js';
import { execBatch, parseBatch } from '../../src/remote/batch.js';
import { RemoteCommandError } from '../../src/lib/transport.js';
import { Secret } from '../../src/lib/secret.js';
import { ALL_SCRIPTS, compactScript, diropScript, hostScript, scriptFile } from '../../src/remote/scripts.js';
import { STANDALONE_SCRIPTS, standaloneScript } from '../../src/remote/standalone-scripts.js';
import { recordBase, RecordSigner, type StateStore } from '../../src/remote/state.js';
import { LocalTransport } from './local-host.js';

const USER = 'pgtlsfsec';
const isRoot = process.getuid?.() === 0;
const sh = (cmd: string) => execFileSync('sh', ['-c', cmd]).toString();

let created = false;
function ensureUser(): void {
  if (spawnSync('id', ['-u', USER]).status === 0) return;
  execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER]);
  created = true;
}

interface Box {
  root: string;
  /** root:root 0600, secret content */
  canary: string;
  /** root:root 0700 with a file inside */
  canaryDir: string;
  /** owned by the attacker (like /etc/postgresql/15/main or the data directory) */
  userDir: string;
  state: string;
  hook: string;
}

const boxes: string[] = [];
function box(): Box {
  const root = mkdtempSync('/tmp/pgtls-fsec-');
  boxes.push(root);
  chmodSync(root, 0o755);
  const b: Box = { root, canary: join(root, 'canary'), canaryDir: join(root, 'canary-dir'), userDir: join(root, 'pg'), state: join(root, 'state'), hook: join(root, 'hook') };
  writeFileSync(b.canary, 'root secret\n', { mode: 0o600 });
  mkdirSync(b.canaryDir, { mode: 0o700 });
  writeFileSync(join(b.canaryDir, 'inside'), 'root file\n', { mode: 0o600 });
  mkdirSync(b.userDir, { mode: 0o755 });
  sh(`chown ${USER}: ${b.userDir}`);
  return b;
}

/** Owner, mode and content of the canaries (and of everything in the canary directory). */
function canaries(b: Box): string {
  return sh(`cd ${b.root} && stat -c '%a %U %G %n' canary canary-dir canary-dir/* && sha256sum canary canary-dir/*`);
}

/** As the attacker. */
function asUser(cmd: string): void {
  execFileSync('runuser', ['-u', USER, '--', 'sh', '-c', cmd]);
}

/** The attacker's hook: every pgtls temp file in DIR becomes a link to TARGET, with the attacker's rights. */
function armSwapHook(b: Box, dir: string, target: string): NodeJS.ProcessEnv {
  mkdirSync(b.hook, { mode: 0o755, recursive: true });
  const swap = `for f in ${dir}/.pgtls-tmp.* ${dir}/.*.pgtls-new*; do [ -f "$f" ] && [ ! -L "$f" ] || continue; rm -f "$f" && ln -s ${target} "$f" && echo swapped >> ${b.hook}/won; done 2>/dev/null; true`;
  writeFileSync(join(b.hook, 'swap'), swap);
  writeFileSync(
    join(b.hook, 'sync'),
    `#!/bin/sh\nif [ "$(id -u)" = 0 ]; then runuser -u ${USER} -- sh ${b.hook}/swap; else sh ${b.hook}/swap; fi\nexec /bin/sync "$@"\n`,
    { mode: 0o755 },
  );
  chmodSync(b.hook, 0o777); // the attacker records its wins here
  return { ...process.env, PATH: `${b.hook}:${process.env.PATH}` };
}

function host(env?: NodeJS.ProcessEnv): { t: LocalTransport; shell: HostShell } {
  const t = new LocalTransport();
  if (env) t.env = env;
  return { t, shell: new HostShell(t, 'root', false) };
}

const KEY = Buffer.alloc(32, 7);
function store(b: Box, track = true): StateStore {
  return { dir: b.state, track, signer: track ? new RecordSigner('h', KEY) : null };
}

function refusal(e: unknown): string {
  const r = (e as { result?: { stderr: Buffer } }).result;
  return `${(e as Error).message} ${r ? r.stderr.toString() : ''}`;
}

async function rejects(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return refusal(e);
  }
  throw new Error('expected a refusal, the operation succeeded');
}

function session(b: Box, runId: string, env?: NodeJS.ProcessEnv) {
  const { t } = host(env);
  const s = new HostSession('h', t, 'root', { hostname: 'h', fqdn: 'h', addresses: [], loginUser: 'root' }, false, runId);
  const vars = { pgtls_state_dir: b.state, pgtls_state_key_file: join(b.root, 'state.key') };
  writeFileSync(join(b.root, 'state.key'), KEY, { mode: 0o600 });
  const warnings: string[] = [];
  const ctx: PlanContext = s.context(vars, (m) => warnings.push(m));
  return { s, ctx, t, warnings };
}

async function uninstall(b: Box, runId: string, paths?: string[]) {
  const { s, ctx } = session(b, runId);
  const args = restoreOriginals.args.parse(paths ? { paths } : {});
  const changes = await restoreOriginals.plan(ctx, args);
  for (const c of changes) await s.apply(c.actions, ctx);
  await s.commit();
  await s.finish();
}

test('setup: root, runuser and a throwaway user', () => {
  if (!isRoot) {
    if (process.env.CI === 'true') assert.unreachable('these tests run the host scripts as root: run them as root');
    return;
  }
  ensureUser();
  assert.ok(spawnSync('id', ['-u', USER]).status === 0);
});

interface Finding {
  finding: string;
  setup?: (b: Box) => void;
  act: (b: Box) => Promise<unknown>;
  /** The operation must be refused with this message (null: it may succeed, harmlessly). */
  refused: RegExp | null;
  /** Extra checks after the operation. */
  after?: (b: Box) => void;
}

const FINDINGS: Finding[] = [
  {
    finding: '9.1 keys directory replaced by a link to a root directory: the probe refuses it (no stat -L)',
    setup: (b) => {
      mkdirSync(join(b.userDir, 'keys'));
      sh(`chown ${USER}: ${b.userDir}/keys`);
      asUser(`ln -s ${b.canaryDir} ${b.userDir}/keys/server`);
    },
    act: (b) => host().shell.exec(probeCommand([`${b.userDir}/keys/server/server.key`], [`${b.userDir}/keys`, `${b.userDir}/keys/server`])),
    refused: /refusing .*\/keys\/server: a symbolic link owned by pgtlsfsec/,
  },
  {
    finding: '9.1 keys directory replaced by a link: fixing the directories never hands the target to the user (no install -d through it)',
    setup: (b) => {
      mkdirSync(join(b.userDir, 'keys'));
      sh(`chown ${USER}: ${b.userDir}/keys`);
      asUser(`ln -s ${b.canaryDir} ${b.userDir}/keys/server`);
    },
    act: (b) => host().shell.exec(keyDirsCommand(USER, '750', [`${b.userDir}/keys/server`])),
    refused: /refusing .*\/keys\/server: a symbolic link owned by pgtlsfsec/,
  },
  {
    finding: '9.1 a missing keys directory is created root-owned (root:GROUP 0750), not owned by the database user',
    act: (b) => host().shell.exec(keyDirsCommand(USER, '750', [`${b.root}/jelastic/keys/SSL-TLS`, `${b.root}/jelastic/keys/SSL-TLS/server`])),
    refused: null,
    after: (b) => {
      const st = sh(`stat -c '%a %U %G' ${b.root}/jelastic/keys/SSL-TLS ${b.root}/jelastic/keys/SSL-TLS/server`).trim().split('\n');
      assert.equal(st, [`750 root ${USER}`, `750 root ${USER}`]);
    },
  },
  {
    finding: "9.2 the atomic write's temp file swapped for a link in the user's directory: no root chown/chmod through it",
    setup: (b) => writeFileSync(join(b.userDir, 'pg_hba.conf'), 'old\n'),
    act: (b) => writeRemoteFile(host(armSwapHook(b, b.userDir, b.canary)).shell, join(b.userDir, 'pg_hba.conf'), Buffer.from('new\n'), { owner: USER, mode: '640', runId: 'r1', state: store(b) }),
    refused: /Operation not permitted|cannot|refus/,
    after: (b) => assert.ok(existsSync(join(b.hook, 'won')), 'the attacker did swap the temp file (the race was won)'),
  },
  {
    finding: '9.2 a rollback marker with a predictable name planted as a dangling link into a root directory: root never creates its target',
    setup: (b) => {
      for (const n of ['.new.conf.pgtls-rollback.absent', '.new.conf.pgtls-rb.r1.absent']) asUser(`ln -s ${b.canaryDir}/created-by-root ${b.userDir}/${n}`);
    },
    act: (b) => writeRemoteFile(host().shell, join(b.userDir, 'new.conf'), Buffer.from('x = 1\n'), { runId: 'r1', state: store(b) }),
    refused: null,
  },
  {
    finding: '9.2 key generation outputs with predictable names (.pgtls-new, .err, .cnf) planted as links',
    setup: (b) => {
      sh(`mkdir -p ${b.userDir}/keys/server && chown -R ${USER}: ${b.userDir}/keys`);
      for (const n of ['.server.key.pgtls-new', '.server.key.pgtls-new.err', '.server.key.pgtls-new.cnf']) asUser(`ln -s ${b.canary} ${b.userDir}/keys/server/${n}`);
    },
    act: (b) => host().shell.exec(keygenCommand(2048, USER, USER, 'r1', b.state, [{ name: 'server', keyPath: `${b.userDir}/keys/server/server.key` }])),
    refused: null,
  },
  {
    finding: "9.2 key generation's outputs swapped for links while it runs (root-owned keys dir: nobody can)",
    setup: (b) => sh(`mkdir -p ${b.root}/keys/server && chown root:${USER} ${b.root}/keys ${b.root}/keys/server && chmod 750 ${b.root}/keys ${b.root}/keys/server`),
    act: async (b) => {
      const out = await host(armSwapHook(b, `${b.root}/keys/server`, b.canary)).shell.exec(keygenCommand(2048, USER, USER, 'r1', b.state, [{ name: 'server', keyPath: `${b.root}/keys/server/server.key` }]));
      assert.match(out.stdout.toString(), /^new server .*\.pgtls-tmp\.r1\.\w+\n-----BEGIN CERTIFICATE REQUEST-----/m);
    },
    refused: null,
  },
  {
    finding: "9.2 the key's owner/mode fix after the probe, the key swapped for a link: refused (chown -h, no follow)",
    setup: (b) => {
      sh(`mkdir -p ${b.userDir}/keys/server && chown -R ${USER}: ${b.userDir}/keys`);
      asUser(`ln -s ${b.canary} ${b.userDir}/keys/server/server.key`);
    },
    act: (b) => host().shell.exec(keyAttrsCommand(`${b.userDir}/keys/server/server.key`, USER, USER, '600')),
    refused: /refusing .*server\.key: a symbolic link/,
  },
  {
    finding: "9.2 a config file that is a link to a root-only file: its 'original' is never read as root (nor kept)",
    setup: (b) => asUser(`ln -s ${b.canary} ${b.userDir}/pg_hba.conf`),
    act: (b) => writeRemoteFile(host().shell, join(b.userDir, 'pg_hba.conf'), Buffer.from('new\n'), { runId: 'r1', state: store(b) }),
    refused: /Permission denied/,
    after: (b) => {
      const kept = existsSync(b.state) ? sh(`cat ${b.state}/* 2>/dev/null || true`) : '';
      assert.not.match(kept, /root secret/);
    },
  },
  {
    finding: '9.2 a read through a link to a root-only file (what a diff would show): refused',
    setup: (b) => asUser(`ln -s ${b.canary} ${b.userDir}/postgresql.conf`),
    act: (b) => readRemoteFile(host().shell, join(b.userDir, 'postgresql.conf')),
    refused: /Permission denied/,
  },
  {
    finding: '9.3 a state directory owned by the database user is refused before any use',
    setup: (b) => sh(`mkdir -m 700 ${b.state} && chown ${USER} ${b.state}`),
    act: (b) => writeRemoteFile(host().shell, join(b.root, 'a.conf'), Buffer.from('a\n'), { runId: 'r1', state: store(b) }),
    refused: /state directory .* refused: .*owned by pgtlsfsec, not root/,
  },
  {
    finding: '9.3 a state directory whose parent others can write is refused',
    setup: (b) => sh(`mkdir -m 777 ${b.root}/open && mkdir -m 700 ${b.root}/open/state`),
    act: (b) => writeRemoteFile(host().shell, join(b.root, 'a.conf'), Buffer.from('a\n'), { runId: 'r1', state: { ...store(b), dir: `${b.root}/open/state` } }),
    refused: /refused: .*\/open is writable by group or others/,
  },
  {
    finding: '9.3 a record planted in the state directory cannot make the uninstall write a file as root',
    setup: (b) => {
      const base = recordBase(b.state, b.canary);
      sh(`mkdir -m 700 ${b.state}`);
      writeFileSync(`${base}.path`, b.canary);
      writeFileSync(`${base}.orig`, 'pwned\n');
      writeFileSync(`${base}.meta`, '644 root root\n');
    },
    act: (b) => uninstall(b, 'u1'),
    refused: /fails its integrity check: it carries no MAC/,
  },
  {
    finding: "9.3 a record with another path's valid MAC is refused",
    setup: (b) => {
      const base = recordBase(b.state, b.canary);
      sh(`mkdir -m 700 ${b.state}`);
      const signer = new RecordSigner('h', KEY);
      const orig = 'pwned\n';
      const digest = `${createHash('sha256').update(orig).digest('hex')} 644 root root`;
      writeFileSync(`${base}.path`, b.canary);
      writeFileSync(`${base}.orig`, orig);
      writeFileSync(`${base}.meta`, '644 root root\n');
      writeFileSync(`${base}.orig.mac`, signer.mac('orig', `${b.root}/harmless.conf`, digest));
    },
    act: (b) => uninstall(b, 'u1'),
    refused: /fails its integrity check: the original or its owner\/mode was changed/,
  },
  {
    finding: '9.6 a remote read has a size cap: a link to /dev/zero fails at once, a 17 MiB file with a clear error',
    setup: (b) => {
      asUser(`ln -s /dev/zero ${b.userDir}/pg_hba.conf`);
      sh(`head -c 17825792 /dev/zero > ${b.root}/big.conf`);
    },
    act: async (b) => {
      const t0 = Date.now();
      const zero = await rejects(readRemoteFile(host().shell, join(b.userDir, 'pg_hba.conf')));
      assert.match(zero, /not a regular file/);
      const big = await rejects(readRemoteFile(host().shell, join(b.root, 'big.conf')));
      assert.match(big, /17825792 bytes, above the 16777216-byte limit/);
      assert.ok(Date.now() - t0 < 20_000);
    },
    refused: null,
  },
];

for (const f of FINDINGS) {
  test(`finding ${f.finding}`, async () => {
    if (!isRoot) return;
    const b = box();
    f.setup?.(b);
    const before = canaries(b);
    let error: string | null = null;
    try {
      await f.act(b);
    } catch (e) {
      error = refusal(e);
    }
    assert.is(canaries(b), before, 'no canary changed owner, mode or content');
    if (f.refused) {
      assert.ok(error !== null, 'the operation must be refused');
      assert.match(error!, f.refused);
    } else assert.is(error, null, `unexpected failure: ${error}`);
    f.after?.(b);
  });
}

test('9.6 uninstall restores owner and mode, not just content', async () => {
  if (!isRoot) return;
  const b = box();
  const file = join(b.root, 'pool_passwd');
  writeFileSync(file, 'original\n');
  sh(`chown root:${USER} ${file} && chmod 640 ${file}`);
  const { s, ctx } = session(b, 'i1');
  await s.apply([{ kind: 'write', path: file, content: Buffer.from('installed\n'), owner: USER, mode: '600' }], ctx);
  await s.commit();
  await s.finish();
  assert.is(sh(`stat -c '%a %U' ${file}`).trim(), `600 ${USER}`);
  await uninstall(b, 'u1', [file]);
  assert.is(readFileSync(file, 'utf8'), 'original\n');
  assert.is(sh(`stat -c '%a %U %G' ${file}`).trim(), `640 root ${USER}`);
});

test('9.3 a refused write still leaves its original signed; a record a killed run left unsigned is signed by the next run', async () => {
  if (!isRoot) return;
  const b = box();
  const file = join(b.root, 'postgresql.conf');
  writeFileSync(file, 'ssl = off\n');
  const st = store(b);
  const base = recordBase(b.state, file);
  const { shell: first } = host();
  const msg = await rejects(writeRemoteFile(first, file, Buffer.from('ssl = on\n'), { runId: 'r1', state: st, validate: 'false %s' }));
  assert.match(msg, /the validate command failed: not installed/);
  await first.flush(); // (the signatures go with the host's next command: the run's end here)
  assert.is(readFileSync(file, 'utf8'), 'ssl = off\n');
  const digest = `${createHash('sha256').update('ssl = off\n').digest('hex')} 644 root root`;
  assert.ok(st.signer!.verify('orig', file, digest, readFileSync(`${base}.orig.mac`, 'utf8')), 'the original is signed although the write was refused');
  // a run killed between recording and signing: the next run's lock lists it, and it gets signed
  rmSync(`${base}.orig.mac`);
  const { s, ctx } = session(b, 'r2');
  await s.apply([{ kind: 'write', path: join(b.root, 'other.conf'), content: Buffer.from('x\n') }], ctx);
  await s.commit();
  assert.ok(st.signer!.verify('orig', file, digest, readFileSync(`${base}.orig.mac`, 'utf8')));
  await s.finish();
});

test('10.3 a cut stdin (connection dropped, controller killed) never installs an empty or partial file: 24 cuts', async () => {
  if (!isRoot) return;
  const b = box();
  const file = join(b.userDir, 'postgresql.conf');
  const old = Buffer.from('# the config before\nssl = off\n'.repeat(2000));
  writeFileSync(file, old);
  sh(`chown ${USER}: ${file}`);
  const neu = Buffer.from('# the config pgtls writes\nssl = on\n'.repeat(8000)); // 280 kB: several pipe buffers
  let refusedCuts = 0;
  for (let i = 0; i < 24; i++) {
    const { t, shell } = host();
    const run = `cut${i}`;
    await lockHost(shell, b.state, run);
    t.cut = { bytes: Math.floor(Math.random() * neu.length), how: i % 2 ? 'kill' : 'eof' };
    try {
      await writeRemoteFile(shell, file, neu, { runId: run, state: store(b) });
    } catch (e) {
      if (/received \d+ of \d+ bytes/.test(refusal(e))) refusedCuts++;
    }
    t.cut = null;
    const now = readFileSync(file);
    assert.ok(now.equals(old), `cut ${i} (${i % 2 ? 'kill' : 'eof'}): the file must stay as it was (${now.length} bytes now)`);
    await unlockHost(shell, b.state, run);
  }
  assert.ok(refusedCuts >= 12, `every cut that reached the host's length check was refused (${refusedCuts})`);
  // a later run cleans what the killed ones left (temp files), then a whole write goes through
  const { shell } = host();
  await lockHost(shell, b.state, 'after');
  await writeRemoteFile(shell, file, neu, { runId: 'after', state: store(b) });
  assert.ok(readFileSync(file).equals(neu));
  await unlockHost(shell, b.state, 'after');
  assert.equal(readdirSync(b.userDir).filter((n) => n.includes('.pgtls-tmp.')), []);
  assert.equal(readdirSync(b.state).filter((n) => n.startsWith('.in.')), []);
});

test("10.3 a killed run's rollback copy is never restored by a later run, and is cleaned", async () => {
  if (!isRoot) return;
  const b = box();
  const file = join(b.userDir, 'pg_hba.conf');
  writeFileSync(file, 'v1 before any run\n');
  sh(`chown ${USER}: ${file}`);
  const write = (c: string): Action => ({ kind: 'write', path: file, content: Buffer.from(c) });
  // run A changes the file, then dies: its lock and its rollback copy (v1) stay behind
  const a = session(b, 'runA');
  await a.s.apply([write('v2 by run A\n')], a.ctx);
  await a.s.commit();
  assert.ok(existsSync(join(b.userDir, '.pg_hba.conf.pgtls-rb.runA')));
  sh(`sed -i 's/ pid=[0-9]* start=[0-9]*/ pid=999999 start=1/' ${b.state}/lock/owner`); // its process is gone
  // run B takes over the stale lock (A's copies go), changes the file, and its verification fails
  const bb = session(b, 'runB');
  await bb.s.apply([write('v3 by run B\n')], bb.ctx);
  await bb.s.commit();
  assert.match(bb.warnings.join('\n'), /took over the lock of a run that is gone \(run=runA/);
  assert.not.ok(existsSync(join(b.userDir, '.pg_hba.conf.pgtls-rb.runA')), "the dead run's copy was removed");
  await bb.s.rollback();
  assert.is(readFileSync(file, 'utf8'), 'v2 by run A\n', "B's rollback restores the state B found, never run A's stale copy");
  await bb.s.finish();
  assert.equal(readdirSync(b.userDir).filter((n) => n.includes('pgtls')), []);
  assert.not.ok(existsSync(join(b.state, 'lock')), 'the lock is released at the end');
});

test('10.3 one run at a time per host: a live lock is refused, naming the other run', async () => {
  if (!isRoot) return;
  const b = box();
  const one = host();
  await lockHost(one.shell, b.state, 'first', 'ctl1:pid42');
  // the local transport's holder is the long-lived node process: alive
  const msg = await rejects(lockHost(host().shell, b.state, 'second', 'ctl2:pid43'));
  assert.match(msg, /another pgtls run is in progress on this host \(run=first .*by=ctl1:pid42/);
  await unlockHost(one.shell, b.state, 'first');
  await lockHost(host().shell, b.state, 'second');
});

test('batched reads (read-many.sh): each file exactly as read.sh reads it; refusals and oversized files left out, never read as root through a link', async () => {
  if (!isRoot) return;
  const b = box();
  const plain = join(b.root, 'a.conf');
  writeFileSync(plain, 'a = 1\n');
  const users = join(b.userDir, 'postgresql.auto.conf');
  // content that looks like the script's own frame header: framing is by length, so it stays content
  const forged = Buffer.concat([Buffer.from('x\npgtls-file 0 12 0\n644 root root\nforged\n'), Buffer.from([0, 255, 10])]);
  writeFileSync(users, forged);
  sh(`chown ${USER}: ${users} && chmod 640 ${users}`);
  asUser(`ln -s ${b.canary} ${b.userDir}/pg_hba.conf`);
  asUser(`ln -s /dev/zero ${b.userDir}/zero.conf`);
  sh(`head -c 17825792 /dev/zero > ${b.root}/big.conf`);
  const absent = join(b.root, 'absent.conf');
  const refusedLink = join(b.userDir, 'pg_hba.conf');
  const paths = [plain, refusedLink, users, join(b.userDir, 'zero.conf'), absent, join(b.root, 'big.conf'), plain];
  const { shell } = host();
  const got = await readRemoteFiles(shell, paths);
  assert.equal(got.get(plain), await readRemoteFile(shell, plain));
  assert.equal(got.get(users), await readRemoteFile(shell, users));
  assert.equal(got.get(users)!.content, forged);
  assert.is(got.get(users)!.owner, USER);
  assert.is(got.get(absent), null);
  for (const p of [refusedLink, join(b.userDir, 'zero.conf'), join(b.root, 'big.conf')]) assert.not.ok(got.has(p), `${p} is left out (read on its own, for its error)`);
  assert.not.match(JSON.stringify([...got.values()].map((f) => f?.content.toString())), /root secret/);
  // a truncated answer trusts nothing after the cut
  assert.is(parseReadMany(Buffer.from('pgtls-file 0 100 0\n644 root root\nshort'), [plain]).size, 0);
});

test('batched reads cost per directory: one dirop per directory whatever the order; a directory whose dirop answer does not add up (a tampering user) costs only its own files', async () => {
  if (!isRoot) return;
  const b = box();
  const rootDir = join(b.root, 'etc');
  mkdirSync(rootDir, { mode: 0o755 });
  const paths: string[] = [];
  for (let i = 0; i < 12; i++) {
    writeFileSync(join(rootDir, `r${i}.conf`), `root ${i}\n`);
    writeFileSync(join(b.userDir, `u${i}.conf`), `user ${i}\n`);
    paths.push(join(rootDir, `r${i}.conf`), join(b.userDir, `u${i}.conf`));
  }
  sh(`chown ${USER}: ${b.userDir}/*.conf`);
  paths.push(join(b.root, 'nodir', 'x.conf'));
  const { shell } = host();
  // the dirop runs once per directory (its `cd -P` is traced), not once per file
  writeFileSync(join(b.root, 'dirops'), '', { mode: 0o666 });
  chmodSync(join(b.root, 'dirops'), 0o666); // (the user's dirop writes here too)
  const traced = `echo "$1" >> ${b.root}/dirops\n${diropScript()}`;
  const r1 = await shell.exec(shCommand`sh -c ${hostScript('read-many')} pgtls-read-many ${traced} ${16777216} ${paths}`);
  const got = parseReadMany(r1.stdout, paths);
  for (let i = 0; i < 12; i++) {
    assert.is(got.get(join(rootDir, `r${i}.conf`))!.content.toString(), `root ${i}\n`);
    assert.is(got.get(join(b.userDir, `u${i}.conf`))!.content.toString(), `user ${i}\n`);
    assert.is(got.get(join(b.userDir, `u${i}.conf`))!.owner, USER);
  }
  assert.is(got.get(join(b.root, 'nodir', 'x.conf')), null);
  assert.equal(readFileSync(join(b.root, 'dirops'), 'utf8').split('\n').filter(Boolean).sort(), [rootDir, b.userDir].sort(), 'one dirop per directory');
  // the user's dirop (it runs as that user: a tampering user could answer anything) prints frames of
  // its own: a file it was not asked for, lengths that lie. Root's frames of the other directory stay
  // whole and right; the tampered directory's files are left out (the controller reads them one by one).
  const forging = `if [ "$1" = ${b.userDir} ]; then printf 'pgtls-file 0 20 0\\n644 root root\\nforged\\npgtls-file 0 5 0\\n'; exit 0; fi\n${diropScript()}`;
  const r2 = await shell.exec(shCommand`sh -c ${hostScript('read-many')} pgtls-read-many ${forging} ${16777216} ${paths}`);
  const answer = parseReadMany(r2.stdout, paths);
  for (let i = 0; i < 12; i++) {
    assert.is(answer.get(join(rootDir, `r${i}.conf`))!.content.toString(), `root ${i}\n`, 'the other directory is read as it is');
    assert.not.ok(answer.has(join(b.userDir, `u${i}.conf`)), "the tampered directory's files are left out");
  }
  assert.is(answer.get(join(b.root, 'nodir', 'x.conf')), null);
  assert.match(r2.stdout.toString(), /pgtls-file 97 0 \d+\npgtls: [^\n]*: its files changed while they were read/);
});

test('the executor reads files asked together in one round trip, and after a command the whole read set again in one', async () => {
  if (!isRoot) return;
  const { b, conf, hba } = twoConfigs();
  const { s, ctx, t } = session(b, 'batch');
  const reads = () => t.commands.filter((c) => c.includes('pgtls-read')).length;
  s.expectReads([{ path: hba }]);
  const [c1] = await Promise.all([ctx.readFile(conf), ctx.readFile(conf)]);
  assert.is(c1!.content.toString(), 'ssl = off\n');
  assert.is(reads(), 1, 'one round trip for the file asked and the file expected');
  assert.ok(t.commands.some((c) => c.includes('pgtls-read-many') && c.includes(hba)));
  await ctx.readFile(hba);
  assert.is(reads(), 1, 'the expected file came with it');
  writeFileSync(hba, 'changed\n');
  await s.apply([{ kind: 'exec', description: 'a command', cmd: shCommand`true` }], ctx);
  assert.is((await ctx.readFile(hba))!.content.toString(), 'changed\n', 'a command may change files: nothing cached is trusted after it');
  assert.is(reads(), 2, 'and the read set comes back in one round trip');
  await ctx.readFile(conf);
  assert.is(reads(), 2);
  await s.finish();
});

test('batch.sh: several commands in one round trip, framed by lengths; stop mode ends at the first failure', async () => {
  if (!isRoot) return;
  const { shell } = host();
  // output that looks like the next frame's header stays output: framing is by length
  const forged = shCommand`printf 'pgtls-cmd 0 3 0\nabc'; printf 'err' >&2`;
  const [a, b, c] = await execBatch(shell, [{ cmd: forged }, { cmd: shCommand`printf '%s' "$(id -un)"; exit 3`, okCodes: [0, 3] }, { cmd: shCommand`exit 5` }], 'all');
  assert.ok(a && !(a instanceof Error));
  assert.is(a.stdout.toString(), 'pgtls-cmd 0 3 0\nabc');
  assert.is(a.stderr.toString(), 'err');
  assert.ok(b && !(b instanceof Error) && b.exitCode === 3 && b.stdout.toString() === 'root');
  assert.ok(c instanceof RemoteCommandError, 'an exit code the command does not accept is its error');
  const stopped = await execBatch(shell, [{ cmd: shCommand`exit 1` }, { cmd: shCommand`echo never` }], 'stop');
  assert.ok(stopped[0] instanceof RemoteCommandError);
  assert.is(stopped[1], undefined, 'nothing after the failure ran');
  assert.is(parseBatch(Buffer.from('pgtls-cmd 0 10 0\nshort'), 1).length, 0, 'a cut frame is not trusted');
});

test('batch.sh: a command with stdin gets its own (a password for psql), never on the command line; the others get none', async () => {
  if (!isRoot) return;
  const { shell, t } = host();
  const secret = new Secret('pw with spaces\nand a second line \u00e9');
  const cat = shCommand`cat; echo .`;
  const [a, b, c, d] = await execBatch(shell, [{ cmd: cat, stdin: secret }, { cmd: cat }, { cmd: cat, stdin: Buffer.from([0, 1, 255]) }, { cmd: shCommand`cat >&2; exit 9`, stdin: secret }], 'all');
  assert.ok(a && !(a instanceof Error) && b && !(b instanceof Error) && c && !(c instanceof Error));
  assert.is(a.stdout.toString(), `${secret.reveal()}.\n`);
  assert.is(b.stdout.toString(), '.\n', 'no stdin: /dev/null');
  assert.equal([...c.stdout.subarray(0, 3)], [0, 1, 255]);
  assert.ok(d instanceof RemoteCommandError && !d.result.stderr.toString().includes('pw with spaces'), "a failure's stderr never shows its stdin");
  assert.not.ok(t.commands.some((x) => x.includes('pw with spaces') || x.includes(Buffer.from(secret.reveal()).toString('base64'))), 'nothing of the stdin is in argv');
  // without batch.sh's temp files: one by one, each with its own stdin
  const { shell: noTmp } = host({ ...process.env, TMPDIR: '/nonexistent-pgtls' });
  const [e] = await execBatch(noTmp, [{ cmd: cat, stdin: secret }, { cmd: cat }], 'all');
  assert.ok(e && !(e instanceof Error) && e.stdout.toString() === `${secret.reveal()}.\n`);
});

test("a commit's signatures ride the host's next command (one round trip fewer), and run before it", async () => {
  if (!isRoot) return;
  const b = box();
  const file = join(b.root, 'postgresql.conf');
  const other = join(b.root, 'other.conf');
  writeFileSync(file, 'ssl = off\n');
  writeFileSync(other, 'x\n');
  const st = store(b);
  const { t, shell } = host();
  const base = recordBase(b.state, file);
  await writeRemoteFile(shell, file, Buffer.from('ssl = on\n'), { runId: 'r1', state: st });
  assert.is(t.commands.length, 1, 'the commit alone');
  assert.not.ok(existsSync(`${base}.installed.mac`) && existsSync(`${base}.orig.mac`), 'not signed yet');
  await readRemoteFile(shell, other);
  assert.is(t.commands.length, 2, 'one round trip: the signatures, then the read');
  assert.match(t.commands[1]!, /pgtls-sign[\s\S]*pgtls-read/);
  assert.ok(existsSync(`${base}.orig.mac`));
  assert.equal(shell.owedFailures, []);
  // a next command that cannot share a batch (a commit: its content on stdin) gets them just before it
  await writeRemoteFile(shell, other, Buffer.from('y\n'), { runId: 'r1', state: st });
  await writeRemoteFile(shell, file, Buffer.from('ssl = off\n'), { runId: 'r1', state: st });
  const [signs, commit] = t.commands.slice(-2);
  assert.match(signs!, /pgtls-sign/);
  assert.match(commit!, /pgtls-commit/);
  assert.not.match(commit!, /pgtls-sign/);
});

test('batch.sh parallel: the commands run at once (each waits to see the other start), answers in order, each with its own stdin', async () => {
  if (!isRoot) return;
  const b = box();
  const { shell } = host();
  const meet = (me: string, other: string) =>
    shCommand`touch ${join(b.root, me)}; i=0; while [ ! -e ${join(b.root, other)} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done; [ -e ${join(b.root, other)} ] && cat`;
  const [x, y, z] = await execBatch(shell, [{ cmd: meet('a', 'b'), stdin: new Secret('pw-a') }, { cmd: shCommand`echo plain` }, { cmd: meet('b', 'a'), stdin: new Secret('pw-b') }], 'parallel');
  assert.ok(x && !(x instanceof Error) && x.stdout.toString() === 'pw-a', 'the first met the third: at once');
  assert.ok(y && !(y instanceof Error) && y.stdout.toString() === 'plain\n');
  assert.ok(z && !(z instanceof Error) && z.stdout.toString() === 'pw-b');
  // first-parallel: the first alone, and when it fails nothing else runs
  const marker = join(b.root, 'ran');
  const [lock, after] = await execBatch(shell, [{ cmd: shCommand`exit 3`, okCodes: [3] }, { cmd: shCommand`touch ${marker}` }], 'first-parallel');
  assert.ok(lock && !(lock instanceof Error) && lock.exitCode === 3);
  assert.is(after, undefined);
  assert.not.ok(existsSync(marker), 'nothing after a refused first command ran');
});

test('batch.sh sent TERM (the controller is gone) lives until its running command ends, and starts nothing more', async () => {
  const b = box();
  const done = join(b.root, 'done');
  const next = join(b.root, 'next');
  // the first command ignores TERM and finishes (as commit.sh does while it installs)
  const first = `trap '' TERM; sleep 0.6; touch ${done}`;
  const { spawn } = await import('node:child_process');
  const child = spawn('sh', ['-c', standaloneScript('batch'), 'pgtls-batch', 'stop', '-', first, `touch ${next}`], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 200));
  // as the agent does: the command's children first, then the command
  const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  for (const k of kids) process.kill(k, 'SIGTERM');
  process.kill(child.pid!, 'SIGTERM');
  const t0 = Date.now();
  await new Promise((r) => child.on('exit', r));
  assert.ok(existsSync(done), 'the running command finished');
  assert.ok(Date.now() - t0 >= 250, 'batch.sh waited for it');
  assert.not.ok(existsSync(next), 'nothing more was started');
});

test('without a usable temp directory on the host, batches and batched reads fall back to one command each, same answers', async () => {
  if (!isRoot) return;
  const b = box();
  const file = join(b.root, 'a.conf');
  writeFileSync(file, 'a = 1\n');
  const { t, shell } = host({ ...process.env, TMPDIR: join(b.root, 'no-such-dir') });
  const [a, c] = await execBatch(shell, [{ cmd: shCommand`echo one` }, { cmd: shCommand`exit 4`, okCodes: [] }, { cmd: shCommand`echo never` }], 'stop');
  assert.ok(a && !(a instanceof Error) && a.stdout.toString() === 'one\n');
  assert.ok(c instanceof RemoteCommandError && c.result.exitCode === 4);
  assert.not.ok(t.commands.some((x) => x.includes('echo never') && !x.includes('pgtls-batch')), 'stop mode still stops');
  await rejects(readRemoteFiles(shell, [file, file]));
  assert.equal(await readRemoteFile(shell, file), { content: Buffer.from('a = 1\n'), mode: '644', owner: 'root', group: 'root' });
});

test('a commit signs the originals of files the run had read in its own round trip; the uninstall accepts them', async () => {
  if (!isRoot) return;
  const { b, conf, hba } = twoConfigs();
  const { s, ctx, t } = session(b, 'omac');
  await Promise.all([ctx.readFile(conf), ctx.readFile(hba)]);
  await s.apply([{ kind: 'write', path: conf, content: Buffer.from('ssl = on\n') }], ctx);
  // hba was read, then changed behind the run's back: its original is not what the run expected
  writeFileSync(hba, 'changed\n');
  await s.apply([{ kind: 'write', path: hba, content: Buffer.from('hostssl all all 0.0.0.0/0 scram-sha-256\n') }], ctx);
  const before = t.commands.length;
  await s.commit();
  await s.finish(); // the signatures go with the host's next command: here the unlock
  const after = t.commands.slice(before);
  assert.ok(after.some((c) => c.includes('pgtls-sign') && c.includes(recordBase(b.state, hba)) && !c.includes(recordBase(b.state, conf))), 'only the unexpected original is signed afterwards');
  const signer = new RecordSigner('h', KEY);
  const digest = (content: string) => `${createHash('sha256').update(content).digest('hex')} 644 ${USER} ${USER}`;
  assert.ok(signer.verify('orig', conf, digest('ssl = off\n'), readFileSync(`${recordBase(b.state, conf)}.orig.mac`, 'utf8')));
  assert.ok(signer.verify('orig', hba, digest('changed\n'), readFileSync(`${recordBase(b.state, hba)}.orig.mac`, 'utf8')));
  await uninstall(b, 'u-omac');
  assert.is(readFileSync(conf, 'utf8'), 'ssl = off\n');
  assert.is(readFileSync(hba, 'utf8'), 'changed\n');
});

test('host scripts: shellcheck (sh, warnings and errors)', () => {
  const which = spawnSync('sh', ['-c', 'command -v shellcheck']);
  if (which.status !== 0) {
    if (process.env.CI === 'true') assert.unreachable('shellcheck is not installed');
    return;
  }
  const lib = readFileSync(scriptFile('lib'), 'utf8');
  for (const name of ALL_SCRIPTS) {
    const text = name === 'lib' || name === 'dirop' ? readFileSync(scriptFile(name), 'utf8') : `${lib}\n${readFileSync(scriptFile(name), 'utf8')}`;
    const r = spawnSync('shellcheck', ['-s', 'sh', '-S', 'warning', '-'], { input: text });
    assert.is(r.status, 0, `${name}.sh:\n${r.stdout.toString()}`);
  }
});

test('host scripts as sent (comment lines dropped: compactScript) are the same scripts: shellcheck and sh -n pass, only comment and blank lines went', () => {
  const which = spawnSync('sh', ['-c', 'command -v shellcheck']);
  if (which.status !== 0) {
    if (process.env.CI === 'true') assert.unreachable('shellcheck is not installed');
    return;
  }
  // a comment-looking line inside a string spanning lines stays (it is not a comment)
  assert.is(compactScript("x='a\n# not a comment\n'\n# a comment\necho \"$x\"\n"), "x='a\n# not a comment\n'\necho \"$x\"\n");
  const lib = readFileSync(scriptFile('lib'), 'utf8');
  for (const name of [...ALL_SCRIPTS, ...STANDALONE_SCRIPTS]) {
    const own = readFileSync(scriptFile(name), 'utf8');
    const alone = name === 'lib' || name === 'dirop' || (STANDALONE_SCRIPTS as readonly string[]).includes(name);
    // what is sent: the script after lib.sh (src/remote/scripts.ts hostScript), or alone
    const full = alone ? own : `${lib}\n${own}`;
    const sent = alone ? compactScript(own) : hostScript(name as Exclude<typeof name, 'lib' | 'dirop' | (typeof STANDALONE_SCRIPTS)[number]>);
    assert.ok(sent.length < full.length, name);
    const kept = sent.split('\n').filter(Boolean);
    const dropped = full.split('\n').filter((l) => !kept.includes(l));
    for (const l of dropped) assert.match(l, /^\s*(#.*)?$/, `${name}: only comments and blank lines go`);
    assert.is(spawnSync('sh', ['-n'], { input: sent }).status, 0, `${name}: sh -n`);
    // (the file's own `# shellcheck disable=` lines went with the comments: their codes are excluded here)
    const disabled = [...full.matchAll(/# shellcheck disable=([\w,]+)/g)].flatMap((m) => m[1]!.split(','));
    const r = spawnSync('shellcheck', ['-s', 'sh', '-S', 'warning', '-e', ['SC2148', ...disabled].join(','), '-'], { input: sent });
    assert.is(r.status, 0, `${name} as sent:\n${r.stdout.toString()}`);
  }
});

/** A box with a postgresql.conf and a pg_hba.conf owned by the user, as before an install. */
function twoConfigs(): { b: Box; conf: string; hba: string } {
  const b = box();
  const conf = join(b.userDir, 'postgresql.conf');
  const hba = join(b.userDir, 'pg_hba.conf');
  writeFileSync(conf, 'ssl = off\n');
  writeFileSync(hba, 'local all all peer\n');
  sh(`chown ${USER}: ${conf} ${hba}`);
  return { b, conf, hba };
}

test('10.3 writes wait for what depends on them: the overlay answers meanwhile, then several files in one commit', async () => {
  if (!isRoot) return;
  const { b, conf, hba } = twoConfigs();
  const { s, ctx, t } = session(b, 'defer');
  const write = (path: string, c: string): Action => ({ kind: 'write', path, content: Buffer.from(c) });
  await s.apply([write(conf, 'ssl = on\n')], ctx);
  await s.apply([write(conf, "ssl = on\nssl_key_file = 'server.key'\n"), write(hba, 'hostssl all all 0.0.0.0/0 scram-sha-256\n')], ctx);
  assert.is(readFileSync(conf, 'utf8'), 'ssl = off\n', 'nothing is written before something depends on it');
  assert.is((await ctx.readFile(conf))!.content.toString(), "ssl = on\nssl_key_file = 'server.key'\n", 'later tasks plan against what is pending');
  await ctx.query(shCommand`true`, { independentOfFiles: true });
  assert.is(readFileSync(conf, 'utf8'), 'ssl = off\n', 'a probe of the running server does not need the files');
  const before = t.commands.length;
  await ctx.query(shCommand`true`);
  const commits = t.commands.slice(before).filter((c) => c.includes('pgtls-commit'));
  assert.is(commits.length, 1, 'one commit for both files and both edits of postgresql.conf');
  assert.is(readFileSync(conf, 'utf8'), "ssl = on\nssl_key_file = 'server.key'\n");
  assert.is(readFileSync(hba, 'utf8'), 'hostssl all all 0.0.0.0/0 scram-sha-256\n');
  assert.is(sh(`stat -c %U ${conf} ${hba}`), `${USER}\n${USER}\n`, "each file keeps its owner");
  await s.finish();
  assert.equal(readdirSync(b.userDir).filter((n) => n.includes('pgtls')), []);
});

test('10.3 a host interrupted between tasks goes back to its last proven state; what was only planned is dropped', async () => {
  if (!isRoot) return;
  const { b, conf, hba } = twoConfigs();
  const { s, ctx } = session(b, 'intr');
  await s.apply([{ kind: 'write', path: conf, content: Buffer.from('ssl = on\n') }], ctx);
  await s.commit();
  await s.apply([{ kind: 'write', path: hba, content: Buffer.from('hostssl all all 0.0.0.0/0 scram-sha-256\n') }], ctx);
  const said = await s.abandon();
  assert.match(said, /rolled back to its last proven state: .*postgresql\.conf put back/);
  assert.is(readFileSync(conf, 'utf8'), 'ssl = off\n');
  assert.is(readFileSync(hba, 'utf8'), 'local all all peer\n', 'the pending write never reached the disk');
  await s.finish();
  assert.equal(readdirSync(b.userDir).filter((n) => n.includes('pgtls')), []);
});

test('10.3 a controller that dies once the content has arrived cannot stop a commit half-way (a new key and its certificate arrive together)', async () => {
  if (!isRoot) return;
  const b = box();
  const crt = join(b.userDir, 'server.crt');
  const key = join(b.userDir, 'server.key');
  const conf = join(b.userDir, 'postgresql.conf');
  writeFileSync(crt, 'old cert\n');
  writeFileSync(key, 'old key\n', { mode: 0o600 });
  writeFileSync(conf, 'ssl = off\n');
  const temp = join(b.userDir, '.pgtls-tmp.deaf.k3y');
  writeFileSync(temp, 'new key\n', { mode: 0o600 });
  sh(`chown ${USER}: ${crt} ${key} ${conf} ${temp}`);
  const { s, ctx, t } = session(b, 'deaf');
  await s.apply(
    [
      { kind: 'write', path: crt, content: Buffer.from('new cert\n') },
      { kind: 'rename', from: temp, path: key },
      { kind: 'write', path: conf, content: Buffer.from("ssl = on\nssl_key_file = 'server.key'\n") },
    ],
    ctx,
  );
  t.deafAfterStdin = true;
  await s.commit().catch(() => undefined); // the controller sees nothing: its end of the pipes is gone
  t.deafAfterStdin = false;
  assert.is(readFileSync(crt, 'utf8'), 'new cert\n');
  assert.is(readFileSync(key, 'utf8'), 'new key\n');
  assert.is(readFileSync(conf, 'utf8'), "ssl = on\nssl_key_file = 'server.key'\n");
  assert.not.ok(existsSync(temp));
  assert.ok(readdirSync(b.state).some((n) => n.endsWith('.installed.sha256')), 'what was installed is recorded for an uninstall');
  await s.finish();
});

test('cleanup', () => {
  for (const d of boxes) rmSync(d, { recursive: true, force: true });
  if (created) spawnSync('userdel', [USER]);
  assert.ok(true);
});

test.run();
