// The lab itself: real hosts (namespaces) with sshd, PostgreSQL primary + streaming standby and Pgpool-II,
// checked from the outside with the real OpenSSH client and psql.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { labAvailable, labDown, labUnavailableReason, labUp, run, type Lab } from './lab.js';

let lab: Lab | undefined;

function up(): Lab {
  if (!lab) throw new Error('lab is not up (see the first test)');
  return lab;
}

/** psql from the root namespace (TCP through the lab bridge); password via the environment. */
function psql(conninfo: string, password: string, sql: string) {
  return run('psql', ['-X', '-Atq', '-v', 'ON_ERROR_STOP=1', conninfo, '-c', sql], {
    env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '5' },
    timeoutMs: 30_000,
  });
}

async function eventually<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  let last: T | undefined;
  let lastErr: unknown;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (ok(last)) return last;
    } catch (e) {
      lastErr = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: still not true after ${ms} ms (last: ${JSON.stringify(last)} ${String(lastErr ?? '')})`);
}

if (!labAvailable()) {
  console.log(`  lab.test: SKIPPED: ${labUnavailableReason()}`);
} else {
  // Not in test.before(): uvu 0.5 swallows exceptions thrown there.
  test('lab up: 3 hosts, postgres on pg1+pg2 (pg2 standby of pg1), pgpool on pg3', async () => {
    const t0 = Date.now();
    lab = await labUp({ hosts: 3, postgres: ['pg1', 'pg2'], standby: { pg2: 'pg1' }, pgpool: { pg3: ['pg1', 'pg2'] } });
    console.log(`  (lab up in ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    const net = `10.231.${lab.slot}`;
    assert.equal(lab.hosts.map((h) => `${h.name}=${h.ip}`), [`pg1=${net}.11`, `pg2=${net}.12`, `pg3=${net}.13`]);
  });

  test('ssh (OpenSSH, strict host key checking): each host answers with its own hostname', async () => {
    const l = up();
    const res = await Promise.all(l.hosts.map((h) => l.ssh(h.name, 'hostname; hostname -f; echo "$SSH_CONNECTION"')));
    res.forEach((r, i) => {
      const h = l.hosts[i]!;
      assert.is(r.code, 0, r.stderr);
      const [short, fqdn, conn] = r.stdout.trim().split('\n');
      assert.is(short, h.name);
      assert.is(fqdn, `${h.name}.lab.internal`);
      assert.ok(conn?.endsWith(`${h.ip} 22`), conn);
    });
  });

  test('psql from the root namespace to pg1 as webadmin, sslmode=disable (md5)', async () => {
    const l = up();
    const r = await psql(
      `host=${l.ip('pg1')} port=5432 user=webadmin dbname=postgres sslmode=disable`,
      l.passwords.webadmin,
      'select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()',
    );
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout.trim(), 'webadmin|f');
    // md5 era: md5-hashed passwords, md5 hba rules, ssl off
    assert.is(await l.sql('pg1', "select rolpassword like 'md5%' from pg_authid where rolname = 'webadmin'"), 't');
    assert.is(await l.sql('pg1', 'show ssl'), 'off');
    assert.ok((await l.sql('pg1', "select count(*) from pg_hba_file_rules where auth_method = 'md5'")) !== '0');
    // the other roles work too, including a password with quotes, colon and spaces
    const app = await psql(
      `host=${l.ip('pg1')} user=appuser dbname=appdb sslmode=disable`,
      l.passwords.app,
      'select current_user',
    );
    assert.is(app.stdout.trim(), 'appuser', app.stderr);
  });

  test('pg2 streams from pg1', async () => {
    const l = up();
    await eventually(
      'pg_stat_replication on pg1 shows pg2 streaming',
      () => l.sql('pg1', "select application_name || ':' || state || ':' || host(client_addr) from pg_stat_replication"),
      (v) => v.split('\n').includes(`pg2:streaming:${l.ip('pg2')}`),
    );
    assert.is(await l.sql('pg2', 'select pg_is_in_recovery()'), 't');
    assert.is(await l.sql('pg1', 'select pg_is_in_recovery()'), 'f');
    // a write on the primary shows up on the standby
    await l.sql('pg1', 'create table lab_probe(x int); insert into lab_probe values (42)');
    await eventually('row replicated to pg2', () => l.sql('pg2', 'select x from lab_probe').catch(() => ''), (v) => v === '42');
  });

  test('pgpool on pg3:9999 answers show pool_nodes (webadmin, sslmode=disable)', async () => {
    const l = up();
    const r = await psql(
      `host=${l.ip('pg3')} port=9999 user=webadmin dbname=postgres sslmode=disable`,
      l.passwords.webadmin,
      'show pool_nodes',
    );
    assert.is(r.code, 0, r.stderr);
    const rows = r.stdout.trim().split('\n').map((line) => line.split('|'));
    assert.is(rows.length, 2, r.stdout);
    assert.equal(rows.map((c) => `${c[1]}:${c[2]}:${c[6]}`), [
      `${l.ip('pg1')}:5432:primary`,
      `${l.ip('pg2')}:5432:standby`,
    ]);
    // pre-TLS pool_passwd: only the pgpool user's AES entry
    const pp = await l.exec('pg3', 'cat /etc/pgpool2/pool_passwd; stat -c %a:%U /var/lib/postgresql/.pgpoolkey');
    assert.match(pp.stdout, /^pgpool:AES[A-Za-z0-9+/=]+\n600:postgres\n$/);
  });

  test('hosts are separate machines: own /etc, own process table, own /root', async () => {
    const l = up();
    const [p1, p3] = await Promise.all([
      l.exec('pg1', 'ls /etc/postgresql; pgrep -c pgpool || true; readlink /proc/1/exe; cat /etc/hostname'),
      l.exec('pg3', 'ls /etc/postgresql; pgrep -c pgpool >/dev/null && echo pgpool; cat /etc/hostname; ls -A /root'),
    ]);
    assert.is(p1.stdout, '15\n0\n/usr/bin/bash\npg1\n', p1.stderr);
    assert.is(p3.stdout, 'pgpool\npg3\n.bashrc\n.profile\n.ssh\n', p3.stderr);
  });

  test('exec: exit codes and stdin', async () => {
    const l = up();
    assert.is((await l.exec('pg2', 'exit 7')).code, 7);
    const r = await l.exec('pg2', 'cat; hostname', { input: 'hello\n' });
    assert.is(r.stdout, 'hello\npg2\n');
  });

  test('sha256Tree: every file, stable, sees a one-byte change', async () => {
    const l = up();
    const a = await l.sha256Tree('pg1', ['/etc/postgresql', '/nonexistent']);
    assert.ok(a['/etc/postgresql/15/main/postgresql.conf']?.match(/^[0-9a-f]{64}$/), JSON.stringify(a));
    assert.ok(a['/etc/postgresql/15/main/pg_hba.conf']);
    assert.equal(await l.sha256Tree('pg1', ['/etc/postgresql']), a);
    await l.exec('pg1', 'echo "# x" >> /etc/postgresql/15/main/pg_ident.conf');
    const b = await l.sha256Tree('pg1', ['/etc/postgresql']);
    const changed = Object.keys(b).filter((k) => b[k] !== a[k]);
    assert.equal(changed, ['/etc/postgresql/15/main/pg_ident.conf']);
  });

  test('lab down leaves no namespace, bridge or process behind', async () => {
    const l = up();
    await l.down();
    lab = undefined;
    // (other labs may be up on this machine: look at this lab's slot only)
    const nsPrefix = l.slot === 0 ? 'pgtls-' : `pgtls${l.slot}-`;
    const ns = await run('ip', ['netns', 'list']);
    assert.not.ok(ns.stdout.split('\n').some((line) => line.startsWith(nsPrefix)), ns.stdout);
    const br = await run('ip', ['link', 'show', `pgtlsbr${l.slot}`]);
    assert.is.not(br.code, 0);
    // every process of a host lives in its PID namespace, whose PID 1 is "lab.sh __init DIR ...": none may be left
    const ps = await run('ps', ['-eo', 'stat=,args=']);
    const left = ps.stdout.split('\n').filter((line) => !line.startsWith('Z') && line.includes(`lab.sh __init ${l.dir} `));
    assert.equal(left, []);
    assert.not.ok(existsSync(`/run/pgtls-lab/slot.${l.slot}`) && readFileSync(`/run/pgtls-lab/slot.${l.slot}`, 'utf8').startsWith(`${l.dir}\n`));
  });

  test.after(async () => {
    if (lab) await labDown(lab.dir).catch((e: unknown) => console.error(e));
  });
}

test.run();
