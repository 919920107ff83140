// The long-lived remote shell (src/remote/stream-shell.ts + src/remote/scripts/agent.sh) against a
// real local `sh`: exact framing of stdout, stderr and exit codes, binary stdin of exact length, a
// command that reads no stdin, large output, timeouts and broken shells (the next command must be
// unaffected), concurrency, the become-password line, and the fallback when a shell cannot start.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { HostShell } from '../../src/remote/host-shell.js';
import type { ExecResult, Transport } from '../../src/lib/transport.js';
import { ShellCommand, sh } from '../../src/lib/sh.js';
import { ShellPool, StreamShell, type ShellChannel, type ShellSpec } from '../../src/remote/stream-shell.js';
import { STANDALONE_SCRIPTS, standaloneScriptFile } from '../../src/remote/standalone-scripts.js';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A local `sh -c CMD` as a channel, as sshd would run the exec request. */
const launched: string[] = [];
let lastPid = 0;
function localChannel(cmd: ShellCommand): Promise<ShellChannel> {
  launched.push(cmd.text);
  const child = spawn('sh', ['-c', cmd.text], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  lastPid = child.pid ?? 0;
  const closed = new Promise<{ code: number | null; signal: string | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
  child.stdin.on('error', () => undefined);
  return Promise.resolve({ stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, closed, kill: () => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } } });
}

/** One exec per command, like an ssh channel each (the fallback path). */
const singles: string[] = [];
function runSingle(cmd: ShellCommand, stdin: Buffer | undefined, timeoutMs: number): Promise<ExecResult> {
  singles.push(cmd.text);
  const r = spawnSync('sh', ['-c', cmd.text], { input: stdin ?? Buffer.alloc(0), timeout: timeoutMs });
  return Promise.resolve({ command: cmd.text, exitCode: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, timedOut: false, durationMs: 0 });
}

const plain = (key = 'me'): ShellSpec => ({ key, launch: (agent) => ({ cmd: agent }), fallback: () => { throw new Error('no fallback expected'); } });

const localTransport = (pool: ShellPool): Transport => ({
  run: runSingle,
  runIn: (spec, cmd, stdin, t) => pool.run(spec, cmd, stdin, t),
  close: () => pool.close(),
});

test('framing: stdout, stderr and exit code of each command, exactly, many in a row', async () => {
  const shell = await StreamShell.open(localChannel, (a) => ({ cmd: a }), 10_000);
  for (let i = 0; i < 30; i++) {
    const r = await shell.run(sh`printf 'out %s' ${String(i)}; printf 'err\n%s' ${String(i)} >&2; exit ${i % 4}`, undefined, 10_000);
    assert.is(r.stdout.toString(), `out ${i}`);
    assert.is(r.stderr.toString(), `err\n${i}`);
    assert.is(r.exitCode, i % 4);
    assert.is(r.timedOut, false);
  }
  const empty = await shell.run(sh`true`, undefined, 10_000);
  assert.is(empty.stdout.length + empty.stderr.length, 0);
  for (const code of [1, 42, 126, 127, 255]) assert.is((await shell.run(sh`exit ${code}`, undefined, 10_000)).exitCode, code);
  assert.is((await shell.run(sh`no-such-program-pgtls`, undefined, 10_000)).exitCode, 127);
  assert.is((await shell.run(sh`kill -9 $$`, undefined, 10_000)).exitCode, 137, 'a command killed by a signal: 128 + n');
  assert.is(shell.commands, 38);
  assert.ok(shell.alive);
  await shell.close();
});

test('nothing leaks from one command to the next (variables, cwd, umask, traps)', async () => {
  const shell = await StreamShell.open(localChannel, (a) => ({ cmd: a }), 10_000);
  await shell.run(sh`X=1; export Y=2; cd /tmp; umask 077; trap 'echo trapped' EXIT`, undefined, 10_000);
  const r = await shell.run(sh`printf '%s|%s|%s|%s' "\${X-}" "\${Y-}" "$(pwd)" "$(umask)"`, undefined, 10_000);
  assert.is.not(r.stdout.toString(), `1|2|/tmp|0077`);
  assert.not.match(r.stdout.toString(), /^1\|2\|/);
  await shell.close();
});

test('binary stdin of exact length: every byte value, NULs, no trailing newline; then the next command', async () => {
  const shell = await StreamShell.open(localChannel, (a) => ({ cmd: a }), 10_000);
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const r = await shell.run(sh`cat`, all, 10_000);
  assert.ok(r.stdout.equals(all), 'cat gives back every byte');
  const big = randomBytes(3 << 20);
  const s = await shell.run(sh`sha256sum | cut -c1-64`, big, 30_000);
  assert.is(s.stdout.toString().trim(), createHash('sha256').update(big).digest('hex'));
  const n = await shell.run(sh`wc -c`, Buffer.from('a\nb'), 10_000);
  assert.is(n.stdout.toString().trim(), '3', 'the command sees EOF after exactly its bytes');
  const none = await shell.run(sh`wc -c`, undefined, 10_000);
  assert.is(none.stdout.toString().trim(), '0', 'no stdin: EOF at once');
  await shell.close();
});

test('a command that reads no (or only part of its) stdin leaves the stream intact', async () => {
  const shell = await StreamShell.open(localChannel, (a) => ({ cmd: a }), 10_000);
  const junk = Buffer.from(`${'0123456789abcdef'.repeat(2)} 5 0\necho INJECTED\n`.repeat(1000));
  const r1 = await shell.run(sh`echo ignored`, Buffer.concat([junk, randomBytes(1 << 20)]), 10_000);
  assert.is(r1.stdout.toString(), 'ignored\n');
  const r2 = await shell.run(sh`head -c 10 >/dev/null; echo partial`, Buffer.concat([junk, randomBytes(1 << 20)]), 10_000);
  assert.is(r2.stdout.toString(), 'partial\n');
  const r3 = await shell.run(sh`read -r line; echo "got $line"`, Buffer.from('first\nsecond\n'), 10_000);
  assert.is(r3.stdout.toString(), 'got first\n');
  const r4 = await shell.run(sh`echo next; cat`, Buffer.from('clean'), 10_000);
  assert.is(r4.stdout.toString(), 'next\nclean');
  assert.ok(shell.alive);
  await shell.close();
});

test('large output (16 MiB stdout, 2 MiB stderr) arrives whole', async () => {
  const shell = await StreamShell.open(localChannel, (a) => ({ cmd: a }), 10_000);
  const r = await shell.run(sh`head -c 16777216 /dev/zero | tr '\\0' x; head -c 2097152 /dev/zero | tr '\\0' y >&2; exit 3`, undefined, 60_000);
  assert.is(r.stdout.length, 16 << 20);
  assert.ok(r.stdout.every((b) => b === 0x78));
  assert.is(r.stderr.length, 2 << 20);
  assert.is(r.exitCode, 3);
  const next = await shell.run(sh`echo ok`, undefined, 10_000);
  assert.is(next.stdout.toString(), 'ok\n');
  await shell.close();
});

test('a command longer than an argument may be (128 KiB: a batch of scripts) runs the same, stdin and all', async () => {
  const shell = await StreamShell.open(localChannel, (a) => ({ cmd: a }), 10_000);
  const filler = `: ${'x'.repeat(300_000)}`;
  const r = await shell.run(new ShellCommand(`${filler}\nprintf '%s|' "$(cat)"; echo err >&2; exit 5`), Buffer.from('in'), 30_000);
  assert.is(r.stdout.toString(), 'in|');
  assert.is(r.stderr.toString(), 'err\n');
  assert.is(r.exitCode, 5);
  assert.is((await shell.run(sh`echo small`, undefined, 10_000)).stdout.toString(), 'small\n');
  await shell.close();
});

test('output that looks like framing is just output', async () => {
  const shell = await StreamShell.open(localChannel, (a) => ({ cmd: a }), 10_000);
  const fake = `${'f'.repeat(32)} 0\n${'0'.repeat(32)}\npgtls-agent-ready x\n`;
  const r = await shell.run(sh`printf %s ${fake}; printf %s ${fake} >&2`, undefined, 10_000);
  assert.is(r.stdout.toString(), fake);
  assert.is(r.stderr.toString(), fake);
  assert.is(r.exitCode, 0);
  await shell.close();
});

test('a daemon left holding stdout delays the end (as a channel would), never the next command', async () => {
  const shell = await StreamShell.open(localChannel, (a) => ({ cmd: a }), 10_000);
  const r = await shell.run(sh`(sleep 0.3; echo late) & echo early`, undefined, 10_000);
  assert.is(r.stdout.toString(), 'early\nlate\n');
  const detached = await shell.run(sh`(sleep 0.3; echo gone) >/dev/null 2>&1 & echo quick`, undefined, 10_000);
  assert.is(detached.stdout.toString(), 'quick\n');
  const closedOut = await shell.run(sh`exec 1>&- 2>&-; exit 4`, undefined, 10_000);
  assert.is(closedOut.exitCode, 4);
  const fd = await shell.run(sh`echo into-3 >&3 2>/dev/null; echo into-7 >&7 2>/dev/null; echo after`, undefined, 10_000);
  assert.is(fd.stdout.toString(), 'after\n', "the agent's own descriptors are closed for commands");
  await shell.close();
});

test('timeout: the command in flight times out, the shell is replaced, the next command is clean', async () => {
  launched.length = 0;
  const pool = new ShellPool(localChannel, runSingle);
  const t0 = Date.now();
  const r = await pool.run(plain(), sh`echo started; sleep 30`, undefined, 400);
  assert.ok(Date.now() - t0 < 10_000);
  assert.is(r.timedOut, true);
  assert.is(r.exitCode, null);
  const next = await pool.run(plain(), sh`echo fresh`, undefined, 10_000);
  assert.is(next.stdout.toString(), 'fresh\n');
  assert.is(next.exitCode, 0);
  assert.is(launched.length, 2, 'a new shell after the timeout');
  const again = await pool.run(plain(), sh`echo same`, undefined, 10_000);
  assert.is(again.stdout.toString(), 'same\n');
  assert.is(launched.length, 2, 'and then that shell is kept');
  await pool.close();
});

test('a shell that dies (its agent killed) fails the command honestly; the next one gets a new shell', async () => {
  launched.length = 0;
  const pool = new ShellPool(localChannel, runSingle);
  await pool.run(plain(), sh`true`, undefined, 10_000);
  const running = pool.run(plain(), sh`sleep 0.5; echo finished`, undefined, 10_000);
  setTimeout(() => process.kill(-lastPid, 'SIGKILL'), 100); // the channel's whole process group, as a lost connection would
  const r = await running;
  assert.is(r.exitCode, null, 'no exit code is made up');
  assert.is(r.timedOut, false);
  const next = await pool.run(plain(), sh`echo alive`, undefined, 10_000);
  assert.is(next.stdout.toString(), 'alive\n');
  assert.is(launched.length, 2);
  const sub = await pool.run(plain(), sh`kill -9 $PPID`, undefined, 10_000);
  assert.is(sub.exitCode, 255, "the command's own subshell killed: 255, as ssh reports a lost command");
  assert.is((await pool.run(plain(), sh`echo still`, undefined, 10_000)).stdout.toString(), 'still\n');
  await pool.close();
});

test('concurrent commands share one shell, one at a time, each with its own result', async () => {
  launched.length = 0;
  const pool = new ShellPool(localChannel, runSingle);
  const rs = await Promise.all(Array.from({ length: 25 }, (_, i) => pool.run(plain(), sh`cat; echo ${String(i)} >&2; exit ${i % 3}`, Buffer.from(`in${i}`), 10_000)));
  rs.forEach((r, i) => {
    assert.is(r.stdout.toString(), `in${i}`);
    assert.is(r.stderr.toString(), `${i}\n`);
    assert.is(r.exitCode, i % 3);
  });
  assert.is(launched.length, 1);
  await pool.close();
});

test('one shell per key; the become password is its first stdin line, once, and never reaches a command', async () => {
  launched.length = 0;
  const pool = new ShellPool(localChannel, runSingle);
  // stands in for `sudo -S`: reads the password line, then runs the agent
  const sudo = (key: string): ShellSpec => ({
    key,
    launch: (agent) => ({ cmd: sh`IFS= read -r pw; case $pw in hunter?2) ;; *) exit 1 ;; esac; unset pw; exec sh -c ${agent.text}`, preamble: Buffer.from('hunter 2\n') }),
    fallback: () => { throw new Error('no fallback expected'); },
  });
  for (let i = 0; i < 3; i++) {
    const r = await pool.run(sudo('root'), sh`cat; echo "[\${pw-}]"`, Buffer.from('data'), 10_000);
    assert.is(r.stdout.toString(), 'data[]\n');
  }
  await pool.run(plain('login'), sh`true`, undefined, 10_000);
  assert.is(launched.length, 2, 'one shell for root, one for the login user');
  assert.not.ok(launched.some((l) => l.includes('hunter 2')), 'the password is on no command line');
  await pool.close();
});

test('a shell that cannot start (stderr before ready, or exits) falls back to one channel per command', async () => {
  singles.length = 0;
  const pool = new ShellPool(localChannel, runSingle);
  const broken: ShellSpec = {
    key: 'needs-password',
    launch: () => ({ cmd: sh`echo 'sudo: a password is required' >&2; exit 1` }),
    fallback: () => ({ cmd: sh`echo 'sudo: a password is required' >&2; exit 1`, stdin: undefined }),
  };
  const r1 = await pool.run(broken, sh`echo never`, undefined, 10_000);
  assert.is(r1.exitCode, 1);
  assert.match(r1.stderr.toString(), /a password is required/);
  const r2 = await pool.run(broken, sh`echo never`, undefined, 10_000);
  assert.is(r2.exitCode, 1);
  assert.is(singles.length, 2, 'each command ran on its own, with its real error');
  await pool.close();
});

test('HostShell over a streaming transport: exit codes become RemoteCommandError, stdin Secret travels on stdin', async () => {
  launched.length = 0;
  const pool = new ShellPool(localChannel, runSingle);
  const shell = new HostShell(localTransport(pool), process.env.USER ?? 'root', false);
  const { Secret } = await import('../../src/lib/secret.js');
  const r = await shell.exec(sh`cat`, { stdin: new Secret('s3cret') });
  assert.is(r.stdout.toString(), 's3cret');
  try {
    await shell.exec(sh`echo boom >&2; exit 2`);
    assert.unreachable('must throw');
  } catch (e) {
    assert.match(String((e as Error).message), /exited with 2: boom/);
  }
  try {
    await shell.exec(sh`echo s3cret >&2; exit 2`, { stdin: new Secret('s3cret') });
    assert.unreachable('must throw');
  } catch (e) {
    assert.not.match(String((e as Error).message), /s3cret/, 'redacted');
  }
  assert.is((await shell.exec(sh`exit 3`, { okCodes: [3] })).exitCode, 3);
  assert.not.ok(launched.some((l) => l.includes('s3cret')));
  await pool.close();
});

/** Polls `cond` until it holds or `ms` pass (a loaded machine is slow; no fixed sleep). */
async function eventually(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

test('the connection gone while a command has its stdin: TERM, so its own traps clean up; one that ignores TERM, and one without stdin, run to their end', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgtls-agent-term-'));
  const agentText = readFileSync(standaloneScriptFile('agent'), 'utf8');
  const start = async (): Promise<ReturnType<typeof spawn>> => {
    const child = spawn('sh', ['-c', agentText, 'pgtls-agent', 'tok'], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin!.on('error', () => undefined);
    await new Promise<void>((r) => child.stdout!.once('data', () => r()));
    return child;
  };
  const header = (cmd: string, ilen: number) => Buffer.concat([Buffer.from(`${'a'.repeat(32)} ${Buffer.byteLength(cmd)} ${ilen}\n`), Buffer.from(cmd)]);
  const exists = (n: string) => existsSync(join(dir, n));
  try {
    // receiving its stdin (like commit.sh): part of it arrives, then the connection goes
    const receiving = `f=$(mktemp ${dir}/.in.XXXXXX); trap 'rm -f "$f"; echo cleaned > ${dir}/a' EXIT; trap 'exit 1' TERM; head -c 100 > "$f"; while :; do sleep 0.2; done`;
    let a = await start();
    a.stdin!.write(Buffer.concat([header(receiving, 1 << 20), Buffer.alloc(4096, 120)]));
    assert.ok(await eventually(() => readdirSync(dir).some((n) => n.startsWith('.in.')), 20_000), 'the command started receiving');
    a.stdin!.end();
    assert.ok(await eventually(() => exists('a'), 20_000), 'its EXIT trap ran');
    assert.equal(readdirSync(dir).filter((n) => n.startsWith('.in.')), [], 'nothing half-received is left');
    // all its stdin arrived, then it ignores TERM (commit.sh's commit phase): it finishes its work
    const committing = `sh -c 'cat > /dev/null; trap "" TERM HUP PIPE; touch ${dir}/c-started; sleep 1; echo done > ${dir}/c'`;
    a = await start();
    a.stdin!.write(Buffer.concat([header(committing, 5), Buffer.from('12345')]));
    assert.ok(await eventually(() => exists('c-started'), 20_000));
    a.stdin!.end();
    assert.ok(await eventually(() => exists('c'), 20_000), 'it ran to its end');
    // no stdin: it needs nothing from the controller (a restart must not stop between its stop and
    // its start), so it runs to its end; and the agent ends with its connection
    const restarting = `trap 'echo term > ${dir}/b; exit 1' TERM; touch ${dir}/b-started; sleep 1; echo done > ${dir}/b`;
    a = await start();
    const closed = new Promise((r) => a.on('close', r));
    a.stdin!.write(header(restarting, 0));
    assert.ok(await eventually(() => exists('b-started'), 20_000));
    a.stdin!.end();
    assert.ok(await eventually(() => exists('b') && readFileSync(join(dir, 'b'), 'utf8') !== '', 20_000));
    assert.is(readFileSync(join(dir, 'b'), 'utf8'), 'done\n', 'not cut short');
    assert.ok(await Promise.race([closed.then(() => true), new Promise((r) => setTimeout(() => r(false), 20_000))]), 'the agent ended');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('standalone host scripts: shellcheck (sh, warnings and errors)', () => {
  const which = spawnSync('sh', ['-c', 'command -v shellcheck']);
  if (which.status !== 0) {
    if (process.env.CI === 'true') assert.unreachable('shellcheck is not installed');
    return;
  }
  for (const name of STANDALONE_SCRIPTS) {
    const r = spawnSync('shellcheck', ['-s', 'sh', '-S', 'warning', '-'], { input: readFileSync(standaloneScriptFile(name)) });
    assert.is(r.status, 0, `${name}.sh:\n${r.stdout.toString()}`);
  }
});

test.run();
