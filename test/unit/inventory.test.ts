import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadInventory, selectHosts } from '../../src/config/inventory.js';
import { becomeOf, connectionVars, hostVars } from '../../src/core/vars.js';
import { parseExtraVars } from '../../src/config/extra-vars.js';
import { ConfigError } from '../../src/lib/errors.js';
import { tempFiles } from './helpers.js';

const INVENTORY = `
all:
  vars:
    level: all
    only_all: a
    ansible_user: deploy
  hosts:
    lonely:
  children:
    db:
      vars:
        level: db
        only_db: d
      children:
        postgres:
          vars:
            level: postgres
          hosts:
            pg1: { ansible_host: 10.0.0.1, level: host }
            pg2:
        standby:
          vars:
            level: standby
          hosts:
            pg2:
    pgpool:
      vars:
        level: pgpool
      hosts:
        pp1:
          ansible_port: 2222
`;

const { path } = tempFiles({ 'inv.yaml': INVENTORY, 'extra.yaml': 'level: extra_file\nfrom_file: yes\n' });
const inv = loadInventory(path('inv.yaml'));

// Ansible's precedence: all < parent group < child group (same depth: by name, later wins) < host < extra vars.
const precedence: { host: string; extra?: Record<string, unknown>; key: string; expect: unknown }[] = [
  { host: 'lonely', key: 'level', expect: 'all' },
  { host: 'pg1', key: 'level', expect: 'host' },
  { host: 'pg2', key: 'level', expect: 'standby' }, // postgres and standby are both depth 2; 'standby' sorts last
  { host: 'pg2', key: 'only_db', expect: 'd' },
  { host: 'pg2', key: 'only_all', expect: 'a' },
  { host: 'pp1', key: 'level', expect: 'pgpool' },
  { host: 'pp1', key: 'ansible_port', expect: 2222 },
  { host: 'pp1', key: 'ansible_user', expect: 'deploy' },
  { host: 'pg1', extra: { level: 'extra' }, key: 'level', expect: 'extra' },
  { host: 'pg1', key: 'inventory_hostname', expect: 'pg1' },
];
for (const c of precedence) {
  test(`precedence: ${c.host}.${c.key}${c.extra ? ' with -e' : ''}`, () => {
    const vars = hostVars(inv, c.host, undefined, undefined, c.extra ?? {}, undefined, false);
    assert.equal(vars[c.key], c.expect);
  });
}

test('becomeOf reads ansible_become exactly as connectionVars does (Ansible booleans, templates, absent)', () => {
  const cases: Record<string, unknown>[] = [
    {},
    { ansible_become: true },
    { ansible_become: 'yes' },
    { ansible_become: 'False' },
    { ansible_become: 0 },
    { ansible_become: '{{ use_sudo }}', use_sudo: 'true' },
    { ansible_become: '{{ use_sudo }}', use_sudo: 'no' },
  ];
  for (const vars of cases) {
    const full = connectionVars(vars, 'h');
    assert.ok(full.success, JSON.stringify(vars));
    assert.is(becomeOf(vars), full.data.ansible_become, JSON.stringify(vars));
  }
  assert.throws(() => becomeOf({ ansible_become: 'maybe' }), /ansible_become/);
});

test('group_names and groups', () => {
  const vars = hostVars(inv, 'pg2', undefined, undefined, {}, undefined, false);
  assert.equal((vars.group_names as string[]).sort(), ['db', 'postgres', 'standby']);
  assert.equal(inv.groups.get('db'), ['pg1', 'pg2']);
});

const patterns: { pattern: string | string[]; expect: string[] }[] = [
  { pattern: 'all', expect: ['lonely', 'pg1', 'pg2', 'pp1'] },
  { pattern: '*', expect: ['lonely', 'pg1', 'pg2', 'pp1'] },
  { pattern: 'postgres', expect: ['pg1', 'pg2'] },
  { pattern: 'pg1', expect: ['pg1'] },
  { pattern: 'postgres:pgpool', expect: ['pg1', 'pg2', 'pp1'] },
  { pattern: 'db:!standby', expect: ['pg1'] },
  { pattern: 'db:&standby', expect: ['pg2'] },
  { pattern: 'pg*', expect: ['pg1', 'pg2', 'pp1'] },
  { pattern: ['pgpool', 'pg1'], expect: ['pg1', 'pp1'] },
  { pattern: 'nothing', expect: [] },
];
for (const c of patterns) {
  test(`pattern ${JSON.stringify(c.pattern)}`, () => {
    assert.equal(selectHosts(inv, c.pattern), c.expect);
  });
}

test('extra vars: key=value pairs, quotes, @file, JSON, later wins', () => {
  const v = parseExtraVars(['a=1 b="x y"', `@${path('extra.yaml')}`, '{"c": [1,2]}', 'a=2']);
  assert.equal(v, { a: '2', b: 'x y', level: 'extra_file', from_file: 'yes', c: [1, 2] });
});

test('extra vars: a bad pair is a ConfigError', () => {
  assert.throws(() => parseExtraVars(['novalue']), (e: unknown) => e instanceof ConfigError && /key=value/.test(e.message));
});

test('inventory with an unknown key in a group is rejected with file and line', () => {
  const bad = tempFiles({ 'bad.yaml': 'all:\n  children:\n    g:\n      host:\n        h1:\n' });
  assert.throws(
    () => loadInventory(bad.path('bad.yaml')),
    (e: unknown) => e instanceof ConfigError && e.issues.some((i) => i.line === 3 || i.line === 4),
  );
});

test.run();
