// The bad-input catalogue: inventories, playbooks, variable files and command lines that must be
// refused by the real CLI (src/cli.ts main, in process) with exit 2, the file, the line and the
// field, no stack trace and no connection (the hosts are 127.0.0.1:1 with a known_hosts file: had
// pgtls connected, it would have reported them unreachable, exit 3).
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { main } from '../../src/cli.js';
import { tempFiles } from './helpers.js';

const { dir } = tempFiles({});
const f = (name: string) => join(dir, name);
writeFileSync(f('id_key'), 'not really a key\n', { mode: 0o600 });
writeFileSync(f('known_hosts'), '');
writeFileSync(f('a-file'), 'x\n');
mkdirSync(f('ca-no-rotation'), { recursive: true });
writeFileSync(f('ca-no-rotation/ca.crt'), 'placeholder\n');
mkdirSync(f('ca-unpublished/next'), { recursive: true });
writeFileSync(f('ca-unpublished/ca.crt'), 'placeholder\n');
mkdirSync(f('a-dir'));

const HEAD = `all:
  vars:
    ansible_user: root
    ansible_port: 1
    ansible_ssh_private_key_file: ${f('id_key')}
    pgtls_known_hosts: ${f('known_hosts')}
    webadmin_password: pw
    pgtls_ca_dir: ${f('ca')}
  children:
    postgres:
      hosts:
        pg1: { ansible_host: 127.0.0.1 }
        pg2: { ansible_host: 127.0.0.1 }
    pgpool:
      hosts:
        pg3: { ansible_host: 127.0.0.1 }
`;
const PLAY = `- hosts: postgres
  tasks:
    - name: a line
      lineinfile: { path: /etc/x, line: a }
`;

function bomb(top: string): string {
  const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 10; i++) lines.push(`a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(', ')}]`);
  return lines.join('\n') + '\n' + top;
}

interface Case {
  name: string;
  /** files written before the run (relative names); `inv.yaml` and `play.yaml` default to the above */
  files?: Record<string, string | Buffer>;
  /** the command line; default: run play.yaml -i inv.yaml. $D is the temp dir */
  args?: string[];
  extra?: string[];
  /** what one stderr line must show: file (a name in the temp dir, or a literal like '--limit'), line, field and message */
  file: string;
  line?: number;
  field?: string;
  message: RegExp;
}

const inv = (body: string | Buffer) => ({ 'inv.yaml': body });
const play = (body: string | Buffer) => ({ 'play.yaml': body });
const task = (t: string) => play(`- hosts: postgres\n  tasks:\n${t}`);

const cases: Case[] = [
  // ---------------------------------------------------------------- command lines
  { name: 'no playbook', args: ['run', '-i', '$D/inv.yaml'], file: 'command line', message: /expected exactly one PLAYBOOK/ },
  { name: 'two playbooks', args: ['run', '$D/play.yaml', '$D/play.yaml', '-i', '$D/inv.yaml'], file: 'command line', message: /expected exactly one PLAYBOOK/ },
  { name: 'no inventory', args: ['run', '$D/play.yaml'], file: 'command line', field: '--inventory', message: /is required/ },
  { name: '--forks 0', extra: ['--forks', '0'], file: 'command line', field: '--forks', message: /positive integer/ },
  { name: '--forks abc', extra: ['--forks', 'abc'], file: 'command line', field: '--forks', message: /positive integer/ },
  { name: 'an unknown option', extra: ['--frobnicate'], file: 'command line', message: /frobnicate/ },
  { name: '--known-hosts with --insecure-skip-host-key-check', extra: ['--known-hosts', '$D/known_hosts', '--insecure-skip-host-key-check'], file: 'command line', message: /exclude each other/ },
  { name: '--known-hosts FILE that does not exist', extra: ['--known-hosts', '$D/nope'], file: '--known-hosts', message: /nope: no such file: host keys are verified against it/ },
  { name: '--known-hosts a directory', extra: ['--known-hosts', f('a-dir')], file: '--known-hosts', message: /a-dir: is not a regular file/ },
  { name: '--limit naming no host or group', extra: ['--limit', 'pg9'], file: '--limit', field: 'pg9', message: /matches no host or group .*: pg9/ },
  { name: '--limit typo with a suggestion', extra: ['--limit', 'postgre'], file: '--limit', field: 'postgre', message: /did you mean 'postgres'/ },
  { name: '--limit wildcard matching nothing', extra: ['--limit', 'db*'], file: '--limit', field: 'db*', message: /matches no host or group .*: db\*/ },
  { name: '--limit intersection matching nothing', extra: ['--limit', 'postgres:&pgpool'], file: '--limit', field: 'postgres:&pgpool', message: /matches no host of/ },
  { name: '--limit exclusions leaving nothing', extra: ['--limit', 'postgres:!pg1:!pg2'], file: '--limit', field: 'postgres:!pg1:!pg2', message: /matches no host of/ },
  { name: '--limit matching only hosts no play runs on', extra: ['--limit', 'pg3'], file: '--limit', field: 'pg3', message: /matches no host that a play of .* runs on/ },
  { name: '--limit: a wildcard of a union matching nothing', extra: ['--limit', 'pg1,pgx*'], file: '--limit', field: 'pg1,pgx*', message: /matches no host or group .*: pgx\*/ },
  { name: '-e without =', extra: ['-e', 'novalue'], file: '-e', field: 'novalue', message: /expected key=value/ },
  { name: '-e with a bad variable name', extra: ['-e', '1x=2'], file: '-e', field: '1x', message: /not a valid variable name/ },
  { name: '-e invalid JSON', extra: ['-e', '{bad'], file: '-e', message: /invalid JSON/ },
  { name: 'unknown command', args: ['runn', 'x'], file: '', message: /unknown command 'runn'/ },
  // ---------------------------------------------------------------- variable files (-e @FILE)
  { name: '-e @file that does not exist', extra: ['-e', '@$D/missing.yaml'], file: 'missing.yaml', message: /cannot read YAML file: no such file/ },
  { name: '-e @file that is a list', files: { 'vars.yaml': '- a\n- b\n' }, extra: ['-e', '@$D/vars.yaml'], file: 'vars.yaml', line: 1, message: /must be a YAML mapping/ },
  { name: '-e @file with a YAML syntax error', files: { 'vars.yaml': 'a: 1\nb: [2\n' }, extra: ['-e', '@$D/vars.yaml'], file: 'vars.yaml', line: 3, message: /YAML syntax error/ },
  { name: '-e @file alias bomb', files: { 'vars.yaml': bomb('top: *a9\n') }, extra: ['-e', '@$D/vars.yaml'], file: 'vars.yaml', line: 6, message: /aliases expand to more than/ },
  { name: '-e @file binary', files: { 'vars.yaml': Buffer.from([0x61, 0x3a, 0x0a, 0x00, 0xff]) }, extra: ['-e', '@$D/vars.yaml'], file: 'vars.yaml', line: 2, message: /binary file/ },
  { name: '-e @file with a duplicated key', files: { 'vars.yaml': 'a: 1\na: 2\n' }, extra: ['-e', '@$D/vars.yaml'], file: 'vars.yaml', line: 2, message: /duplicated mapping key/ },
  // ---------------------------------------------------------------- inventories
  { name: 'inventory YAML syntax error', files: inv(HEAD + '    broken: [\n'), file: 'inv.yaml', line: 18, message: /YAML syntax error/ },
  { name: 'inventory that is a list', files: inv('- a\n- b\n'), file: 'inv.yaml', line: 1, message: /./ },
  { name: 'inventory: unknown group key', files: inv(HEAD + '    other:\n      hsts: { pg4: {} }\n'), file: 'inv.yaml', line: 18, field: 'other.hsts', message: /nrecognized key/ },
  { name: 'inventory: host vars that are not a mapping', files: inv(HEAD + '    other:\n      hosts:\n        pg4: 5\n'), file: 'inv.yaml', line: 19, field: 'other.hosts.pg4', message: /expected record/ },
  { name: 'inventory: ansible_port not a number', files: inv(HEAD.replace('pg1: { ansible_host: 127.0.0.1 }', 'pg1: { ansible_host: 127.0.0.1, ansible_port: seventy }')), file: 'inv.yaml', line: 12, field: 'pg1.ansible_port', message: /number/i },
  { name: 'inventory: ansible_port out of range', files: inv(HEAD.replace('pg1: { ansible_host: 127.0.0.1 }', 'pg1: { ansible_host: 127.0.0.1, ansible_port: 70000 }')), file: 'inv.yaml', line: 12, field: 'pg1.ansible_port', message: /65535/ },
  { name: 'inventory: empty ansible_user', files: inv(HEAD.replace('ansible_user: root', "ansible_user: ''")), file: 'inv.yaml', line: 12, field: 'pg1.ansible_user', message: /expected string to have >=1 characters/ },
  { name: "inventory: 'all' as a child group", files: inv(HEAD + '    other:\n      children:\n        all: {}\n'), file: 'inv.yaml', line: 19, field: 'all', message: /cannot be a child group/ },
  { name: 'inventory: a group cycle', files: inv('all:\n  children:\n    a:\n      hosts: { h1: {} }\n      children:\n        b:\n          children:\n            a: {}\n'), file: 'inv.yaml', message: /group cycle/ },
  { name: 'inventory: empty file', files: inv(''), file: 'inv.yaml', line: 1, message: /defines no host/ },
  { name: 'inventory: groups but no host', files: inv('all:\n  children:\n    postgres:\n      hosts: {}\n'), file: 'inv.yaml', line: 1, message: /defines no host/ },
  { name: 'inventory: duplicated key', files: inv(HEAD.replace('    pgpool:\n', '    postgres:\n      hosts: {}\n    pgpool:\n')), file: 'inv.yaml', line: 14, message: /duplicated mapping key/ },
  { name: 'inventory: two YAML documents', files: inv(HEAD + '---\nall: {}\n'), file: 'inv.yaml', line: 17, message: /single YAML document/ },
  { name: 'inventory: alias bomb', files: inv(bomb(HEAD.replace('pg1: { ansible_host: 127.0.0.1 }', 'pg1: { ansible_host: 127.0.0.1, bomb: *a9 }'))), file: 'inv.yaml', line: 6, message: /aliases expand to more than 100000 nodes/ },
  { name: 'inventory: binary file', files: inv(Buffer.concat([Buffer.from('all:\n  hosts:\n'), Buffer.from([0, 1, 2, 0xfe])])), file: 'inv.yaml', line: 3, message: /binary file/ },
  { name: 'inventory: 50 MB', files: inv('all:\n  hosts:\n' + '    # padding padding padding padding padding padding padding padding padding padding\n'.repeat(600_000)), file: 'inv.yaml', message: /is 49\.\d MB: pgtls reads YAML files up to 16 MB/ },
  { name: 'inventory file that does not exist', args: ['run', '$D/play.yaml', '-i', '$D/no-inventory.yaml'], file: 'no-inventory.yaml', message: /no such file/ },
  { name: 'inventory that is a directory', args: ['run', '$D/play.yaml', '-i', f('a-dir')], file: 'a-dir', message: /is a directory/ },
  { name: 'inventory: SSH key file that does not exist', files: inv(HEAD.replace(`ansible_ssh_private_key_file: ${f('id_key')}`, `ansible_ssh_private_key_file: ${f('no_key')}`)), file: 'inv.yaml', line: 5, field: 'ansible_ssh_private_key_file', message: /no_key: no such file \(the SSH key to log in with\) \(hosts pg1, pg2\)/ },
  { name: 'inventory: known_hosts file that does not exist', files: inv(HEAD.replace(`pgtls_known_hosts: ${f('known_hosts')}`, `pgtls_known_hosts: ${f('no_known_hosts')}`)), file: 'inv.yaml', line: 6, field: 'pgtls_known_hosts', message: /no_known_hosts: no such file/ },
  { name: 'inventory: a lookup of an unset environment variable', files: { ...inv(HEAD.replace('webadmin_password: pw', "webadmin_password: \"{{ lookup('env', 'PGTLS_BAD_INPUT_UNSET') }}\"")), ...task('    - lineinfile: { path: /etc/x, line: "{{ webadmin_password }}" }\n') }, file: 'play.yaml', line: 3, message: /PGTLS_BAD_INPUT_UNSET is not set/ },
  { name: 'inventory: CA directory under a regular file', files: { ...inv(HEAD.replace(`pgtls_ca_dir: ${f('ca')}`, `pgtls_ca_dir: ${f('a-file')}/ca`)) }, args: ['run', 'playbooks/install.yaml', '-i', '$D/inv.yaml'], file: 'install.yaml', field: 'gencert.ca_dir', message: /a-file\/ca is under .*a-file, which is a file/ },
  { name: 'reissue=ca-finish without a CA rotation', files: inv(HEAD.replace(`pgtls_ca_dir: ${f('ca')}`, `pgtls_ca_dir: ${f('ca-no-rotation')}`)), args: ['run', 'playbooks/reissue.yaml', '-i', '$D/inv.yaml', '-e', 'reissue=ca-finish'], file: 'reissue.yaml', field: 'ca_rotate.step', message: /no CA rotation in progress .*run reissue=ca first/ },
  { name: 'reissue=ca-finish before the new CA is published', files: inv(HEAD.replace(`pgtls_ca_dir: ${f('ca')}`, `pgtls_ca_dir: ${f('ca-unpublished')}`)), args: ['run', 'playbooks/reissue.yaml', '-i', '$D/inv.yaml', '-e', 'reissue=ca-finish'], file: 'reissue.yaml', field: 'ca_rotate.step', message: /not completed .*run reissue=ca again/ },
  { name: 'reissue=ca-finish without any CA', args: ['run', 'playbooks/reissue.yaml', '-i', '$D/inv.yaml', '-e', 'reissue=ca-finish'], file: 'reissue.yaml', field: 'ca_rotate.step', message: /no CA in .*check pgtls_ca_dir/ },
  { name: '-e pgtls_min_tls=TLSv1.9', args: ['run', 'playbooks/install.yaml', '-i', '$D/inv.yaml', '-e', 'pgtls_min_tls=TLSv1.9'], file: '-e', field: 'pgtls_min_tls', message: /must be TLSv1\.2 or TLSv1\.3 \(got 'TLSv1\.9'\)/ },
  { name: 'inventory pgtls_min_tls: TLSv1', files: inv(HEAD.replace('webadmin_password: pw', 'webadmin_password: pw\n    pgtls_min_tls: TLSv1')), args: ['run', 'playbooks/install.yaml', '-i', '$D/inv.yaml'], file: 'inv.yaml', field: 'pgtls_min_tls', message: /must be TLSv1\.2 or TLSv1\.3/ },
  { name: 'reissue=bogus', args: ['run', 'playbooks/reissue.yaml', '-i', '$D/inv.yaml', '-e', 'reissue=bogus'], file: 'reissue.yaml', field: 'gencert.force', message: /./ },
  // ---------------------------------------------------------------- playbooks
  { name: 'playbook YAML syntax error', files: play('- hosts: postgres\n  tasks:\n    - lineinfile: { path: /etc/x, line: a\n'), file: 'play.yaml', line: 4, message: /YAML syntax error/ },
  { name: 'playbook that is not a list', files: play('hosts: all\n'), file: 'play.yaml', line: 1, message: /list of plays/ },
  { name: 'playbook: empty file', files: play(''), file: 'play.yaml', message: /./ },
  { name: 'playbook: missing hosts', files: play('- name: p\n  tasks: []\n'), file: 'play.yaml', line: 1, field: 'hosts', message: /./ },
  { name: 'playbook: unknown play key', files: play('- hosts: all\n  taks: []\n'), file: 'play.yaml', line: 2, message: /taks/ },
  { name: 'playbook: a play on a group the inventory does not define', files: play('- hosts: postgress\n  tasks: []\n'), file: 'play.yaml', line: 1, field: 'hosts', message: /postgress is not a host or group .*did you mean 'postgres'/ },
  { name: 'playbook: a play on an undefined host in a list', files: play('- hosts: [pg1, pg7]\n  tasks: []\n'), file: 'play.yaml', line: 1, field: 'hosts', message: /pg7 is not a host or group/ },
  { name: 'playbook: unknown module with a suggestion', files: task('    - name: x\n      lineinfle: { path: /a, line: b }\n'), file: 'play.yaml', line: 4, message: /lineinfle.*did you mean 'lineinfile'/ },
  { name: 'playbook: two modules in one task', files: task('    - lineinfile: { path: /a, line: b }\n      shell: ls\n'), file: 'play.yaml', line: 3, message: /exactly one module/ },
  { name: 'playbook: bad argument type', files: task('    - lineinfile:\n        path: /a\n        line: b\n        create: maybe\n'), file: 'play.yaml', line: 6, field: 'create', message: /./ },
  { name: 'playbook: unknown argument', files: task('    - lineinfile:\n        path: /a\n        line: b\n        colour: red\n'), file: 'play.yaml', line: 6, message: /colour/ },
  { name: 'playbook: relative path', files: task('    - lineinfile:\n        path: etc/a\n        line: b\n'), file: 'play.yaml', line: 4, field: 'path', message: /absolute/ },
  { name: 'playbook: invalid regexp', files: task("    - lineinfile: { path: /a, regexp: '(unclosed', line: x }\n"), file: 'play.yaml', line: 3, message: /regexp/i },
  { name: 'playbook: invalid mode', files: task('    - lineinfile: { path: /a, line: x, mode: "999" }\n'), file: 'play.yaml', line: 3, field: 'mode', message: /./ },
  { name: 'playbook: undefined variable', files: task('    - lineinfile: { path: "{{ confdir }}/a", line: x }\n'), file: 'play.yaml', line: 3, message: /undefined variable 'confdir'.*hosts pg1, pg2/ },
  { name: 'playbook: bad when expression', files: task('    - lineinfile: { path: /a, line: x }\n      when: a ==\n'), file: 'play.yaml', line: 4, field: 'when', message: /./ },
  { name: 'playbook: notify without such handler', files: task('    - lineinfile: { path: /a, line: x }\n      notify: restart pg\n'), file: 'play.yaml', line: 4, message: /no handler named 'restart pg'/ },
  { name: 'playbook: serial neither number nor percentage', files: play('- hosts: postgres\n  serial: some\n  tasks: []\n'), file: 'play.yaml', line: 2, field: 'serial', message: /percentage/ },
  { name: 'playbook: become not a boolean', files: play('- hosts: postgres\n  become: sometimes\n  tasks: []\n'), file: 'play.yaml', line: 2, field: 'become', message: /./ },
  { name: 'playbook: import of a file that does not exist', files: play('- import_playbook: nothere.yaml\n'), file: 'nothere.yaml', message: /cannot read YAML file: no such file/ },
  { name: 'playbook: binary file', files: play('\0\0\0'), file: 'play.yaml', line: 1, message: /binary file/ },
  { name: 'playbook: alias bomb', files: play(bomb('- hosts: postgres\n  vars: { x: *a9 }\n  tasks: []\n').replace(/^a(\d): /gm, '# a$1\n- hosts: postgres\n  vars:\n    a$1: ')), file: 'play.yaml', message: /aliases expand to more than/ },
  { name: 'playbook file that does not exist', args: ['run', '$D/no-play.yaml', '-i', '$D/inv.yaml'], file: 'no-play.yaml', message: /no such file/ },
  { name: 'playbook: a gencert CA directory that is a file', files: task(`    - gencert: { keys_dir: /k, ca_dir: ${f('a-file')}, owner: postgres }\n`), file: 'play.yaml', line: 3, field: 'gencert.ca_dir', message: /a-file is a file, not a directory/ },
];

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const out: string[] = [];
  const err: string[] = [];
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((c: string | Uint8Array) => (out.push(String(c)), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => (err.push(String(c)), true)) as typeof process.stderr.write;
  const t0 = Date.now();
  try {
    const code = await main(args);
    return { code, stdout: out.join(''), stderr: err.join(''), ms: Date.now() - t0 };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}

let n = 0;
for (const c of cases) {
  test(`bad input: ${c.name}`, async () => {
    const sub = join(dir, `case-${n++}`);
    mkdirSync(sub);
    const files = { 'inv.yaml': HEAD, 'play.yaml': PLAY, ...c.files };
    for (const [name, body] of Object.entries(files)) writeFileSync(join(sub, name), body as string | Buffer);
    const args = (c.args ?? ['run', '$D/play.yaml', '-i', '$D/inv.yaml']).concat(c.extra ?? []).map((a) => a.replace('$D', sub));
    const r = await cli(args);
    const all = `${r.stdout}\n${r.stderr}`;
    assert.is(r.code, 2, `exit ${r.code}\n${all}`);
    assert.not.match(all, /internal error|\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
    assert.not.match(r.stdout, /PLAY|unreachable/, 'no connection');
    if (c.file === '') {
      assert.match(r.stderr, c.message);
      return;
    }
    assert.match(r.stderr, /no host was contacted/);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('  '));
    const fileRe = c.file.startsWith('-') || c.file === 'command line' ? esc(c.file) : `[^:]*${esc(c.file)}`;
    // a field is named by its full path (e.g. `[0].tasks[0].lineinfile.path`): the case gives its end
    const want = new RegExp(`^  ${fileRe}${c.line !== undefined ? `:${c.line}` : '(:\\d+)?'}: ${c.field !== undefined ? `(\\S*[.\\]])?${esc(c.field)}: ` : ''}`);
    const hit = lines.find((l) => want.test(l) && c.message.test(l));
    assert.ok(hit, `expected ${want} and ${c.message} in:\n${r.stderr}`);
  });
}

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test(`the catalogue has at least 50 cases (${cases.length})`, () => {
  assert.ok(cases.length >= 50);
});

test.run();
