/**
 * The package as a user gets it: `npm pack`, `npm i -g --prefix DIR` of the tarball, then the
 * installed command from a clean directory with an INI inventory and a vault-encrypted
 * group_vars/all.yml. No lab: nothing is contacted (--syntax-check, --list-hosts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './cli.js';

const work = mkdtempSync(join(tmpdir(), 'pgtls-pack-'));
const prefix = join(work, 'global');
const project = join(work, 'project');
mkdirSync(project);
const npm = (args: string[], cwd: string) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });

test('npm pack ships dist, playbooks, the example inventory, README, LICENSE and schemas', () => {
  // dist/ (and its bundle) is already built by `npm test`: --ignore-scripts skips the prepack rebuild.
  npm(['pack', '--ignore-scripts', '--pack-destination', work], ROOT);
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
  assert.ok(tarball, 'npm pack made no tarball');
  const files = execFileSync('tar', ['tzf', join(work, tarball!)], { encoding: 'utf8' }).split('\n');
  for (const f of ['package/dist/src/cli.js', 'package/dist/pgtls.mjs', 'package/bin/pgtls.js', 'package/playbooks/install.yaml', 'package/inventory.example.yaml', 'package/README.md', 'package/LICENSE', 'package/schemas/inventory.schema.json', 'package/schemas/playbook.schema.json'])
    assert.ok(files.includes(f), `${f} missing from the tarball`);
  assert.not.ok(files.some((f) => f.startsWith('package/dist/test/')), 'tests must not ship');
  assert.not.ok(files.some((f) => f.startsWith('package/src/') && !f.startsWith('package/src/remote/scripts/')), 'TypeScript sources must not ship');
  // the shell scripts pgtls runs on hosts are loaded at run time: they must ship
  assert.ok(files.includes('package/src/remote/scripts/commit.sh'), 'host scripts missing');
  // the registry is reachable; the cache is preferred so the install is quick
  npm(['i', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(work, tarball!)], work);
  assert.ok(existsSync(join(prefix, 'bin', 'pgtls')), 'no bin/pgtls after npm i -g');
});

function installed(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(join(prefix, 'bin', 'pgtls'), args, { cwd: project, encoding: 'utf8', env: { ...process.env, CI: 'true', NO_COLOR: '1', ...env }, timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('the installed pgtls --version prints the package version', () => {
  const r = installed(['--version']);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^pgtls \d+\.\d+\.\d+/);
});

test('installed: bin/pgtls starts the one-file bundle (dist/pgtls.mjs), not the compiled tree', () => {
  // Node's own module-loader trace names every module it loads
  const r = installed(['--version'], { NODE_DEBUG: 'esm' });
  assert.is(r.code, 0, r.err);
  assert.match(r.err, /dist\/pgtls\.mjs/);
  assert.not.match(r.err, /dist\/src\/cli\.js/);
});

test('installed: a shipped playbook by name, INI inventory, vault-encrypted group_vars/all.yml: --syntax-check and --list-hosts', () => {
  mkdirSync(join(project, 'group_vars'), { recursive: true });
  writeFileSync(join(project, 'inv.ini'), '[postgres]\ndb[1:2] ansible_host=192.0.2.10 pgtls_known_hosts=/dev/null\n\n[pgpool]\n\n[postgres:vars]\nansible_user=deploy\nansible_become=yes\n');
  writeFileSync(join(project, 'vault-pass'), 'correct horse\n');
  writeFileSync(join(project, 'group_vars', 'all.yml'), 'webadmin_password: s3cret-from-vault\n');
  // encrypted by the real ansible-vault (Debian package ansible)
  execFileSync('ansible-vault', ['encrypt', '--vault-password-file', 'vault-pass', 'group_vars/all.yml'], { cwd: project, stdio: 'pipe' });
  const check = installed(['run', 'install.yaml', '-i', 'inv.ini', '--syntax-check', '--vault-password-file', 'vault-pass']);
  assert.is(check.code, 0, check.err + check.out);
  assert.match(check.out, /syntax OK/);
  assert.not.match(check.out + check.err, /s3cret-from-vault/);
  const hosts = installed(['run', 'install', '-i', 'inv.ini', '--list-hosts'], { ANSIBLE_VAULT_PASSWORD_FILE: join(project, 'vault-pass') });
  assert.is(hosts.code, 0, hosts.err);
  assert.match(hosts.out, /hosts \(2\):\n\s+db1\n\s+db2/);
  // without the vault password: bad input naming the file, exit 2
  const locked = installed(['run', 'install.yaml', '-i', 'inv.ini', '--syntax-check']);
  assert.is(locked.code, 2);
  assert.match(locked.err, /group_vars\/all\.yml: is vault-encrypted/);
});

test('installed: every host script resolves from the installed package', () => {
  const mod = join(prefix, 'lib', 'node_modules', 'pgtls', 'dist', 'src', 'remote', 'scripts.js');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(mod)}); for (const n of m.ALL_SCRIPTS) console.log(m.scriptFile(n));`], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.ok(r.stdout.trim().split('\n').every((l) => l.startsWith(join(prefix, 'lib', 'node_modules', 'pgtls'))), r.stdout);
});

test('installed: pgtls playbooks lists every shipped playbook with a line', () => {
  const r = installed(['playbooks']);
  assert.is(r.code, 0, r.err);
  for (const p of ['install.yaml', 'uninstall.yaml', 'reissue.yaml']) assert.match(r.out, new RegExp(`^${p.replace('.', '\\.')}\\s+\\S`, 'm'));
});

test.after(() => rmSync(work, { recursive: true, force: true }));

test.run();
