// The long-lived remote shells (src/remote/stream-shell.ts) over the lab's real sshd, logged in as
// a sudo user: one sudo per (host, user) shell for the whole run, exact framing of binary stdin and
// large output, timeouts and a killed shell replaced without disturbing the next command, and
// PGTLS_COMMAND_LOG still listing every command.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labAvailable, labUnavailableReason, labUp, type Lab } from './lab.js';

const work = mkdtempSync(join(tmpdir(), 'pgtls-e2e-transport-'));
const log = join(work, 'commands.log');
writeFileSync(log, '', { mode: 0o600 });
const { SshTransport } = await import('../../src/remote/ssh.js');
const { HostShell } = await import('../../src/remote/host-shell.js');
const { sh } = await import('../../src/lib/sh.js');

let lab: Lab | undefined;

test('a lab host with a sudo login user comes up', async () => {
  if (!labAvailable()) {
    if (process.env['CI']) assert.unreachable(`the lab is needed: ${labUnavailableReason()}`);
    return;
  }
  lab = await labUp({ hosts: 1, postgres: ['pg1'], user: 'admin', dir: join(work, 'lab') });
  assert.is(lab.user, 'admin');
});

test('over sshd: root and postgres shells via sudo once each; framing, binary stdin, large output, timeouts, a killed shell', async () => {
  assert.ok(lab, 'the lab is up');
  // Set for this test only (ssh.ts reads it at each command): the pgtls runs of other test files in
  // npm test's one process must not inherit it.
  process.env['PGTLS_COMMAND_LOG'] = log;
  const from = readFileSync(log).length;
  const t = await SshTransport.connect({ name: 'pg1', host: lab!.ip('pg1'), port: 22, user: lab!.user, privateKeyFile: lab!.keyPath, knownHostsFile: lab!.knownHostsPath, connectTimeoutMs: 30_000 });
  try {
    const root = new HostShell(t, lab!.user, true);
    const login = new HostShell(t, lab!.user, false);
    for (let i = 0; i < 10; i++) assert.is((await root.exec(sh`id -u`)).stdout.toString(), '0\n');
    for (let i = 0; i < 5; i++) assert.is((await root.exec(sh`id -un`, { user: 'postgres' })).stdout.toString(), 'postgres\n');
    assert.is((await login.exec(sh`id -un`)).stdout.toString(), 'admin\n');
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    assert.ok((await root.exec(sh`cat`, { stdin: all })).stdout.equals(all), 'every byte value through cat');
    const big = randomBytes(4 << 20);
    assert.is((await root.exec(sh`sha256sum | cut -c1-64`, { stdin: big, timeoutMs: 60_000 })).stdout.toString().trim(), createHash('sha256').update(big).digest('hex'));
    assert.is((await root.exec(sh`echo ignored`, { stdin: big })).stdout.toString(), 'ignored\n', 'stdin not read');
    const out = await root.exec(sh`head -c 8388608 /dev/zero | tr '\\0' z; echo e >&2`, { timeoutMs: 60_000 });
    assert.is(out.stdout.length, 8 << 20);
    assert.is(out.stderr.toString(), 'e\n');
    assert.is((await root.exec(sh`exit 7`, { okCodes: [7] })).exitCode, 7);
    try {
      await root.exec(sh`sleep 30`, { timeoutMs: 500 });
      assert.unreachable('must time out');
    } catch (e) {
      assert.match(String((e as Error).message), /timed out/);
    }
    assert.is((await root.exec(sh`echo after-timeout`)).stdout.toString(), 'after-timeout\n');
    // the root shell killed from outside: the next command gets a new shell
    await lab!.exec('pg1', `for p in /proc/[0-9]*; do tr '\\0\\n' '  ' < $p/cmdline 2>/dev/null | grep -q '^sh -c .*pgtls-agent' && [ "$(stat -c %U $p)" = root ] && kill -9 \${p#/proc/}; done; true`);
    let after = '';
    for (let i = 0; i < 3 && after !== '0\n'; i++) after = await root.exec(sh`id -u`).then((r) => r.stdout.toString(), () => '');
    assert.is(after, '0\n', 'a fresh shell after the old one was killed');
  } finally {
    await t.close();
    delete process.env['PGTLS_COMMAND_LOG'];
  }
  const lines = readFileSync(log).subarray(from).toString('utf8').split('\n').filter((l) => l.startsWith('pg1\t'));
  const shells = lines.filter((l) => l.includes('pgtls-agent'));
  const sudos = shells.filter((l) => /^pg1\tsudo -n/.test(l));
  console.log(`  ${lines.length} commands logged, ${shells.length} shells started (${sudos.length} through sudo)`);
  // through sudo: root's (again after the timeout and after the kill: 3) and postgres's; the login user's without
  assert.is(sudos.length, 4, `sudo shells: ${sudos.length}\n${shells.join('\n').slice(0, 2000)}`);
  assert.is(lines.filter((l) => /^pg1\tid -u/.test(l)).length >= 10, true, 'every streamed command is logged');
  assert.not.ok(lines.some((l) => /^pg1\tsudo -n -H -- sh -c 'id -u'/.test(l)), 'no command got its own sudo');
});

/** Polls `cond` until it holds or `ms` pass (the machine is shared and loaded: no fixed sleeps). */
async function eventually(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond();
}

test('over sshd: the connection dropped while a command has its stdin: it gets TERM (its trap runs); a commit receiving content leaves nothing behind; a command without stdin runs to its end', async () => {
  assert.ok(lab, 'the lab is up');
  const connect = () => SshTransport.connect({ name: 'pg1', host: lab!.ip('pg1'), port: 22, user: lab!.user, privateKeyFile: lab!.keyPath, knownHostsFile: lab!.knownHostsPath, connectTimeoutMs: 30_000 });
  const onHost = async (cmd: string) => (await lab!.exec('pg1', cmd)).stdout.toString();
  await onHost('rm -rf /tmp/pgtls-term; mkdir -p /tmp/pgtls-term');
  // 1. a command reading its stdin (32 MiB in flight), then waiting on: through sudo, TERM when the connection goes
  let t = await connect();
  const reading = new HostShell(t, lab!.user, true)
    .exec(sh`trap 'echo term > /tmp/pgtls-term/trapped; exit 1' TERM; touch /tmp/pgtls-term/started; cat >/dev/null; while :; do sleep 0.2; done`, { stdin: Buffer.alloc(32 << 20, 98), timeoutMs: 120_000 })
    .catch((e: unknown) => e);
  assert.ok(await eventually(async () => (await onHost('ls /tmp/pgtls-term')).includes('started'), 30_000), 'the command started');
  t.destroy(); // as a killed controller or a cut network: no signal, no end of file, the TCP connection just goes
  await reading;
  assert.ok(await eventually(async () => (await onHost('cat /tmp/pgtls-term/trapped 2>/dev/null')) === 'term\n', 30_000), 'its TERM trap ran on the host');
  assert.ok(await eventually(async () => !(await onHost("pgrep -f 'pgtls-term/[s]tarted' || true")).trim(), 30_000), 'and it is gone');
  // 2. commit.sh while it receives its content (64 MiB in flight): the connection goes, nothing is installed, nothing is left
  t = await connect();
  const { commitChanges } = await import('../../src/remote/files.js');
  const state = '/var/lib/pgtls/hostsh-term-state';
  const target = '/tmp/pgtls-term/big.conf';
  const total = 64 << 20;
  const committing = commitChanges(new HostShell(t, lab!.user, true), [{ op: 'write', path: target, content: Buffer.alloc(total, 97) }], 'termrun', { dir: state, track: false, signer: null }).catch((e: unknown) => e);
  const inFlight = async () => {
    const sizes = (await onHost(`stat -c %s ${state}/.in.* 2>/dev/null || true`)).trim();
    return sizes !== '' && Number(sizes) > 0 && Number(sizes) < total;
  };
  assert.ok(await eventually(inFlight, 60_000), 'commit.sh is receiving the content');
  t.destroy();
  await committing;
  const leftClean = await eventually(async () => !(await onHost(`ls -A ${state} | grep '^\\.in\\.' || true; pgrep -f 'pgtls-[c]ommit' || true`)).trim(), 60_000);
  // what is left, if anything: the files and the processes still holding the session (a rare CI failure saw the content left)
  const left = leftClean ? '' : await onHost(`ls -lA ${state}; ps -eo pid,ppid,stat,etimes,wchan:20,args --forest | grep -E '[p]gtls|[s]shd|[s]udo|[h]ead -c|[c]at' | cut -c1-200`);
  assert.ok(leftClean, `no half-received content (.in.*) and no commit left: ${left}`);
  assert.is(await onHost(`ls ${target} 2>/dev/null || true`), '', 'nothing was installed');
  // 3. a command without stdin (a restart between its stop and its start) is not cut short
  t = await connect();
  const restarting = new HostShell(t, lab!.user, true)
    .exec(sh`trap 'echo term > /tmp/pgtls-term/restart-trapped; exit 1' TERM; touch /tmp/pgtls-term/restart-started; sleep 2; touch /tmp/pgtls-term/restarted`, { timeoutMs: 120_000 })
    .catch((e: unknown) => e);
  assert.ok(await eventually(async () => (await onHost('ls /tmp/pgtls-term')).includes('restart-started'), 30_000));
  t.destroy();
  await restarting;
  assert.ok(await eventually(async () => (await onHost('ls /tmp/pgtls-term')).includes('restarted'), 30_000), 'it ran to its end');
  assert.not.match(await onHost('ls /tmp/pgtls-term'), /restart-trapped/);
  await onHost(`rm -rf /tmp/pgtls-term ${state}`);
});

// teardown, not a test: it is not counted (a test must be able to fail)
test.after(async () => {
  if (lab) await lab.down();
});

test.run();
