import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPlaybook } from '../../src/config/playbook.js';
import { modules } from '../../src/modules/index.js';
import { splitFramed } from '../../src/modules/fetch-client-certs/module.js';
import { recordBase } from '../../src/remote/state.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

test("the executor's records are named in TypeScript exactly as the host's state script does", () => {
  for (const path of ['/etc/postgresql/15/main/pg_hba.conf', "/odd dir/it's.conf", '/etc/pgpool2/pool_passwd']) {
    const shell = execFileSync('sh', ['-c', 'printf %s "$1" | sha256sum | cut -c1-40', 'x', path]).toString().trim();
    assert.is(recordBase('/var/lib/pgtls/state', path), `/var/lib/pgtls/state/${shell}`);
  }
});

test('fetch_client_certs: framed output back into files (binary-safe, empty files too)', () => {
  const files = [Buffer.from('-----BEGIN CERTIFICATE-----\nx\n'), Buffer.from([0, 10, 13, 255]), Buffer.alloc(0)];
  const framed = Buffer.concat(files.flatMap((f) => [Buffer.from(`${f.length}\n`), f]));
  assert.equal(splitFramed(framed, 3), files);
  assert.throws(() => splitFramed(Buffer.from('garbage'), 1), /unexpected output/);
});

// The order of uninstall.yaml is its safety: a reload with ssl off under hostssl rules locks clients out,
// a Pgpool-II without TLS cannot reach backends that demand it, keys go only when nothing uses them.
test('uninstall.yaml: pg_hba before postgresql.conf, each reloaded and proven; Pgpool-II after PostgreSQL; keys last', () => {
  const book = loadPlaybook(join(ROOT, 'playbooks', 'uninstall.yaml'), modules);
  const steps = book.plays.flatMap((p) => p.tasks.map((t) => `${p.hosts}|${t.module}|${JSON.stringify(t.args)}`));
  const at = (re: RegExp) => {
    const i = steps.findIndex((s) => re.test(s));
    assert.ok(i >= 0, `no step ${re}`);
    return i;
  };
  const hba = at(/^postgres\|restore_originals\|.*pg_hba_file/);
  const conf = at(/^postgres\|restore_originals\|.*pg_config_file/);
  assert.ok(hba < conf);
  assert.is(steps[hba + 1]!.split('|')[1], 'restart');
  assert.is(steps[conf + 1]!.split('|')[1], 'restart');
  const pool = at(/^pgpool\|restore_originals\|.*exclude_under/);
  assert.ok(conf < pool && /^pgpool\|pgpool_restart/.test(steps[pool + 1]!) && /^pgpool\|login_check/.test(steps[pool + 2]!));
  assert.ok(at(/^postgres:pgpool\|restore_originals\|\{\}/) > pool);
  // standbys leave verify-full after pg_hba.conf accepts plain connections again, before ssl goes off
  const conninfo = at(/^postgres\|replication_tls\|.*"state":"original"/);
  assert.ok(hba < conninfo && conninfo < conf, 'primary_conninfo back between pg_hba.conf and postgresql.conf');
  // That play keeps tracking on: it only writes a file whose original is recorded (so none is recorded
  // anew), and the record of what pgtls left there must follow, or restore_originals would see a conflict.
  for (const p of book.plays.filter((p) => !p.tasks.every((t) => t.module === 'replication_tls')))
    assert.is(p.vars.pgtls_track_originals, false, `${p.name}: an uninstall records no originals`);
  assert.is(book.plays.find((p) => p.hosts === 'pgpool')!.serial, 1, 'one Pgpool-II node at a time');
});

// install.yaml: a standby demands verify-full only once every upstream serves TLS (the PostgreSQL play,
// pg_hba included, is over on every host), and the walsenders are checked after all standbys switched.
test('install.yaml: standbys switch to verify-full after the PostgreSQL play; walsenders checked after that', () => {
  const book = loadPlaybook(join(ROOT, 'playbooks', 'install.yaml'), modules);
  const playOf = (module: string) => book.plays.findIndex((p) => p.tasks.some((t) => t.module === module));
  const pg = playOf('pg_hba');
  const repl = playOf('replication_tls');
  const check = playOf('replication_check');
  assert.ok(pg >= 0 && pg < repl && repl < check, `plays: pg_hba ${pg}, replication_tls ${repl}, replication_check ${check}`);
  assert.is(book.plays[repl]!.tasks.length, 1, 'the standby play does nothing else');
});

test.run();
