// A run never changes some backends of a Pgpool-II node and not the others (src/core/pgpool-backends.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { authChangeBlocked, leaveOutWith, resolveBackends, siblingBackends, splitNodes, strandedNodes, type PgpoolNode } from '../../src/core/pgpool-backends.js';
import { StepBarrier } from '../../src/core/step-barrier.js';
import { backendHosts } from '../../src/facts/pgpool.js';

const names = new Map<string, string[]>([
  ['pg1', ['pg1', '10.0.0.11', 'pg1.lab.internal']],
  ['pg2', ['pg2', '10.0.0.12']],
  ['pg3', ['pg3', '10.0.0.13']],
  ['pg4', ['pg4', '10.0.0.14']],
  ['pg5', ['pg5', '10.0.0.15']],
]);

test('backend_hostnameN of pgpool.conf, in N order, commented ones ignored, last line wins', () => {
  const conf = "backend_hostname1 = '10.0.0.12'\n#backend_hostname2 = 'x'\nbackend_hostname0 = 'old'\nbackend_hostname0 = 'PG1.lab.internal'\n";
  assert.equal(backendHosts(conf), ['PG1.lab.internal', '10.0.0.12']);
  assert.equal(resolveBackends(backendHosts(conf), names), ['pg1', 'pg2']);
  assert.equal(resolveBackends(['db.elsewhere'], names), [], 'a backend outside the inventory is not ours to change');
});

const nodes: PgpoolNode[] = [
  { host: 'pg3', backends: ['pg1', 'pg2'] },
  { host: 'pg5', backends: ['pg4'] },
];
const rows: { name: string; run: string[]; want: { node: string; included: string[]; missing: string[] }[] }[] = [
  { name: 'everything', run: ['pg1', 'pg2', 'pg3', 'pg4', 'pg5'], want: [] },
  { name: '--limit pg1: half of pg3 backends', run: ['pg1'], want: [{ node: 'pg3', included: ['pg1'], missing: ['pg2'] }] },
  { name: '--limit pg3,pg1 (the issue)', run: ['pg3', 'pg1'], want: [{ node: 'pg3', included: ['pg1'], missing: ['pg2'] }] },
  { name: '--limit pg1,pg2: all backends', run: ['pg1', 'pg2'], want: [] },
  { name: '--limit pgpool only', run: ['pg3', 'pg5'], want: [] },
  { name: 'another node untouched', run: ['pg4', 'pg5'], want: [] },
];
for (const r of rows) test(`split: ${r.name}`, () => assert.equal(splitNodes(nodes, new Set(r.run)), r.want));

test('--keep-going: a node and its backends are left out together', () => {
  const all = new Set(['pg1', 'pg2', 'pg3', 'pg4', 'pg5']);
  const out = leaveOutWith(nodes, new Set(['pg2']), all);
  assert.equal([...out.keys()].sort(), ['pg1', 'pg3']);
  assert.match(out.get('pg1')!, /left out with pg2 \(Pgpool-II node pg3 and its backends pg1, pg2 change together/);
  assert.equal([...leaveOutWith(nodes, new Set(['pg5']), all).keys()], ['pg4'], 'a Pgpool-II node that could not be read takes its backends out');
  // a backend shared by two nodes takes both nodes and all their backends
  const shared: PgpoolNode[] = [{ host: 'pg3', backends: ['pg1', 'pg2'] }, { host: 'pg5', backends: ['pg2', 'pg4'] }];
  assert.equal([...leaveOutWith(shared, new Set(['pg1']), all).keys()].sort(), ['pg2', 'pg3', 'pg4', 'pg5']);
});

test('a Pgpool-II node left out while all its backends change: refused only while it has no TLS', () => {
  const n = (tls?: boolean): PgpoolNode[] => [{ host: 'pg3', backends: ['pg1', 'pg2'], ...(tls === undefined ? {} : { tls }) }];
  assert.equal(strandedNodes(n(false), new Set(['pg1', 'pg2'])).map((x) => x.host), ['pg3']);
  assert.equal(strandedNodes(n(true), new Set(['pg1', 'pg2'])), [], 'a converged Pgpool-II meets TLS backends');
  assert.equal(strandedNodes(n(), new Set(['pg1', 'pg2'])), [], 'unknown: not refused');
  assert.equal(strandedNodes(n(false), new Set(['pg1', 'pg2', 'pg3'])), [], 'the node is in the run');
  assert.equal(strandedNodes(n(false), new Set(['pg3'])), [], 'Pgpool-II alone first is the designed order');
});

test('a backend that failed in this run keeps its siblings from changing authentication', () => {
  const status: Record<string, string> = { pg1: 'ok', pg2: 'failed', pg4: 'ok', pg5: 'ok' };
  const blocked = authChangeBlocked(nodes, 'pg1', (h) => status[h]);
  assert.match(blocked!, /not changing authentication on pg1: pg2, another backend of Pgpool-II node pg3, failed in this run/);
  assert.is(authChangeBlocked(nodes, 'pg4', (h) => status[h]), null, 'another node is not concerned');
  assert.match(authChangeBlocked(nodes, 'pg1', (h) => (h === 'pg2' ? 'unreachable' : 'ok'))!, /became unreachable/);
  assert.is(authChangeBlocked(nodes, 'pg1', () => 'ok'), null);
  assert.match(authChangeBlocked(nodes, 'pg1', (h) => (h === 'pg3' ? 'failed' : 'ok'))!, /pg3, the Pgpool-II node in front of it, failed/, 'a backend follows its node');
  assert.match(authChangeBlocked(nodes, 'pg3', (h) => (h === 'pg1' ? 'failed' : 'ok'))!, /pg1, a backend of this Pgpool-II node, failed/, 'a node follows its backends');
  assert.equal(siblingBackends(nodes, 'pg2').map((s) => s.backend), ['pg1']);
});

test('StepBarrier: a backend waits at the step until its peers reach it or finish', async () => {
  const peers: Record<string, string[]> = { a: ['b'], b: ['a'], c: [] };
  const bar = new StepBarrier((h) => peers[h]!);
  const order: string[] = [];
  const a = bar.arrive('a', 3).then(() => order.push('a passed'));
  await bar.arrive('c', 3).then(() => order.push('c passed (no peers)'));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(order, ['c passed (no peers)'], 'a waits for b');
  await bar.arrive('b', 1); // b at an earlier step: a still waits
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(order, ['c passed (no peers)']);
  bar.done('b'); // b failed or ended its play
  await a;
  assert.equal(order, ['c passed (no peers)', 'a passed']);
});

test.run();
