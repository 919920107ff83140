/**
 * Existing Ansible inventories as they are: INI forms, host ranges, group_vars/ and host_vars/
 * (files and directories, YAML and JSON, beside the inventory and the playbook), vaults.
 * The realistic layouts are compared with what the real `ansible-inventory --list` prints.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadInventory, type Inventory } from '../../src/config/inventory.js';
import { expandHostRange } from '../../src/config/host-ranges.js';
import { iniValue, parseIniInventory } from '../../src/config/ini-inventory.js';
import { loadVaultPasswords, VaultKeyring } from '../../src/config/vault.js';
import { ConfigError } from '../../src/lib/errors.js';
import { Secret } from '../../src/lib/secret.js';

function layout(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgtls-ansible-'));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

/** Secrets revealed, so values compare with what Ansible prints. */
function plain(v: unknown): unknown {
  if (v instanceof Secret) return v.reveal();
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  assert.unreachable('expected a ConfigError');
  return '';
}

// ---------------------------------------------------------------------------------------------
// host ranges
const ranges: [string, string[]][] = [
  ['db[1:3]', ['db1', 'db2', 'db3']],
  ['db[01:03]', ['db01', 'db02', 'db03']],
  ['db[08:10].example', ['db08', 'db09', 'db10'].map((h) => `${h}.example`)],
  ['db[a:c]', ['dba', 'dbb', 'dbc']],
  ['db[1:6:2]', ['db1', 'db3', 'db5']],
  ['r[1:2]n[a:b]', ['r1na', 'r1nb', 'r2na', 'r2nb']],
  ['[:2]x', ['0x', '1x', '2x']],
  ['plain', ['plain']],
];
for (const [pattern, expected] of ranges) test(`host range ${pattern}`, () => assert.equal(expandHostRange(pattern), expected));
test('host range errors: reversed, mixed, too large', () => {
  assert.throws(() => expandHostRange('db[3:1]'), /start is after the end/);
  assert.throws(() => expandHostRange('db[1:c]'), /use numbers/);
  assert.throws(() => expandHostRange('db[1:99999999]'), /more than/);
});

// ---------------------------------------------------------------------------------------------
// INI values: Python literals, as Ansible reads them
const values: [string, unknown][] = [
  ['5432', 5432],
  ['-1', -1],
  ['1.5', 1.5],
  ['True', true],
  ['False', false],
  ['None', null],
  ['yes', 'yes'],
  ["'quoted'", 'quoted'],
  ['"dq"', 'dq'],
  ['[1, 2]', [1, 2]],
  ["{'a': True}", { a: true }],
  ['/etc/x y', '/etc/x y'],
];
for (const [text, expected] of values) test(`INI value ${text}`, () => assert.equal(iniValue(text), expected));

// ---------------------------------------------------------------------------------------------
// INI forms, table-driven: inventory text -> host: groups and selected vars
const iniCases: { name: string; ini: string; hosts: Record<string, { groups?: string[]; vars?: Record<string, unknown> }> }[] = [
  { name: 'ungrouped hosts before any section', ini: 'a\nb ansible_host=10.0.0.2\n', hosts: { a: { groups: ['all', 'ungrouped'] }, b: { vars: { ansible_host: '10.0.0.2' } } } },
  { name: 'a group with inline host vars', ini: '[db]\npg1 ansible_port=2222 x="a b"\n', hosts: { pg1: { groups: ['all', 'db'], vars: { ansible_port: 2222, x: 'a b' } } } },
  { name: 'host:port', ini: '[db]\npg1:2201\n', hosts: { pg1: { vars: { ansible_port: 2201 } } } },
  { name: ':vars', ini: '[db]\npg1\n[db:vars]\nansible_user=deploy\nport=5432\n', hosts: { pg1: { vars: { ansible_user: 'deploy', port: 5432 } } } },
  { name: ':children', ini: '[pg]\np1\n[pool]\nq1\n[cluster:children]\npg\npool\n[cluster:vars]\nc=1\n', hosts: { p1: { groups: ['all', 'cluster', 'pg'], vars: { c: 1 } }, q1: { groups: ['all', 'cluster', 'pool'] } } },
  { name: '[all:vars] below groups', ini: '[db]\npg1 level=host\npg2\n[all:vars]\nlevel=all\n', hosts: { pg1: { vars: { level: 'host' } }, pg2: { vars: { level: 'all' } } } },
  { name: 'ranges with padding and letters', ini: '[db]\ndb[01:02] r=1\nn[a:b]\n', hosts: { db01: { vars: { r: 1 } }, db02: {}, na: {}, nb: {} } },
  { name: 'comments (# and ;) and blank lines', ini: '# c\n; c\n\n[db]\npg1 x=1 # trailing\n', hosts: { pg1: { vars: { x: 1 } } } },
  { name: 'a host in two groups keeps both groups vars', ini: '[a]\nh\n[b]\nh\n[a:vars]\nfrom_a=1\n[b:vars]\nfrom_b=2\n', hosts: { h: { groups: ['all', 'a', 'b'], vars: { from_a: 1, from_b: 2 } } } },
];
for (const c of iniCases) {
  test(`INI: ${c.name}`, () => {
    const dir = layout({ 'hosts': c.ini });
    const inv = loadInventory(join(dir, 'hosts'));
    assert.is(inv.format, 'ini');
    for (const [host, want] of Object.entries(c.hosts)) {
      const h = inv.hosts.get(host);
      assert.ok(h, `${host} not in ${[...inv.hosts.keys()].join(', ')}`);
      if (want.groups) assert.equal(h!.groups, want.groups);
      for (const [k, v] of Object.entries(want.vars ?? {})) assert.equal(h!.vars[k], v, `${host}.${k}`);
    }
  });
}

test('INI: bad lines are errors with file and line', () => {
  const dir = layout({ 'hosts': '[db]\npg1 novalue\n[db:weird]\n' });
  const msg = configError(() => loadInventory(join(dir, 'hosts')));
  assert.match(msg, /hosts:2: pg1: expected key=value/);
  assert.match(msg, /hosts:3: bad section header/);
});

test('INI line numbers: lineOf points at the host and variable lines', () => {
  const doc = parseIniInventory('[db]\npg1 a=1\n\n[db:vars]\nb=2\n', 'inv');
  assert.is(doc.lineOf(['db', 'hosts', 'pg1']), 2);
  assert.is(doc.lineOf(['db', 'vars', 'b']), 5);
});

test('YAML inventory: host ranges and host:port as keys; lines of expanded hosts point at the pattern', () => {
  const dir = layout({ 'inv.yml': 'all:\n  children:\n    db:\n      hosts:\n        db[1:2]:\n          ansible_user: u\n        one:2222:\n' });
  const inv = loadInventory(join(dir, 'inv.yml'));
  assert.equal([...inv.hosts.keys()], ['db1', 'db2', 'one']);
  assert.is(inv.hosts.get('db2')!.vars.ansible_user, 'u');
  assert.is(inv.hosts.get('one')!.vars.ansible_port, 2222);
  assert.is(inv.doc.lineOf(['all', 'children', 'db', 'hosts', 'db2']), 5);
  assert.is(inv.doc.lineOf(['all', 'children', 'db', 'hosts', 'db2', 'ansible_user']), 6);
});

test('an ansible_* variable pgtls does not implement is a warning, once, naming hosts', () => {
  const dir = layout({ 'hosts': '[db]\na ansible_python_interpreter=/usr/bin/python3\nb ansible_python_interpreter=/usr/bin/python3 ansible_connection=local\n' });
  const inv = loadInventory(join(dir, 'hosts'));
  assert.equal(inv.warnings.length, 2, inv.warnings.join('\n'));
  assert.match(inv.warnings[0]!, /ansible_python_interpreter \(a, b\): not implemented by pgtls/);
  assert.match(inv.warnings[1]!, /ansible_connection \(b\): pgtls always connects over SSH/);
});

// ---------------------------------------------------------------------------------------------
// group_vars / host_vars beside the inventory and the playbook
test('group_vars/host_vars: files and directories, YAML and JSON, with Ansible precedence; the playbook dir wins over the inventory dir', () => {
  const dir = layout({
    'inventory/hosts': '[db]\npg1 level=inv_host\npg2\n[db:vars]\nlevel=inv_group\n[all:vars]\nlevel=inv_all\n',
    'inventory/group_vars/all.yml': 'level: gv_all\na: 1\n',
    'inventory/group_vars/db/10-main.yaml': 'level: gv_db\nb: 2\n',
    'inventory/group_vars/db/20-more.json': '{"c": 3, "b": 22}\n',
    'inventory/host_vars/pg2': 'level: hv_pg2\n',
    'play/group_vars/all.yml': 'a: play_all\n',
    'play/host_vars/pg2.yml': 'level: play_hv_pg2\n',
  });
  const inv = loadInventory(join(dir, 'inventory', 'hosts'), { playbookDir: join(dir, 'play') });
  const pg1 = inv.hosts.get('pg1')!.vars;
  const pg2 = inv.hosts.get('pg2')!.vars;
  assert.is(pg1.level, 'inv_host'); // inventory host vars beat every group var
  assert.is(pg2.level, 'play_hv_pg2'); // playbook host_vars beat inventory host_vars
  assert.is(pg1.a, 'play_all');
  assert.is(pg1.b, 22); // later file in the directory wins
  assert.is(pg1.c, 3);
  const noPlay = loadInventory(join(dir, 'inventory', 'hosts'));
  assert.is(noPlay.hosts.get('pg2')!.vars.level, 'hv_pg2');
});

// ---------------------------------------------------------------------------------------------
// the real ansible-inventory on realistic layouts
const VAULT_PASSWORD = 'correct horse battery';

function ansibleInventory(inventory: string, extra: string[] = []): { hostvars: Record<string, Record<string, unknown>>; members: Map<string, Set<string>> } {
  const out = execFileSync('ansible-inventory', ['-i', inventory, '--list', ...extra], {
    encoding: 'utf8',
    env: { ...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_LOCALHOST_WARNING: 'false', ANSIBLE_INVENTORY_UNPARSED_WARNING: 'false' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const j = JSON.parse(out) as Record<string, { hosts?: string[]; children?: string[] }> & { _meta: { hostvars: Record<string, Record<string, unknown>> } };
  const members = new Map<string, Set<string>>();
  const collect = (g: string): Set<string> => {
    const known = members.get(g);
    if (known) return known;
    const s = new Set<string>(j[g]?.hosts ?? []);
    for (const c of j[g]?.children ?? []) for (const h of collect(c)) s.add(h);
    members.set(g, s);
    return s;
  };
  for (const g of Object.keys(j)) if (g !== '_meta') collect(g);
  return { hostvars: j._meta.hostvars, members };
}

function compareWithAnsible(inv: Inventory, ansible: ReturnType<typeof ansibleInventory>, vault: VaultKeyring): void {
  // ansible-inventory prints an inline !vault value still encrypted: open it to compare
  for (const h of Object.values(ansible.hostvars))
    for (const [k, v] of Object.entries(h))
      if (v && typeof v === 'object' && '__ansible_vault' in v) h[k] = vault.decrypt(String((v as { __ansible_vault: string }).__ansible_vault));
  assert.equal([...inv.hosts.keys()].sort(), Object.keys(ansible.hostvars).sort(), 'hosts');
  for (const [name, h] of inv.hosts) assert.equal(plain(h.vars), ansible.hostvars[name], `vars of ${name}`);
  for (const [group, hosts] of ansible.members) {
    if (group === 'ungrouped' && hosts.size === 0) continue;
    assert.equal([...(inv.groups.get(group) ?? [])].sort(), [...hosts].sort(), `members of ${group}`);
  }
}

const REAL_INI = `ungrouped1 ansible_host=10.0.0.9

[postgres]
db[01:03] ansible_user=deploy
pg-[a:b].example ansible_port=2222 quoted="a b" num="5432"

[pgpool]
pool1 ansible_host=10.0.0.5 flag=True

[pgpool:vars]
pgpool_port=9999
role='pool'

[cluster:children]
postgres
pgpool

[cluster:vars]
ansible_become=yes
level=cluster

[all:vars]
level=all
ntp=pool.ntp.org
`;

const REAL_FILES = {
  'group_vars/all.yml': 'level: group_vars_all\nfrom_all: 1\n',
  'group_vars/postgres/main.yml': 'level: postgres_dir\nlist: [1, 2]\n',
  'group_vars/postgres/extra.json': '{"json_var": {"a": 1}}\n',
  'group_vars/cluster.yaml': 'level: cluster_file\nnested: { k: v }\n',
  'host_vars/db02.yml': 'level: host_db02\n',
  'host_vars/pool1/main.yml': 'pool_only: true\n',
  'vault-pass': `${VAULT_PASSWORD}\n`,
};

function withVaults(dir: string): void {
  // a vault-encrypted group_vars file and an inline !vault value, both made by the real ansible-vault
  writeFileSync(join(dir, 'group_vars', 'postgres', 'vault.yml'), 'vault_webadmin_password: from-encrypted-file\n');
  execFileSync('ansible-vault', ['encrypt', '--vault-password-file', 'vault-pass', 'group_vars/postgres/vault.yml'], { cwd: dir, stdio: 'pipe' });
  const inline = execFileSync('ansible-vault', ['encrypt_string', '--vault-id', 'prod@vault-pass', 'inline-secret', '--name', 'pgpool_password'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  writeFileSync(join(dir, 'host_vars', 'pool1', 'vault.yml'), inline);
}

test('a real Ansible INI layout (group_vars/ and host_vars/ directories, vaults) resolves as ansible-inventory --list says', () => {
  const dir = layout({ hosts: REAL_INI, ...REAL_FILES });
  withVaults(dir);
  const vault = loadVaultPasswords({ passwordFiles: [join(dir, 'vault-pass')] });
  const inv = loadInventory(join(dir, 'hosts'), { vault });
  assert.ok(inv.hosts.get('db01')!.vars.vault_webadmin_password instanceof Secret, 'vault file values are Secrets');
  assert.ok(inv.hosts.get('pool1')!.vars.pgpool_password instanceof Secret, '!vault values are Secrets');
  assert.not.match(JSON.stringify(inv.hosts.get('pool1')!.vars), /inline-secret/);
  compareWithAnsible(inv, ansibleInventory(join(dir, 'hosts'), ['--vault-password-file', join(dir, 'vault-pass')]), vault);
});

test('group_vars/host_vars beside the playbook rank above the inventory\'s, as ansible-inventory --playbook-dir says', () => {
  const dir = layout({
    'inventory/hosts': REAL_INI,
    ...Object.fromEntries(Object.entries(REAL_FILES).map(([k, v]) => [k === 'vault-pass' ? k : `inventory/${k}`, v])),
    'play/group_vars/all.yml': 'level: play_all\nplay_only: 1\n',
    'play/group_vars/postgres.yml': 'level: play_postgres\n',
    'play/host_vars/db02.yml': 'level: play_db02\n',
    'play/host_vars/pool1.yml': 'flag: from_play\n',
  });
  const inv = loadInventory(join(dir, 'inventory', 'hosts'), { playbookDir: join(dir, 'play') });
  assert.is(inv.hosts.get('db02')!.vars.level, 'play_db02');
  compareWithAnsible(inv, ansibleInventory(join(dir, 'inventory', 'hosts'), ['--playbook-dir', join(dir, 'play')]), new VaultKeyring());
});

test('the same layout as a YAML inventory resolves as ansible-inventory --list says', () => {
  const yaml = `all:
  vars: { level: all, ntp: pool.ntp.org }
  hosts:
    ungrouped1: { ansible_host: 10.0.0.9 }
  children:
    cluster:
      vars: { ansible_become: yes, level: cluster }
      children:
        postgres:
          hosts:
            db[01:03]: { ansible_user: deploy }
            pg-[a:b].example: { ansible_port: 2222, quoted: a b, num: "5432" }
        pgpool:
          vars: { pgpool_port: 9999, role: pool }
          hosts:
            pool1: { ansible_host: 10.0.0.5, flag: true }
`;
  const dir = layout({ 'inventory.yml': yaml, ...REAL_FILES });
  withVaults(dir);
  const vault = loadVaultPasswords({ vaultIds: [`prod@${join(dir, 'vault-pass')}`] });
  const inv = loadInventory(join(dir, 'inventory.yml'), { vault });
  assert.is(inv.format, 'yaml');
  const ansible = ansibleInventory(join(dir, 'inventory.yml'), ['--vault-id', `prod@${join(dir, 'vault-pass')}`]);
  // YAML 1.1 (Ansible) reads `yes` as true; pgtls keeps YAML 1.2 data and accepts yes where Ansible takes a boolean.
  for (const h of Object.values(ansible.hostvars)) if (h.ansible_become === true) h.ansible_become = 'yes';
  compareWithAnsible(inv, ansible, vault);
});

// ---------------------------------------------------------------------------------------------
// ansible-vault, both directions, against the real binary
test('vault: files encrypted by ansible-vault (1.1, and 1.2 with a vault id) decrypt; ours decrypt with ansible-vault', () => {
  const dir = layout({ 'pw': `${VAULT_PASSWORD}\n`, 'a.txt': 'hello\nworld\n', 'b.txt': 'x'.repeat(33) });
  execFileSync('ansible-vault', ['encrypt', '--vault-password-file', 'pw', 'a.txt'], { cwd: dir, stdio: 'pipe' });
  execFileSync('ansible-vault', ['encrypt', '--vault-id', 'lab@pw', 'b.txt'], { cwd: dir, stdio: 'pipe' });
  const ring = loadVaultPasswords({ passwordFiles: [join(dir, 'pw')] });
  const read = (f: string) => execFileSync('cat', [join(dir, f)], { encoding: 'utf8' });
  assert.match(read('a.txt'), /^\$ANSIBLE_VAULT;1\.1;AES256\n/);
  assert.match(read('b.txt'), /^\$ANSIBLE_VAULT;1\.2;AES256;lab\n/);
  assert.is(ring.decrypt(read('a.txt')), 'hello\nworld\n');
  assert.is(ring.decrypt(read('b.txt')), 'x'.repeat(33));
  // and the other way: what we encrypt, ansible-vault opens
  for (const [plaintext, label] of [['a', undefined], ['sixteen bytes!!!', undefined], ['ünïcødé\n', 'prod']] as const) {
    writeFileSync(join(dir, 'ours.txt'), encrypt(plaintext, label));
    const viewed = execFileSync('ansible-vault', ['decrypt', '--vault-password-file', 'pw', '--output', '-', 'ours.txt'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.is(viewed, plaintext);
  }
});

import { encryptVault } from '../../src/config/vault.js';
function encrypt(text: string, label?: string): string {
  return encryptVault(text, VAULT_PASSWORD, label);
}

test('vault: a wrong password, no password, a malformed vault are errors that name the file (never the password)', () => {
  const dir = layout({ 'good': 'right-password\n', 'bad': 'wrong-password\n', 'inv.yml': 'all:\n  vars:\n    x: 1\n' });
  writeFileSync(join(dir, 'group_vars.yml'), '');
  mkdirSync(join(dir, 'group_vars'));
  writeFileSync(join(dir, 'group_vars', 'all.yml'), encryptVault('secret_thing: 1\n', 'right-password'));
  const wrong = configError(() => loadInventory(join(dir, 'inv.yml'), { vault: loadVaultPasswords({ passwordFiles: [join(dir, 'bad')] }) }));
  assert.match(wrong, /group_vars\/all\.yml: cannot be decrypted with the given vault password/);
  assert.not.match(wrong, /wrong-password/);
  assert.match(configError(() => loadInventory(join(dir, 'inv.yml'))), /is vault-encrypted, but no vault password was given/);
  writeFileSync(join(dir, 'group_vars', 'all.yml'), '$ANSIBLE_VAULT;1.1;AES256\nzz\n');
  assert.match(configError(() => loadInventory(join(dir, 'inv.yml'), { vault: loadVaultPasswords({ passwordFiles: [join(dir, 'good')] }) })), /not hexadecimal/);
  // with several passwords the right one is found
  writeFileSync(join(dir, 'group_vars', 'all.yml'), encryptVault('secret_thing: 1\n', 'right-password'));
  const inv = loadInventory(join(dir, 'inv.yml'), { vault: loadVaultPasswords({ passwordFiles: [join(dir, 'bad'), join(dir, 'good')] }) });
  assert.is(inv.hosts.size, 0);
});

test('vault password sources: ANSIBLE_VAULT_PASSWORD_FILE, an executable password script, prompt refused', () => {
  const dir = layout({ 'pw': 'from-file\n', 'script.sh': '#!/bin/sh\necho from-script\n' });
  execFileSync('chmod', ['+x', join(dir, 'script.sh')]);
  const env = loadVaultPasswords({ env: { ANSIBLE_VAULT_PASSWORD_FILE: join(dir, 'pw') } });
  assert.is(env.passwords[0]!.password.reveal(), 'from-file');
  const script = loadVaultPasswords({ passwordFiles: [join(dir, 'script.sh')] });
  assert.is(script.passwords[0]!.password.reveal(), 'from-script');
  assert.throws(() => loadVaultPasswords({ vaultIds: ['dev@prompt'] }), (e: unknown) => e instanceof ConfigError && /prompting/.test(e.message));
  assert.ok(new VaultKeyring().empty);
});

// ---------------------------------------------------------------------------------------------
// playbooks and connection settings as Ansible users write them
import { loadPlaybook } from '../../src/config/playbook.js';
import { modules } from '../../src/modules/index.js';
import { connectionVars, proxyJumps } from '../../src/core/vars.js';

test('playbooks: become: yes, gather_facts: no, ignore_errors: on, ansible.builtin.* module names', () => {
  const dir = layout({
    'p.yml': `- hosts: all
  become: yes
  gather_facts: no
  tasks:
    - name: a
      ansible.builtin.lineinfile: { path: /etc/x, line: y }
      ignore_errors: on
    - ansible.legacy.shell: "true"
      become: "False"
    - pgtls.pg_hba: { path: /etc/postgresql/15/main/pg_hba.conf }
`,
  });
  const book = loadPlaybook(join(dir, 'p.yml'), modules);
  const play = book.plays[0]!;
  assert.is(play.become, true);
  assert.is(play.gatherFacts, false);
  assert.equal(play.tasks.map((t) => t.module), ['lineinfile', 'shell', 'pg_hba']);
  assert.is(play.tasks[0]!.ignoreErrors, true);
  assert.is(play.tasks[1]!.become, false);
  assert.is(book.doc.lineOf(play.tasks[0]!.argsPath), 6);
  const bad = layout({ 'p.yml': '- hosts: all\n  become: maybe\n  tasks: []\n' });
  assert.match(configError(() => loadPlaybook(join(bad, 'p.yml'), modules)), /p\.yml:2: \[0\]\.become: expected a boolean/);
});

const jumps: [string, unknown][] = [
  ['-o ProxyJump=deploy@bastion:2222', [{ user: 'deploy', host: 'bastion', port: 2222 }]],
  ['-o ProxyJump=a,b:2200', [{ host: 'a', port: 22 }, { host: 'b', port: 2200 }]],
  ['-oProxyJump=bastion', [{ host: 'bastion', port: 22 }]],
  ['-o "ProxyJump ssh://u@[2001:db8::1]:2022"', [{ user: 'u', host: '2001:db8::1', port: 2022 }]],
  ['-J jump.example', [{ host: 'jump.example', port: 22 }]],
  ['-o ProxyCommand="ssh -W %h:%p -q u@bastion"', [{ user: 'u', host: 'bastion', port: 22 }]],
  ['-o ProxyCommand="ssh -W %h:%p -p 2222 bastion"', [{ host: 'bastion', port: 2222 }]],
  ['', []],
];
for (const [args, expected] of jumps) test(`ssh args: ${args || '(empty)'}`, () => assert.equal(proxyJumps(args), expected));
test('ssh args pgtls cannot honour are errors, not ignored', () => {
  assert.throws(() => proxyJumps('-o StrictHostKeyChecking=no'), /StrictHostKeyChecking' is not supported/);
  assert.throws(() => proxyJumps('-C'), /'-C' is not supported/);
  assert.throws(() => proxyJumps('-o ProxyCommand="nc %h %p"'), /ProxyCommand .* is not supported/);
});

test('connection variables: ~ in key paths, become user/method/password (a Secret), yes/no', () => {
  const c = connectionVars(
    { ansible_ssh_private_key_file: '~/.ssh/id_ed25519', ansible_become: 'yes', ansible_become_user: 'postgres', ansible_become_pass: 'pw', ansible_ssh_common_args: '-o ProxyJump=b' },
    'h1',
  );
  assert.ok(c.success, JSON.stringify(c.error?.issues));
  assert.ok(!c.data!.ansible_ssh_private_key_file!.startsWith('~') && c.data!.ansible_ssh_private_key_file!.endsWith('/.ssh/id_ed25519'));
  assert.is(c.data!.ansible_become, true);
  assert.is(c.data!.ansible_become_user, 'postgres');
  assert.ok(c.data!.ansible_become_password instanceof Secret);
  assert.equal(c.data!.jumps, [{ host: 'b', port: 22 }]);
  const su = connectionVars({ ansible_become_method: 'su' }, 'h1');
  assert.not.ok(su.success);
  assert.match(JSON.stringify(su.error!.issues), /only 'sudo'/);
});

test.run();
