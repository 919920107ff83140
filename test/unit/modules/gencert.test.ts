// gencert against a fake host and a controller CA directory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecAction, LocalAction, WriteAction } from '../../../src/lib/plan-types.js';
import { loadOrCreateCa } from '../../../src/ca/ca.js';
import { controllerDir } from '../module-cases.js';
import { actions, parseArgs, planCase, planModule } from './plan.js';
import { modules } from '../../../src/modules/index.js';
import * as x509 from '../../../src/crypto/x509.js';
import { CaRun, caRunOf } from '../../../src/ca/ca-run.js';
import { MapRunState } from '../../../src/core/run-state.js';

/** This file's run: its CA cache and simulated rotations (one per run, never module-level in the product). */
const caRun = new CaRun();

const PROBE = 'openssl=1\nabsent /keys/server/server.key\nabsent /keys/client/client.key\nabsent /keys\nabsent /keys/server\nabsent /keys/client\n';

/** gencert planned with a fresh CA on the controller, on a host without keys or key directories (PROBE). */
async function planWithCa() {
  const dir = controllerDir();
  await loadOrCreateCa(caRun, { dir, commonName: 'test CA', days: 30, keyBits: 2048, create: true });
  const args = { keys_dir: '/keys', ca_dir: dir, owner: 'postgres', group: 'postgres', renew_before_days: 1, days: 10, client_days: 10 };
  return { args, ...(await planModule('gencert', args, { answers: [{ match: /pgtls-probe/, stdout: PROBE }] }, { vars: { ansible_host: '10.0.0.11' } })) };
}

test('no CA yet, keys made on the host: the host generates them first (replan), then the CA is created (replan); planning itself creates nothing', async () => {
  const { changes } = await planCase('gencert: no CA yet');
  // the host's keygen needs no CA (only the certificates do): it runs while the CA's key is still being made
  assert.equal(changes.filter((c) => c.replan).map((c) => c.summary.split(' ')[0]), ['issue', 'create']);
  const keygen = changes.findIndex((c) => c.replan);
  const create = changes.findIndex((c) => c.summary.startsWith('create the CA'));
  assert.equal(changes[keygen]!.actions.map((a) => a.kind), ['exec']);
  // nothing is written before the CA exists: a real run stops at the keygen and plans again
  assert.not.ok(actions(changes.slice(0, keygen + 1)).some((a) => a.kind === 'write'), 'no certificate before the CA exists');
  const ca = changes[create]!.actions[0] as LocalAction;
  assert.is(ca.kind, 'local');
  assert.not.ok(existsSync(join(ca.description.replace(/^create the CA in /, ''), 'ca.key')), 'plan() wrote nothing on the controller');
});

test('no CA yet, nothing written before the keygen: the key directories are made by the keygen\'s own command, which probes the keys after it', async () => {
  const { changes } = await planCase('gencert: no CA yet');
  const dirs = changes.find((c) => c.summary.startsWith('directories '))!;
  assert.ok(dirs, 'the directories are still a change of their own in the report');
  assert.equal(dirs.actions, [], 'their command went into the keygen\'s');
  const keygen = actions(changes).find((a): a is ExecAction => a.kind === 'exec' && /generate/.test(a.description))!;
  assert.match(keygen.description, /^create key directories, generate server and client key\(s\) on the host$/);
  // one command: the directories, then the keys (only if they were made), then the probe
  const t = keygen.cmd.text;
  const [d, k, p] = ['pgtls-key-dirs', 'pgtls-keygen', 'pgtls-probe '].map((w) => t.indexOf(w)) as [number, number, number];
  assert.ok(d >= 0 && k > d && p > k, `order in: ${t.slice(0, 80)}`);
  assert.ok(actions(changes).every((a) => a.kind !== 'exec' || a === keygen), 'no other command');
});

test('with the CA and a root.crt to write: the keygen (with the directories) first, the writes after it (planned again, committed with the certificates)', async () => {
  const { changes } = await planWithCa();
  const execs = actions(changes).filter((a): a is ExecAction => a.kind === 'exec');
  assert.equal(execs.map((e) => e.description), ['create key directories, generate server and client key(s) on the host']);
  const cut = changes.findIndex((c) => c.replan);
  assert.not.ok(actions(changes.slice(0, cut + 1)).some((a) => a.kind === 'write'), 'nothing written before the keygen (a real run stops there)');
  assert.ok(actions(changes.slice(cut + 1)).some((a) => a.kind === 'write' && a.path === '/keys/server/root.crt'), '--check still shows root.crt');
});

test('planned again after the keygen: the probe it printed is used, the host is not asked again', async () => {
  const { changes, ctx, args } = await planWithCa();
  const keygen = actions(changes).find((a): a is ExecAction => a.kind === 'exec' && /generate/.test(a.description))!;
  const csr = (name: string) => {
    const { createCsr, generateKeyPair } = x509;
    return generateKeyPair(2048).then(({ keyPem }) => `new ${name} /keys/${name}/.pgtls-tmp.k\n${createCsr({ keyPem, commonName: 'x' })}`);
  };
  const after = 'openssl=1\nabsent /keys/server/server.key\nabsent /keys/client/client.key\nstat 750 root postgres /keys\nstat 750 root postgres /keys/server\nstat 750 root postgres /keys/client\n';
  const printed = Buffer.from(`${await csr('server')}${await csr('client')}pgtls-probe-after\n${after}pgtls-probe-end\n`);
  let asked = 0;
  const again = await modules.get('gencert')!.plan(
    { ...ctx, output: (n) => (n === keygen.output ? printed : undefined), query: (c, o) => (asked++, ctx.query(c, o)) },
    parseArgs('gencert', args),
  );
  assert.is(asked, 0, 'no probe asked');
  assert.not.ok(again.some((c) => c.summary.startsWith('directories ')), 'the directories the keygen made are not made again');
  assert.equal(actions(again).filter((a) => a.kind === 'rename').map((a) => a.path), ['/keys/server/server.key', '/keys/client/client.key']);
  // a probe that did not end (it failed after the keygen worked): asked again
  const cut = Buffer.from(printed.toString('utf8').replace('pgtls-probe-end\n', ''));
  await modules.get('gencert')!.plan({ ...ctx, output: (n) => (n === keygen.output ? cut : undefined), query: (c, o) => (asked++, ctx.query(c, o)) }, parseArgs('gencert', args));
  assert.is(asked, 1, 'an unfinished probe is asked again');
});

test('no CA yet, keys made on the controller: the CA is created first (replan); what follows are stand-ins', async () => {
  const dir = join(controllerDir(), 'new-ca');
  const { changes } = await planModule(
    'gencert',
    { keys_dir: '/keys', ca_dir: dir, owner: 'postgres', group: 'postgres', keygen: 'controller', ca_key_bits: 2048 },
    { answers: [{ match: /pgtls-probe/, stdout: PROBE }] },
    { vars: { ansible_host: '10.0.0.11' } },
  );
  assert.ok(changes[0]!.replan);
  assert.match(changes[0]!.summary, /^create the CA in /);
  // stand-ins for --check's overlay: a real run plans again once the CA exists
  assert.ok(changes.slice(1).some((c) => /^issue server certificate CN=pg1/.test(c.summary)));
  assert.not.ok(existsSync(join(dir, 'ca.key')));
});

test('with a CA: key directories, root.crt, and a host keygen whose outputs are written when applied', async () => {
  const { changes } = await planWithCa();
  // the CA exists: the only change that waits is the keygen (planned again with the CSRs it prints)
  assert.equal(changes.filter((c) => c.replan).map((c) => c.summary.split(' ')[0]), ['issue']);
  const all = actions(changes);
  const roots = all.filter((a): a is WriteAction => a.kind === 'write' && a.path.endsWith('root.crt'));
  assert.equal(roots.map((r) => r.path), ['/keys/server/root.crt', '/keys/client/root.crt']);
  const keygen = all.find((a): a is ExecAction => a.kind === 'exec' && /generate/.test(a.description))!;
  assert.equal(keygen.writesWhenApplied, ['/keys/server/server.crt', '/keys/server/server.key', '/keys/client/client.crt', '/keys/client/client.key']);
  assert.is(keygen.output, 'gencert.csrs', 'the CSRs the host prints are signed in the next planning round');
});

test('no openssl on the host with keygen: host: the task fails, naming the fix', async () => {
  const dir = controllerDir();
  try {
    await planModule('gencert', { keys_dir: '/keys', ca_dir: dir, owner: 'postgres' }, { answers: [{ match: /pgtls-probe/, stdout: 'absent /keys\n' }] });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /openssl is not installed .* pgtls_keygen: controller/);
  }
});

test.run();
