/**
 * Ansible connection settings on real hosts: a jump host (ansible_ssh_common_args -o ProxyJump=…)
 * over ssh2 with host keys verified at each hop, and ansible_become_password (sudo -S, the
 * password on stdin, never on a command line) for a sudo user that needs one and one that does not.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labAvailable, labUp, type Lab } from './lab.js';
import { pgtls } from './cli.js';

const work = mkdtempSync(join(tmpdir(), 'pgtls-e2e-conn-'));
const SUDO_PASSWORD = `sudo "pw" it's 1`;
let lab: Lab;

test('a lab of 2 hosts with a sudo login user comes up', async () => {
  if (!labAvailable()) {
    assert.not.ok(process.env.CI, 'the lab is needed under CI');
    return;
  }
  lab = await labUp({ hosts: 2, user: 'deploy', dir: join(work, 'lab') });
  assert.is(lab.hosts.length, 2);
  // pg1: sudo wants deploy's password; pg2 keeps NOPASSWD (the password line must not leak into commands)
  const setup = await lab.exec(
    'pg1',
    `echo ${shq(`deploy:${SUDO_PASSWORD}`)} | chpasswd && echo 'deploy ALL=(ALL:ALL) ALL' > /etc/sudoers.d/pgtls-lab-deploy && chmod 0440 /etc/sudoers.d/pgtls-lab-deploy && ! runuser -u deploy -- sudo -n true 2>/dev/null`,
  );
  assert.is(setup.code, 0, setup.stderr);
});
test.after(async () => {
  await lab?.down();
});

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const PLAYBOOK = join(work, 'become.yaml');
writeFileSync(
  PLAYBOOK,
  `- hosts: all
  become: yes
  tasks:
    - name: a file written as root through sudo (its content travels on stdin after the password)
      ansible.builtin.lineinfile: { path: /etc/pgtls-become-test.conf, line: "written = {{ inventory_hostname }}", create: yes, mode: "0600" }
    - name: who am I
      ansible.builtin.shell: "id -un > /tmp/pgtls-whoami"
    - name: where the SSH session comes from (as the login user, since sudo drops SSH_CONNECTION)
      shell: "echo \\"$SSH_CONNECTION\\" > /tmp/pgtls-via"
      become: no
`,
);

function inventory(extra: string): string {
  const file = join(work, `inv-${Math.random().toString(36).slice(2)}.ini`);
  const lines = lab.hosts.map((h) => `${h.name} ansible_host=${h.ip}`);
  writeFileSync(
    file,
    `[db]\n${lines.join('\n')}\n\n[db:vars]\nansible_user=deploy\nansible_ssh_private_key_file=${lab.keyPath}\npgtls_known_hosts=${lab.knownHostsPath}\n${extra}\n`,
  );
  return file;
}

test('ansible_become_password: sudo -S with the password on stdin; NOPASSWD hosts too; never on a command line', async () => {
  if (!lab) return assert.not.ok(process.env.CI);
  const log = join(work, 'commands.log');
  const inv = inventory(`ansible_become_password="${SUDO_PASSWORD.replace(/"/g, '\\"')}"`);
  const r = await pgtls(['run', PLAYBOOK, '-i', inv], { env: { PGTLS_COMMAND_LOG: log } });
  assert.is(r.code, 0, r.stdout + r.stderr);
  for (const h of ['pg1', 'pg2']) {
    const f = await lab.exec(h, 'stat -c %U:%a /etc/pgtls-become-test.conf && cat /etc/pgtls-become-test.conf && cat /tmp/pgtls-whoami');
    assert.is(f.stdout, `root:600\nwritten = ${h}\nroot\n`, `${h}: ${f.stderr}`);
  }
  const commands = readFileSync(log, 'utf8');
  assert.match(commands, /sudo -S -k -p/);
  // one sudo per long-lived shell (src/remote/stream-shell.ts), not one per command: the file task
  // alone runs several commands as root on each host
  for (const h of ['pg1', 'pg2']) {
    const lines = commands.split('\n').filter((l) => l.startsWith(`${h}\t`));
    const sudos = lines.filter((l) => /sudo -S -k -p/.test(l)).length;
    assert.is(sudos, 1, `${h}: ${sudos} sudo -S among ${lines.length} commands`);
    assert.ok(lines.length > 4, `${h}: ${lines.length} commands`);
  }
  assert.not.ok(commands.includes('sudo "pw"'), 'the become password is on a command line');
  assert.not.ok((r.stdout + r.stderr).includes('sudo "pw"'));
});

test('without the become password, the host that needs one fails (sudo -n), the other works', async () => {
  if (!lab) return assert.not.ok(process.env.CI);
  const r = await pgtls(['run', PLAYBOOK, '-i', inventory('')]);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /pg1: failed/);
  assert.not.match(r.stdout, /pg2: failed/);
});

test('ProxyJump: pg2 reached through pg1 (the session comes from pg1), host keys checked at each hop', async () => {
  if (!lab) return assert.not.ok(process.env.CI);
  const [pg1, pg2] = [lab.ip('pg1'), lab.ip('pg2')];
  const inv = join(work, 'jump.yml');
  const vars = `ansible_user: deploy\n    ansible_ssh_private_key_file: ${lab.keyPath}\n    pgtls_known_hosts: ${lab.knownHostsPath}`;
  writeFileSync(
    inv,
    `all:\n  vars:\n    ${vars}\n    ansible_become_password: "${SUDO_PASSWORD.replace(/"/g, '\\"')}"\n  hosts:\n    pg2:\n      ansible_host: ${pg2}\n      ansible_ssh_common_args: "-o ProxyJump=deploy@${pg1}:22"\n`,
  );
  const r = await pgtls(['run', PLAYBOOK, '-i', inv, '-vv']);
  assert.is(r.code, 0, r.stdout + r.stderr);
  const via = await lab.exec('pg2', 'cat /tmp/pgtls-via');
  assert.is(via.stdout.split(' ')[0], pg1, `SSH_CONNECTION on pg2: ${via.stdout}`);
  assert.match(r.stderr, /^pg2\t.*sudo/m, '-v prints the remote commands');
  assert.match(r.stderr, /^pg2\t=> exit 0 \(\d+ ms\)/m, '-vv adds exit status and time');

  // a known_hosts without the bastion's key: unreachable, naming the jump host, nothing run on pg2
  const kh = join(work, 'known_hosts_no_bastion');
  writeFileSync(kh, readFileSync(lab.knownHostsPath, 'utf8').split('\n').filter((l) => !l.startsWith(`${pg1} `)).join('\n') + '\n');
  await lab.exec('pg2', 'rm -f /tmp/pgtls-via');
  const bad = await pgtls(['run', PLAYBOOK, '-i', inv, '--known-hosts', kh]);
  assert.is(bad.code, 3, bad.stdout + bad.stderr);
  assert.match(bad.stdout + bad.stderr, /jump host/, bad.stdout + bad.stderr);
  assert.is((await lab.exec('pg2', 'test -e /tmp/pgtls-via')).code, 1);
});

test('unsupported ssh arguments are bad input, not ignored', async () => {
  if (!lab) return assert.not.ok(process.env.CI);
  const r = await pgtls(['run', PLAYBOOK, '-i', inventory('ansible_ssh_extra_args="-o StrictHostKeyChecking=no"'), '--syntax-check']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /StrictHostKeyChecking' is not supported/, r.stdout + r.stderr);
});

test.run();
