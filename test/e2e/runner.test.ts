import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { labAvailable, labUp, type Lab } from './lab.js';
import { pgtls, totalChanged } from './cli.js';

// The core runner on a lab of 3 real hosts (network namespaces, each with its own sshd):
// convergence, idempotence, --check that changes no byte, host key verification, bad input.

const work = mkdtempSync(join(tmpdir(), 'pgtls-e2e-runner-'));
// In root's /etc: a file pgtls creates in a directory postgres owns (/etc/postgresql) belongs to
// postgres (it is written as postgres: see "The write path" in the README).
const FILE = '/etc/pgtls-e2e.conf';
const PLAYBOOK = join(work, 'lines.yaml');
writeFileSync(
  PLAYBOOK,
  `- name: converge a config file
  hosts: all
  tasks:
    - name: ssl on
      lineinfile: { path: ${FILE}, regexp: '^#?ssl\\s*=', line: "ssl = on", create: true, mode: "0640" }
      notify: reload
    - name: cert path uses a fact and a variable
      lineinfile: { path: ${FILE}, regexp: '^ssl_cert_file', line: "ssl_cert_file = '/certs/{{ ansible_hostname }}-{{ inventory_hostname }}.crt'" }
      notify: reload
    - name: comment at the top
      lineinfile: { path: ${FILE}, line: "# managed by pgtls", insertbefore: BOF }
    - name: nothing to remove
      lineinfile: { path: ${FILE}, regexp: '^bogus', state: absent }
    - name: skipped by when
      lineinfile: { path: ${FILE}, line: "never = here" }
      when: inventory_hostname == 'no-such-host'
  handlers:
    - name: reload
      shell: "echo reloaded >> ${FILE}.handler"
`,
);

let lab: Lab;
const hashes = () => Promise.all(lab.hosts.map((h) => lab.sha256Tree(h.name, ['/etc/postgresql', FILE, `${FILE}.handler`])));

// Brought up inside a test, not test.before: uvu 0.5 reports a throwing before() as 0 tests passed.
test('a lab of 3 hosts comes up', async () => {
  lab = await labUp({ hosts: 3, dir: join(work, 'lab') });
  assert.is(lab.hosts.length, 3);
});
test.after(async () => {
  await lab?.down();
});

test('--check on a fresh lab changes no byte and reports the changes', async () => {
  const before = await hashes();
  const check = await pgtls(['run', PLAYBOOK, '-i', lab.inventoryPath, '--check', '--diff'], { json: join(work, 'check.json') });
  assert.is(check.code, 0, check.stderr + check.stdout);
  assert.equal(await hashes(), before, 'no file may change in check mode');
  assert.ok(check.report);
  assert.is(totalChanged(check.report!), 3 * 4, 'ssl, cert, comment and the handler on 3 hosts');
  assert.match(check.stdout, /\+ssl = on/);
  writeFileSync(join(work, 'check-summary.json'), JSON.stringify(summaries(check.report!)));
});

test('a real run converges every host, with the same changes --check announced', async () => {
  const run = await pgtls(['run', PLAYBOOK, '-i', lab.inventoryPath], { json: join(work, 'run1.json') });
  assert.is(run.code, 0, run.stderr + run.stdout);
  assert.equal(summaries(run.report!), JSON.parse(readFileSync(join(work, 'check-summary.json'), 'utf8')));
  for (const h of lab.hosts) {
    const r = await lab.exec(h.name, `cat ${FILE}; stat -c %a ${FILE}; cat ${FILE}.handler`);
    assert.is(r.code, 0);
    assert.is(r.stdout, `# managed by pgtls\nssl = on\nssl_cert_file = '/certs/${h.name}-${h.name}.crt'\n640\nreloaded\n`);
  }
  assert.match(run.stdout, /PLAY RECAP/);
  for (const h of lab.hosts) assert.match(run.stdout, new RegExp(`${h.name}\\s+: ok=5 changed=4 unreachable=0 failed=0 skipped=1`));
});

test('a second run reports changed=0', async () => {
  const run = await pgtls(['run', PLAYBOOK, '-i', lab.inventoryPath], { json: join(work, 'run2.json') });
  assert.is(run.code, 0, run.stderr);
  assert.is(totalChanged(run.report!), 0);
  for (const h of lab.hosts) assert.is((await lab.exec(h.name, `cat ${FILE}.handler`)).stdout, 'reloaded\n', 'handler ran once');
});

test('a host with a wrong host key is unreachable: facts first, no host changed; with --keep-going the others converge', async () => {
  const kh = join(work, 'known_hosts.bad');
  const other = join(work, 'otherkey');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
  const otherKey = readFileSync(`${other}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
  const victim = lab.hosts[1]!;
  const lines = readFileSync(lab.knownHostsPath, 'utf8')
    .split('\n')
    .map((l) => (l.startsWith(`${victim.ip} `) ? `${victim.ip} ${otherKey}` : l));
  writeFileSync(kh, lines.join('\n'));
  for (const h of lab.hosts) await lab.exec(h.name, `sed -i 's/^ssl = on/ssl = off/' ${FILE}`);
  const stopped = await pgtls(['run', PLAYBOOK, '-i', lab.inventoryPath, '--known-hosts', kh], { json: join(work, 'badkey-stop.json') });
  assert.is(stopped.code, 3, 'exit 3: a host unreachable, none failed');
  assert.match(stopped.stdout, /no host was changed: .*could not be read before the first change/);
  for (const h of lab.hosts) assert.is((await lab.exec(h.name, `grep -c '^ssl = off' ${FILE}`)).stdout.trim(), '1', `${h.name} untouched`);
  const run = await pgtls(['run', PLAYBOOK, '-i', lab.inventoryPath, '--known-hosts', kh, '--keep-going'], { json: join(work, 'badkey.json') });
  assert.is(run.code, 3, 'exit 3: a host unreachable, none failed');
  const rep = run.report!;
  assert.is(rep.hosts[victim.name]!.status, 'unreachable');
  assert.match(rep.hosts[victim.name]!.message ?? '', /changed|MITM|man-in-the-middle/i);
  for (const h of lab.hosts.filter((x) => x !== victim)) {
    assert.is(rep.hosts[h.name]!.status, 'ok');
    assert.is((await lab.exec(h.name, `grep -c '^ssl = on' ${FILE}`)).stdout.trim(), '1');
  }
  assert.is((await lab.exec(victim.name, `grep -c '^ssl = off' ${FILE}`)).stdout.trim(), '1', 'the victim was not touched');
});

test('an unknown host key is refused by default with advice', async () => {
  const empty = join(work, 'known_hosts.empty');
  writeFileSync(empty, '');
  const run = await pgtls(['run', PLAYBOOK, '-i', lab.inventoryPath, '--known-hosts', empty], { json: join(work, 'unknown.json') });
  assert.is(run.code, 3);
  for (const h of lab.hosts) assert.match(run.report!.hosts[h.name]!.message ?? '', /ssh-keyscan/);
});

test('an invalid playbook exits 2, names file, line and field, and opens no connection', async () => {
  let connections = 0;
  const server: Server = createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const inv = join(work, 'trap-inventory.yaml');
  writeFileSync(inv, `all:\n  hosts:\n    trap: { ansible_host: 127.0.0.1, ansible_port: ${port}, ansible_user: root }\n`);
  const bad = join(work, 'bad.yaml');
  writeFileSync(bad, `- hosts: all\n  tasks:\n    - name: t\n      lineinfile:\n        path: relative/path\n        line: x\n        stat: present\n`);
  for (const inventory of [inv, lab.inventoryPath]) {
    const run = await pgtls(['run', bad, '-i', inventory]);
    assert.is(run.code, 2);
    assert.match(run.stderr, new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5: .*path`));
    assert.match(run.stderr, /:7: .*stat|Unrecognized key.*stat/);
  }
  server.close();
  assert.is(connections, 0);
});

test('keys from ssh-agent (SSH_AUTH_SOCK) work without a key file', async () => {
  const sock = join(work, 'agent.sock');
  const agent = execFileSync('ssh-agent', ['-a', sock]).toString();
  const pid = /SSH_AGENT_PID=(\d+)/.exec(agent)?.[1];
  try {
    execFileSync('ssh-add', [lab.keyPath], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
    const inv = join(work, 'agent-inventory.yaml');
    writeFileSync(inv, readFileSync(lab.inventoryPath, 'utf8').replace(/^\s*ansible_ssh_private_key_file:.*$/m, ''));
    assert.not.match(readFileSync(inv, 'utf8'), /ansible_ssh_private_key_file/);
    const run = await pgtls(['run', PLAYBOOK, '-i', inv], { json: join(work, 'agent.json'), env: { SSH_AUTH_SOCK: sock } });
    assert.is(run.code, 0, run.stdout + run.stderr);
    const without = await pgtls(['run', PLAYBOOK, '-i', inv], { json: join(work, 'noagent.json'), env: { SSH_AUTH_SOCK: '' } });
    assert.is(without.code, 3, 'no key file and no agent: unreachable');
  } finally {
    if (pid) process.kill(Number(pid));
  }
});

test('a non-root login with ansible_become (sudo -n) converges root-owned files', async () => {
  const becomeLab = await labUp({ hosts: 2, user: 'deploy', dir: join(work, 'lab-become') });
  try {
    assert.match(readFileSync(becomeLab.inventoryPath, 'utf8'), /ansible_become: true/);
    const run = await pgtls(['run', PLAYBOOK, '-i', becomeLab.inventoryPath], { json: join(work, 'become.json') });
    assert.is(run.code, 0, run.stdout + run.stderr);
    for (const h of becomeLab.hosts) {
      const r = await becomeLab.exec(h.name, `stat -c '%U %a' ${FILE}; grep -c '^ssl = on' ${FILE}`);
      assert.is(r.stdout, 'root 640\n1\n');
    }
    const again = await pgtls(['run', PLAYBOOK, '-i', becomeLab.inventoryPath], { json: join(work, 'become2.json') });
    assert.is(totalChanged(again.report!), 0);
  } finally {
    await becomeLab.down();
  }
});

function summaries(r: NonNullable<Awaited<ReturnType<typeof pgtls>>['report']>) {
  // --check words the same change 'would …' (src/core/apply-plan.ts checkPhrase): compared without it
  const plain = (s: string) => s.replace(/^(conditional change: )?would /, '');
  return Object.fromEntries(Object.entries(r.hosts).map(([h, x]) => [h, x.tasks.map((t) => [t.name, t.status, t.summaries.map(plain)])]));
}

if (labAvailable()) test.run();
else console.log('runner.test: skipped, needs root, iproute2 and sshd (run .ci/run)');
