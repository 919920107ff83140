import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { pgtls, type CliRun, type JsonReport } from './cli.js';
import { labAvailable, labUnavailableReason, labUp, type Lab, haveLab } from './lab.js';
import { writeRemoteFile, sha256Hex } from '../../src/remote/files.js';
import { HostShell } from '../../src/remote/host-shell.js';
import { lockHost, unlockHost } from '../../src/remote/lock.js';
import { SshTransport } from '../../src/remote/ssh.js';
import { RecordSigner } from '../../src/remote/state.js';

// A hostile database user, end to end (issue 9): while install.yaml, reissue.yaml (reissue=server)
// and uninstall.yaml run, a process running as postgres on each host watches every directory that
// user owns and swaps each new file and directory for a link to a root-owned canary file or
// directory; on pg2 its keys directory is planted as a link from the start. Afterwards no canary
// changed owner, mode or content, and every swap the attacker won ended in a refused operation.
// Then (issue 10): the SSH connection is destroyed while a file's content is in flight, 20 times:
// the file is never empty or partial, and the next run cleans what the cut ones left.

mkdirSync('/var/tmp', { recursive: true });
const work = mkdtempSync('/var/tmp/pgtls-e2e-hostile-');
const HOSTS = ['pg1', 'pg2'];
const KEYS = '/var/lib/jelastic/keys/SSL-TLS';
let lab: Lab;
let inventory: string;
let n = 0;
const runPb = (book: string, extra: string[] = []): Promise<CliRun> =>
  pgtls(['run', `playbooks/${book}`, '-i', inventory, ...extra], { json: join(work, `r${++n}.json`) });
const ok = (r: CliRun) => `exit ${r.code}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`;

// The attacker: polls (no inotify here) every directory postgres owns below these roots, and
// replaces each entry that appears with a link to the canary (files) or canary-dir (directories).
// Inside the data directory only pgtls's own names are touched (swapping PostgreSQL's WAL would
// only break the attacker's own server, and prove nothing).
const WATCHER = String.raw`
import os, sys, json, time, signal, stat
roots, canary, canary_dir, out, datadir = sys.argv[1].split(':'), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
uid = os.getuid()
seen = {}
stats = {'attempted': 0, 'won': 0, 'wins': []}
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
def dirs():
    found = []
    for r in roots:
        for top, subdirs, _ in os.walk(r, followlinks=False):
            if top.startswith(datadir + '/'):
                subdirs[:] = []
                continue
            try:
                if os.lstat(top).st_uid == uid: found.append(top)
            except OSError:
                pass
    return found
def swap(path, is_dir):
    stats['attempted'] += 1
    tmp = os.path.join(os.path.dirname(path), '.attacker-%d' % stats['attempted'])
    try:
        if is_dir:
            os.rename(path, tmp + '.taken')
            os.symlink(canary_dir, path)
        else:
            os.symlink(canary, tmp)
            os.rename(tmp, path)
        stats['won'] += 1
        stats['wins'].append(path)
    except OSError:
        try: os.unlink(tmp)
        except OSError: pass
watched = dirs()
for d in watched:
    try: seen[d] = set(os.listdir(d))
    except OSError: seen[d] = set()
with open(out + '.pid', 'w') as f: f.write(str(os.getpid()))  # up: the next new entry is seen
last = time.time()
while not stop:
    if time.time() - last > 0.5:
        for d in dirs():
            if d not in seen:
                seen[d] = set()
                watched.append(d)
        last = time.time()
    for d in watched:
        try: names = set(os.listdir(d))
        except OSError: continue
        for name in names - seen[d]:
            if name.startswith('.attacker-'): continue
            if d == datadir and 'pgtls' not in name: continue
            p = os.path.join(d, name)
            try: st = os.lstat(p)
            except OSError: continue
            if stat.S_ISLNK(st.st_mode): continue
            swap(p, stat.S_ISDIR(st.st_mode))
        try: seen[d] = set(os.listdir(d))
        except OSError: pass
with open(out, 'w') as f: json.dump(stats, f)
`;

const CANARY = '/root/pgtls-canary';
const CANARY_DIR = '/root/pgtls-canary-dir';
const canaries = (h: string) =>
  lab.exec(h, `stat -c '%a %U %G %n' ${CANARY} ${CANARY_DIR} ${CANARY_DIR}/* && sha256sum ${CANARY} ${CANARY_DIR}/* && ls -A ${CANARY_DIR}`).then((r) => r.stdout);

test('lab: pg1 primary, pg2 primary, a canary on each, the keys directory planted on pg2', async () => {
  if (!labAvailable()) {
    if (process.env.CI === 'true') assert.unreachable(`the lab is needed: ${labUnavailableReason()}`);
    console.log(`skipping hostile e2e: ${labUnavailableReason()}`);
    return;
  }
  lab = await labUp({ hosts: 2, postgres: HOSTS, dir: join(work, 'lab') });
  const inv = load(readFileSync(lab.inventoryPath, 'utf8')) as { all: { vars: Record<string, unknown>; children: Record<string, unknown> } };
  inv.all.vars['pgtls_ca_dir'] = join(work, 'ca');
  delete inv.all.children['lab'];
  // no Pgpool-II here: the lab's inventory keeps the pgpool group, empty (a play on an undefined group is bad input)
  inventory = join(work, 'inventory.yaml');
  writeFileSync(inventory, dump(inv));
  for (const h of HOSTS) {
    const r = await lab.exec(h, `set -e; umask 077; echo "root only" > ${CANARY}; mkdir -p ${CANARY_DIR}; echo inside > ${CANARY_DIR}/file; command -v python3`);
    assert.is(r.code, 0, r.stderr);
    const w = await lab.exec(h, `umask 022; cat > /var/tmp/pgtls-watcher.py && python3 -m py_compile /var/tmp/pgtls-watcher.py`, { input: WATCHER });
    assert.is(w.code, 0, w.stderr);
  }
  // pg2: postgres planted its keys directory as a link to root's directory before pgtls ever ran
  const plant = await lab.exec('pg2', `mkdir -p $(dirname ${KEYS}) && ln -s ${CANARY_DIR} ${KEYS} && chown -h postgres: ${KEYS} && ls -l ${KEYS}`);
  assert.is(plant.code, 0, plant.stderr);
});

const before: Record<string, string> = {};

/** Stops the watcher of `h` (by the pid it wrote) and waits for its counters. */
async function stopWatcher(h: string): Promise<void> {
  await lab.exec(h, `p=$(cat /var/tmp/w/${h}.json.pid 2>/dev/null) || exit 0; kill -TERM "$p" 2>/dev/null; for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; rm -f /var/tmp/w/${h}.json.pid`);
}
const reports: JsonReport[] = [];

test('install, reissue=server and uninstall under attack: no canary changes, every won swap is refused', async () => {
  if (!haveLab(lab)) return;
  for (const h of HOSTS) before[h] = await canaries(h);
  for (const h of HOSTS) assert.is((await lab.exec(h, 'mkdir -p -m 777 /var/tmp/w')).code, 0);
  const data = '/var/lib/postgresql/15/main';
  for (const h of HOSTS) {
    const start = await lab.exec(
      h,
      `setsid runuser -u postgres -- python3 /var/tmp/pgtls-watcher.py /etc/postgresql:/var/lib/postgresql:/var/lib/jelastic:/var/lib/pgtls ${CANARY} ${CANARY_DIR} /var/tmp/w/${h}.json ${data} </dev/null >/var/tmp/w/log 2>&1 &`,
    );
    assert.is(start.code, 0, start.stderr);
  }
  // the watchers are up and polling (they write their counters when stopped)
  for (const h of HOSTS) {
    let alive = '';
    for (let i = 0; i < 100 && !alive; i++) {
      alive = (await lab.exec(h, `[ -s /var/tmp/w/${h}.json.pid ] && kill -0 $(cat /var/tmp/w/${h}.json.pid) && echo up`)).stdout.trim();
      if (!alive) await new Promise((r) => setTimeout(r, 100));
    }
    assert.is(alive, 'up', (await lab.exec(h, 'cat /var/tmp/w/log')).stdout);
  }
  await new Promise((r) => setTimeout(r, 1000));
  for (const h of HOSTS) assert.is((await lab.exec(h, `kill -0 $(cat /var/tmp/w/${h}.json.pid) && echo up`)).stdout.trim(), 'up', `${h}: the watcher died: ${(await lab.exec(h, 'cat /var/tmp/w/log')).stdout}`);
  const runs: [string, string[]][] = [
    ['install.yaml', []],
    ['reissue.yaml', ['-e', 'reissue=server']],
    ['uninstall.yaml', []],
  ];
  const outputs: string[] = [];
  for (const [book, extra] of runs) {
    const r = await runPb(book, extra);
    outputs.push(`${book}: ${ok(r)}`);
    console.log(`  ${book}: exit ${r.code}; ${Object.entries(r.report?.hosts ?? {}).map(([h, x]) => `${h} ${x.status}${x.message ? ` (${x.message.slice(0, 160)})` : ''}`).join('; ')}`);
    if (r.report) reports.push(r.report);
    else assert.unreachable(`${book} wrote no report: ${ok(r)}`);
  }
  const stats: Record<string, { attempted: number; won: number; wins: string[] }> = {};
  for (const h of HOSTS) {
    await stopWatcher(h);
    const j = await lab.exec(h, `cat /var/tmp/w/${h}.json`);
    assert.is(j.code, 0, `${h}: the watcher wrote no counters: ${(await lab.exec(h, 'cat /var/tmp/w/log')).stdout}`);
    stats[h] = JSON.parse(j.stdout);
  }
  for (const h of HOSTS) assert.is(await canaries(h), before[h], `${h}: no canary changed owner, mode or content`);
  // pg2's planted keys directory: gencert refused it, naming the link
  const pg2 = reports[0]!.hosts['pg2']!;
  assert.is(pg2.status, 'failed');
  assert.match(pg2.message ?? '', /refusing \/var\/lib\/jelastic\/keys\/SSL-TLS: a symbolic link owned by postgres/);
  // every swap the attacker won ended in a refused operation on that host
  const refused = (h: string) =>
    reports.flatMap((r) => r.hosts[h]?.tasks ?? []).filter((t) => t.status === 'failed' && /pgtls: |Operation not permitted|Permission denied|refus/.test(t.error ?? ''));
  for (const h of HOSTS) {
    const s = stats[h]!;
    console.log(`  ${h}: attacker swaps attempted ${s.attempted}, won ${s.won} (${s.wins.join(', ')}); refused operations ${refused(h).length}`);
    if (s.won > 0) assert.ok(refused(h).length > 0, `${h}: ${s.won} swaps won, but no operation was refused\n${outputs.join('\n')}`);
  }
  assert.ok(HOSTS.reduce((a, h) => a + stats[h]!.attempted, 0) > 0, 'the attacker saw and tried to swap new entries');
  // no root-written file anywhere the attacker pointed: nothing in the canary directory but its file
  for (const h of HOSTS) assert.is((await lab.exec(h, `ls -A ${CANARY_DIR}`)).stdout.trim(), 'file');
});

test('the SSH connection destroyed while a file is in flight, 20 times: never an empty or partial file', async () => {
  if (!haveLab(lab)) return;
  for (const h of HOSTS) await stopWatcher(h); // (when the test before failed half way)
  const file = '/var/lib/postgresql/pgtls-cut-test.conf'; // in a directory postgres owns
  const old = Buffer.from('# before\n'.repeat(1000));
  const neu = Buffer.from('# the new content pgtls sends\n'.repeat(150_000)); // 4.3 MB: many SSH windows
  await lab.exec('pg1', `cat > ${file} && chown postgres: ${file}`, { input: old.toString() });
  const hash = async () => (await lab.exec('pg1', `sha256sum < ${file} | cut -c1-64`)).stdout.trim();
  assert.is(await hash(), sha256Hex(old));
  const state = { dir: '/var/lib/pgtls/state', track: true, signer: new RecordSigner('pg1', Buffer.alloc(32, 3)) };
  const connect = () =>
    SshTransport.connect({ name: 'pg1', host: lab.ip('pg1'), port: 22, user: lab.user, privateKeyFile: lab.keyPath, knownHostsFile: lab.knownHostsPath, connectTimeoutMs: 20_000 });
  let cut = 0;
  let installed = 0;
  for (let i = 0; i < 20; i++) {
    const t = await connect();
    const shell = new HostShell(t, lab.user, lab.user !== 'root');
    const runId = `cut-${i}-${Date.now().toString(36)}`;
    await lockHost(shell, state.dir, runId, 'hostile-test'); // takes over the lock the previous, cut, run left
    const timer = setTimeout(() => t.destroy(), 5 + Math.floor(Math.random() * 120));
    try {
      await writeRemoteFile(shell, file, neu, { runId, state });
      installed++;
    } catch {
      cut++;
    }
    clearTimeout(timer);
    t.destroy();
    const now = await hash();
    assert.ok(now === sha256Hex(old) || now === sha256Hex(neu), `cut ${i}: the file is either as before or complete (sha ${now})`);
    if (now === sha256Hex(neu)) {
      // put the old content back for the next round (as a later run would converge)
      await lab.exec('pg1', `cat > ${file}`, { input: old.toString() });
    }
  }
  console.log(`  connection cuts in flight: ${cut} refused/cut, ${installed} completed before the cut`);
  assert.ok(cut >= 10, `most cuts land while the content is in flight (${cut} of 20)`);
  // the next run takes over the stale lock and removes every leftover of the cut runs
  const t = await connect();
  const shell = new HostShell(t, lab.user, lab.user !== 'root');
  await lockHost(shell, state.dir, 'after-cuts', 'hostile-test');
  await unlockHost(shell, state.dir, 'after-cuts');
  await t.close();
  const left = await lab.exec('pg1', `ls -A /var/lib/postgresql | grep 'pgtls-tmp\\|pgtls-rb'; ls -A ${state.dir} | grep '^\\.in\\.'; ls -A ${state.dir}/runs 2>/dev/null`);
  assert.is(left.stdout.trim(), '', 'no temp file, rollback copy or journal left');
});

// teardown, not a test: it is not counted (a test must be able to fail)
test.after(async () => {
  if (lab && process.env['LAB_KEEP'] !== '1') await lab.down();
});

test.run();
