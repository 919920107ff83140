import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadYaml } from '../../src/config/yaml.js';
import { inventoryJsonSchema, playbookJsonSchema } from '../../src/config/json-schemas.js';
import { modules } from '../../src/modules/index.js';
import { validate } from './json-schema.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const inventorySchema = JSON.parse(readFileSync(join(ROOT, 'schemas', 'inventory.schema.json'), 'utf8'));
const playbookSchema = JSON.parse(readFileSync(join(ROOT, 'schemas', 'playbook.schema.json'), 'utf8'));
// the product's YAML loader: merge keys (<<: *base) resolved, as editors resolve them
const yaml = (text: string) => loadYaml(text, 'test.yaml').data;

test('the shipped schemas are what the zod schemas generate (npm run build:schemas)', () => {
  assert.equal(inventorySchema, JSON.parse(JSON.stringify(inventoryJsonSchema())));
  assert.equal(playbookSchema, JSON.parse(JSON.stringify(playbookJsonSchema(modules))));
});

test('every module has its arguments in the playbook schema', () => {
  for (const name of modules.keys()) assert.ok(playbookSchema.$defs[`module_${name}`], name);
});

const playbooks = readdirSync(join(ROOT, 'playbooks')).filter((f) => /\.ya?ml$/.test(f));
for (const p of playbooks) {
  test(`playbooks/${p} validates against schemas/playbook.schema.json and names it`, () => {
    const text = readFileSync(join(ROOT, 'playbooks', p), 'utf8');
    assert.match(text.split('\n')[0]!, /^# yaml-language-server: \$schema=\.\.\/schemas\/playbook\.schema\.json$/);
    assert.equal(validate(playbookSchema, yaml(text)), []);
  });
}

test('inventory.example.yaml validates against schemas/inventory.schema.json and names it', () => {
  const text = readFileSync(join(ROOT, 'inventory.example.yaml'), 'utf8');
  assert.match(text.split('\n')[0]!, /^# yaml-language-server: \$schema=\.\/schemas\/inventory\.schema\.json$/);
  assert.equal(validate(inventorySchema, yaml(text)), []);
});

const badPlaybooks: [string, string][] = [
  ['unknown module', '- hosts: all\n  tasks:\n    - linenifile: { path: /x, line: y }\n'],
  ['two modules in a task', '- hosts: all\n  tasks:\n    - shell: "true"\n      lineinfile: { path: /x, line: y }\n'],
  ['relative path for lineinfile', '- hosts: all\n  tasks:\n    - lineinfile: { path: etc/x, line: y }\n'],
  ['unknown lineinfile argument', '- hosts: all\n  tasks:\n    - lineinfile: { path: /x, line: y, colour: red }\n'],
  ['bad enum', '- hosts: all\n  tasks:\n    - lineinfile: { path: /x, line: y, state: maybe }\n'],
  ['play without hosts', '- name: x\n  tasks: []\n'],
  ['unknown play keyword', '- hosts: all\n  strategy: free\n'],
  ['not a list', 'hosts: all\n'],
];
for (const [what, text] of badPlaybooks) {
  test(`the playbook schema rejects: ${what}`, () => {
    assert.ok(validate(playbookSchema, yaml(text)).length > 0, 'accepted');
  });
}

test('the playbook schema accepts templates where numbers/enums go, yes/no booleans and ansible.builtin names', () => {
  const ok = `- hosts: all
  become: yes
  tasks:
    - ansible.builtin.lineinfile: { path: /etc/x, line: y, state: "{{ st }}", create: yes }
      ignore_errors: no
    - gencert: { keys_dir: /k, key_bits: "{{ bits | default(2048) }}" }
`;
  assert.equal(validate(playbookSchema, yaml(ok)), []);
});

const badInventories: [string, string][] = [
  ['unknown group key', 'all:\n  hostz: { a: {} }\n'],
  ['hosts as a list', 'all:\n  hosts: [a, b]\n'],
  ['vars as a list', 'all:\n  vars: [a]\n'],
];
for (const [what, text] of badInventories) {
  test(`the inventory schema rejects: ${what}`, () => {
    assert.ok(validate(inventorySchema, yaml(text)).length > 0, 'accepted');
  });
}

test.run();
