import { modules } from '../../src/modules/index.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { prepare } from '../../src/core/runner.js';
import { ConfigError, type ConfigIssue } from '../../src/lib/errors.js';
import { silentReporter } from '../../src/core/reporter.js';
import { tempFiles } from './helpers.js';

// Bad input is found before any connection, with file, line and field, all problems at once.
const INVENTORY = `all:
  vars:
    ansible_user: root
  children:
    postgres:
      hosts:
        pg1: { ansible_host: 10.0.0.1 }
        pg2: { ansible_host: 10.0.0.2 }
`;

interface Case {
  name: string;
  playbook: string;
  inventory?: string;
  extra?: string[];
  limit?: string;
  env?: Record<string, string>;
  /** each expected issue: line (in the playbook unless `file` says otherwise) and a pattern for field+message */
  expect: { line?: number; file?: 'inventory' | 'playbook' | 'other'; match: RegExp }[];
}

const cases: Case[] = [
  { name: 'a valid playbook passes', playbook: `- hosts: postgres\n  tasks:\n    - lineinfile: { path: /etc/x, line: a }\n`, expect: [] },
  { name: 'YAML syntax error', playbook: `- hosts: postgres\n  tasks:\n    - lineinfile: { path: /etc/x, line: a\n`, expect: [{ line: 4, match: /./ }] },
  { name: 'not a list of plays', playbook: `hosts: all\n`, expect: [{ line: 1, match: /list of plays/ }] },
  { name: 'unknown module with a suggestion', playbook: `- hosts: all\n  tasks:\n    - name: x\n      lineinfle: { path: /a, line: b }\n`, expect: [{ line: 4, match: /lineinfle.*did you mean 'lineinfile'/ }] },
  { name: 'two modules in one task', playbook: `- hosts: all\n  tasks:\n    - lineinfile: { path: /a, line: b }\n      shell: ls\n`, expect: [{ line: 3, match: /exactly one module/ }] },
  { name: 'missing hosts', playbook: `- name: p\n  tasks: []\n`, expect: [{ line: 1, match: /hosts/ }] },
  { name: 'unknown play key', playbook: `- hosts: all\n  taks: []\n`, expect: [{ line: 2, match: /taks/ }] },
  { name: 'bad argument type and unknown argument', playbook: `- hosts: all\n  tasks:\n    - lineinfile:\n        path: /a\n        line: b\n        create: maybe\n        colour: red\n`, expect: [{ line: 6, match: /create/ }, { line: 7, match: /colour/ }] },
  { name: 'relative path', playbook: `- hosts: all\n  tasks:\n    - lineinfile:\n        path: etc/a\n        line: b\n`, expect: [{ line: 4, match: /path.*absolute/ }] },
  { name: 'state present without line', playbook: `- hosts: all\n  tasks:\n    - lineinfile: { path: /a, regexp: x }\n`, expect: [{ line: 3, match: /line/ }] },
  { name: 'invalid regexp', playbook: `- hosts: all\n  tasks:\n    - lineinfile: { path: /a, regexp: '(unclosed', line: x }\n`, expect: [{ line: 3, match: /regexp/i }] },
  { name: 'undefined variable, both hosts in one issue', playbook: `- hosts: all\n  tasks:\n    - lineinfile: { path: "{{ confdir }}/a", line: x }\n`, expect: [{ line: 3, match: /undefined variable 'confdir'.*hosts pg1, pg2/ }] },
  { name: 'variable defined by -e', playbook: `- hosts: all\n  tasks:\n    - lineinfile: { path: "{{ confdir }}/a", line: x }\n`, extra: ['confdir=/etc'], expect: [] },
  { name: 'missing environment variable', playbook: `- hosts: all\n  vars:\n    pw: "{{ lookup('env', 'PGTLS_TEST_UNSET_VAR') }}"\n  tasks:\n    - lineinfile: { path: /a, line: "{{ pw }}" }\n`, expect: [{ line: 5, match: /PGTLS_TEST_UNSET_VAR is not set/ }] },
  { name: 'environment variable set', playbook: `- hosts: all\n  vars:\n    pw: "{{ lookup('env', 'PGTLS_TEST_SET_VAR') }}"\n  tasks:\n    - lineinfile: { path: /a, line: "{{ pw }}" }\n`, env: { PGTLS_TEST_SET_VAR: 'x' }, expect: [] },
  { name: 'bad when expression', playbook: `- hosts: all\n  tasks:\n    - lineinfile: { path: /a, line: x }\n      when: a ==\n`, expect: [{ line: 4, match: /when/ }] },
  { name: 'notify without such handler', playbook: `- hosts: all\n  tasks:\n    - lineinfile: { path: /a, line: x }\n      notify: restart pg\n`, expect: [{ line: 4, match: /no handler named 'restart pg'/ }] },
  { name: 'a play naming a group the inventory does not define (typo) is bad input, with a suggestion', playbook: `- hosts: postgress\n  tasks: []\n`, expect: [{ line: 1, match: /hosts: .*postgress is not a host or group.*did you mean 'postgres'/ }] },
  { name: '--limit matching nothing', playbook: `- hosts: all\n  tasks: []\n`, limit: 'pg9', expect: [{ file: 'other', match: /pg9/ }] },
  { name: 'bad connection variable in the inventory', playbook: `- hosts: all\n  tasks: []\n`, inventory: `all:\n  hosts:\n    h1:\n      ansible_port: seventy\n`, expect: [{ file: 'inventory', line: 3, match: /ansible_port/ }] },
  { name: 'inventory that is not a mapping of groups', playbook: `- hosts: all\n  tasks: []\n`, inventory: `- a\n- b\n`, expect: [{ file: 'inventory', match: /./ }] },
  { name: 'serial must be a number or a percentage', playbook: `- hosts: all\n  serial: some\n  tasks: []\n`, expect: [{ line: 2, match: /serial/ }] },
  // pgtls_min_tls: TLSv1.2 or TLSv1.3 only, wherever it is set; the issue names where
  { name: 'pgtls_min_tls TLSv1.3 by -e is fine', playbook: `- hosts: all\n  tasks: []\n`, extra: ['pgtls_min_tls=TLSv1.3'], expect: [] },
  { name: 'pgtls_min_tls by -e: TLSv1.1 is bad input', playbook: `- hosts: all\n  tasks: []\n`, extra: ['pgtls_min_tls=TLSv1.1'], expect: [{ file: 'other', match: /^pgtls_min_tls: must be TLSv1\.2 or TLSv1\.3 \(got 'TLSv1\.1'\).*hosts pg1, pg2/ }] },
  { name: 'pgtls_min_tls: case matters (PostgreSQL spelling)', playbook: `- hosts: all\n  tasks: []\n`, extra: ['pgtls_min_tls=tlsv1.2'], expect: [{ file: 'other', match: /pgtls_min_tls: must be/ }] },
  { name: 'pgtls_min_tls in a group of the inventory: its line', playbook: `- hosts: all\n  tasks: []\n`, inventory: `all:\n  children:\n    postgres:\n      vars:\n        pgtls_min_tls: 1.2\n      hosts:\n        pg1: {}\n`, expect: [{ file: 'inventory', line: 5, match: /pgtls_min_tls: must be TLSv1\.2 or TLSv1\.3 \(got 1\.2\)/ }] },
  { name: 'pgtls_min_tls on a host of the inventory: its line', playbook: `- hosts: all\n  tasks: []\n`, inventory: `all:\n  vars:\n    pgtls_min_tls: TLSv1.2\n  hosts:\n    pg1:\n      pgtls_min_tls: SSLv3\n    pg2: {}\n`, expect: [{ file: 'inventory', line: 6, match: /pgtls_min_tls: must be.*'SSLv3'.*host pg1\)$/ }] },
  { name: 'pgtls_min_tls in play vars: the playbook line', playbook: `- hosts: all\n  vars:\n    pgtls_min_tls: TLSv1\n  tasks: []\n`, expect: [{ line: 3, match: /pgtls_min_tls: must be/ }] },
  { name: 'several problems reported at once', playbook: `- hosts: all\n  tasks:\n    - lineinfile: { path: rel, line: x }\n    - lineinfile: { path: /a, line: x, mode: "999" }\n`, expect: [{ line: 3, match: /path/ }, { line: 4, match: /mode/ }] },
];

for (const c of cases) {
  test(c.name, () => {
    const { path } = tempFiles({ 'inv.yaml': c.inventory ?? INVENTORY, 'play.yaml': c.playbook });
    const saved = { ...process.env };
    Object.assign(process.env, c.env ?? {});
    let issues: ConfigIssue[] = [];
    try {
      prepare({ modules,
        playbook: path('play.yaml'),
        inventory: path('inv.yaml'),
        extraVars: c.extra ?? [],
        check: false,
        forks: 5,
        limit: c.limit,
        tags: [],
        skipTags: [],
        reporter: silentReporter,
      });
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      issues = e.issues;
    } finally {
      for (const k of Object.keys(c.env ?? {})) if (!(k in saved)) delete process.env[k];
    }
    const render = (i: ConfigIssue) => `${i.file}:${i.line}: ${i.field ?? ''}: ${i.message}`;
    assert.is(issues.length, c.expect.length, issues.map(render).join('\n'));
    for (const want of c.expect) {
      const file = want.file === 'inventory' ? path('inv.yaml') : want.file === 'other' ? undefined : path('play.yaml');
      const hit = issues.find(
        (i) => (file === undefined || i.file === file) && (want.line === undefined || i.line === want.line) && want.match.test(`${i.field ?? ''}: ${i.message}`),
      );
      assert.ok(hit, `expected ${want.line ?? '?'}: ${want.match} in:\n${issues.map(render).join('\n')}`);
    }
  });
}

test('a play whose group is defined but empty is skipped with a warning naming file and line', () => {
  const { path } = tempFiles({ 'inv.yaml': INVENTORY + '    pgpool:\n      hosts: {}\n', 'play.yaml': `- hosts: postgres\n  tasks: []\n- hosts: pgpool\n  tasks: []\n` });
  const { warnings } = prepare({ modules,
    playbook: path('play.yaml'),
    inventory: path('inv.yaml'),
    extraVars: [],
    check: false,
    forks: 5,
    tags: [],
    skipTags: [],
    reporter: silentReporter,
  });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, `${path('play.yaml')}:3: play 'pgpool': pgpool matches no host in`);
});

test.run();
