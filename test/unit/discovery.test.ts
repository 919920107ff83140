// Discovery trusts the servers' own pid files; the process table is a hint. Fake process tables
// (the rows the host's discovery scripts print), with the cases that misled it on real labs:
// zombies, children orphaned by a restart, processes of other network namespaces.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chooseInitScript, excludedReason, mainCandidates, pidFileAlive, pidFromFile, type ProcRow } from '../../src/facts/discovery.js';
import { parseDiscovery as parsePg, postmastersOf } from '../../src/facts/postgres.js';
import { parseDiscovery as parsePool, parsePidFileAndInit } from '../../src/facts/pgpool.js';

const T = '\t';
/** A row as src/facts/postgres.ts's DISCOVER prints it. */
function pmRow(o: { pid: number; ppid?: number; state?: string; net?: string; pcomm?: string; cwd?: string; file?: number | null; title?: string }): string {
  const hasFile = o.file !== null;
  return ['pm', o.pid, o.ppid ?? 1, o.state ?? 'S', o.net ?? 'same', o.pcomm ?? 'bash', '/usr/lib/postgresql/15/bin/postgres', o.cwd ?? '/var/lib/pgsql/data', 'postgres', 'postgres',
    hasFile ? String(o.file ?? o.pid) : '', hasFile ? '5432' : '', hasFile ? '/var/run/postgresql' : '', '', hasFile ? '1' : '0', o.title ?? '/usr/lib/postgresql/15/bin/postgres -D /var/lib/pgsql/data'].join(T);
}

const pgCases: { name: string; rows: string[]; want: number[] }[] = [
  { name: 'one postmaster', rows: [pmRow({ pid: 127 })], want: [127] },
  { name: 'a zombie postmaster (its cwd unreadable, state Z) never counts', rows: [pmRow({ pid: 127 }), pmRow({ pid: 90, state: 'Z', cwd: '', file: null })], want: [127] },
  {
    name: 'a backend orphaned by a crash (parent init, same cwd, not the pid in postmaster.pid)',
    rows: [pmRow({ pid: 300, file: 127 }), pmRow({ pid: 301, file: 127, title: 'postgres: webadmin postgres [local] idle' })],
    want: [],
  },
  { name: 'an orphan next to the new postmaster', rows: [pmRow({ pid: 400 }), pmRow({ pid: 301, file: 400, title: 'postgres: checkpointer' })], want: [400] },
  { name: 'a postmaster of another network namespace (another lab host, a container)', rows: [pmRow({ pid: 127 }), pmRow({ pid: 555, net: 'other' })], want: [127] },
  { name: 'unknown namespace (no privileges to compare) still counts', rows: [pmRow({ pid: 127, net: 'unknown' })], want: [127] },
  { name: 'pid file unreadable: kept, so the caller says what is missing', rows: [pmRow({ pid: 127, cwd: '', file: null })], want: [127] },
  { name: 'a process gone while the table was read (no cwd, no pid file) next to the real postmaster', rows: [pmRow({ pid: 127 }), pmRow({ pid: 131, cwd: '', file: null })], want: [127] },
  { name: 'two real postmasters (two clusters) stay two', rows: [pmRow({ pid: 127, cwd: '/a' }), pmRow({ pid: 128, cwd: '/b' })], want: [127, 128] },
];
for (const c of pgCases) {
  test(`postgres: ${c.name}`, () => {
    const d = parsePg(['systemd=0', 'pg_ctlcluster=1', ...c.rows].join('\n'));
    assert.equal(postmastersOf(d.postmasters).map((p) => p.pid), c.want);
  });
}

test('postgres: the discovery row carries port, socket and data directory from postmaster.pid', () => {
  const d = parsePg(pmRow({ pid: 127 }));
  const p = d.postmasters[0]!;
  assert.is(p.port, 5432);
  assert.is(p.socketDir, '/var/run/postgresql');
  assert.is(p.dataDir, '/var/lib/pgsql/data');
  assert.is(pidFromFile(p.pidFile), 127);
});

/** A row as src/facts/pgpool.ts's DISCOVER prints it. */
function ppRow(o: { pid: number; ppid?: number; state?: string; net?: string; pcomm?: string; argv?: string[] }): string {
  return ['pp', o.pid, o.ppid ?? 1, o.state ?? 'S', o.net ?? 'same', o.pcomm ?? 'bash', 'postgres', '/var/lib/pgsql', '', '', '/etc/pgpool2/pgpool.conf',
    ...(o.argv ?? ['/usr/sbin/pgpool', '-f', '/etc/pgpool-II/pgpool.conf', '-n'])].join(T);
}

const poolCases: { name: string; rows: string[]; want: number[] }[] = [
  { name: 'main + children', rows: [ppRow({ pid: 102 }), ppRow({ pid: 111, ppid: 102, pcomm: 'pgpool', argv: ['pgpool: wait for connection request'] })], want: [102] },
  {
    name: 'a child orphaned by a restart (parent init, titled pgpool: …) is not a main process',
    rows: [ppRow({ pid: 6980 }), ppRow({ pid: 2903, ppid: 1, pcomm: 'bash', argv: ['pgpool: wait for connection request'] })],
    want: [6980],
  },
  { name: 'a zombie main process', rows: [ppRow({ pid: 6980 }), ppRow({ pid: 2903, state: 'Z', argv: [] })], want: [6980] },
  { name: 'another namespace', rows: [ppRow({ pid: 6980 }), ppRow({ pid: 2903, net: 'other' })], want: [6980] },
];
for (const c of poolCases) {
  test(`pgpool: ${c.name}`, () => {
    const d = parsePool(c.rows.join('\n'));
    assert.equal(mainCandidates(d.procs, 'pgpool').map((p) => p.pid), c.want);
  });
}

test('pgpool: the default config of a main without -f comes from its binary', () => {
  const d = parsePool(ppRow({ pid: 5, argv: ['/usr/sbin/pgpool', '-n'] }));
  assert.is(d.procs[0]!.defaultConf, '/etc/pgpool2/pgpool.conf');
});

test('excludedReason says why', () => {
  const base: ProcRow = { pid: 1, ppid: 0, state: 'S', net: 'same', parentComm: 'bash', argv: ['/usr/sbin/pgpool'] };
  assert.is(excludedReason(base, 'pgpool'), undefined);
  assert.is(excludedReason({ ...base, state: 'Z' }, 'pgpool'), 'zombie');
  assert.is(excludedReason({ ...base, net: 'other' }, 'pgpool'), 'another network namespace');
  assert.is(excludedReason({ ...base, parentComm: 'pgpool' }, 'pgpool'), 'child of a server process');
  assert.is(excludedReason({ ...base, argv: ['pgpool: worker process'] }, 'pgpool'), 'child process (by its title)');
  assert.is(excludedReason({ ...base, parentComm: 'postmaster' }, 'postgres'), 'child of a server process');
});

const pidRows: [string, { pid: number | null; comm: string; state: string }, boolean][] = [
  ['live pgpool', { pid: 102, comm: 'pgpool', state: 'S' }, true],
  ['stale pid file, pid reused by another program', { pid: 102, comm: 'bash', state: 'S' }, false],
  ['stale pid file, pid gone', { pid: 102, comm: '', state: '' }, false],
  ['zombie', { pid: 102, comm: 'pgpool', state: 'Z' }, false],
  ['no pid file', { pid: null, comm: '', state: '' }, false],
];
for (const [name, probe, want] of pidRows) test(`pid file: ${name}`, () => assert.is(pidFileAlive(probe, 'pgpool'), want));

test('pid file probe and init scripts parse', () => {
  const r = parsePidFileAndInit('pidfile 102 pgpool S\ninit none /etc/init.d/pgpool2\ninit file /etc/init.d/pgpool-II\n');
  assert.equal(r.probe, { pid: 102, comm: 'pgpool', state: 'S' });
  assert.equal(r.inits.map((i) => i.path), ['/etc/init.d/pgpool2', '/etc/init.d/pgpool-II']);
  assert.equal(parsePidFileAndInit('pidfile 7 - \n').probe, { pid: 7, comm: '', state: '' });
  assert.equal(parsePidFileAndInit('pidfile none\n').probe.pid, null);
  assert.is(pidFromFile('127\n/var/lib/pgsql/data\n'), 127);
  assert.is(pidFromFile(''), null);
  assert.is(pidFromFile('x\n'), null);
});

const initRows: { name: string; scripts: { path: string; mentions: 'file' | 'dir' | 'none' }[]; conf: string; want: string | undefined }[] = [
  { name: 'RHEL host with Debian leftovers: the script naming the config', scripts: [{ path: '/etc/init.d/pgpool2', mentions: 'none' }, { path: '/etc/init.d/pgpool-II', mentions: 'file' }], conf: '/etc/pgpool-II/pgpool.conf', want: '/etc/init.d/pgpool-II' },
  { name: 'Debian: the script named like the config directory', scripts: [{ path: '/etc/init.d/pgpool2', mentions: 'none' }, { path: '/etc/init.d/pgpool-II', mentions: 'none' }], conf: '/etc/pgpool2/pgpool.conf', want: '/etc/init.d/pgpool2' },
  { name: 'a script naming the directory only', scripts: [{ path: '/etc/init.d/pgpool2', mentions: 'none' }, { path: '/etc/init.d/pgpool', mentions: 'dir' }], conf: '/opt/pgpool/etc/pgpool.conf', want: '/etc/init.d/pgpool' },
  { name: 'the only script there is', scripts: [{ path: '/etc/init.d/pgpool2', mentions: 'none' }], conf: '/opt/pgpool/etc/pgpool.conf', want: '/etc/init.d/pgpool2' },
  { name: 'two unrelated scripts: no guess', scripts: [{ path: '/etc/init.d/pgpool-a', mentions: 'none' }, { path: '/etc/init.d/pgpool-b', mentions: 'none' }], conf: '/opt/x/pgpool.conf', want: undefined },
  { name: 'no script', scripts: [], conf: '/etc/pgpool2/pgpool.conf', want: undefined },
];
for (const r of initRows) test(`init script: ${r.name}`, () => assert.is(chooseInitScript(r.scripts, r.conf), r.want));

test.run();
