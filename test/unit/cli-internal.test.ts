/**
 * Exit code 5: an internal error (a bug in pgtls) is not a failed host (1) nor bad input (2), and
 * the --json / --junit reports are still written. Provoked in-process with a module whose argument
 * check throws a TypeError (as a bug would), registered for this test only.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as z from 'zod';
import { EXIT, main } from '../../src/cli.js';
import type { ModuleDef } from '../../src/lib/plan-types.js';
import { modules } from '../../src/modules/index.js';

test('an internal error exits 5 and still writes the JSON and JUnit reports', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgtls-internal-'));
  const buggy = {
    name: 'buggy_module',
    description: 'throws like a bug',
    args: z.object({}).superRefine(() => {
      throw new TypeError('cannot read properties of undefined (reading "x")');
    }),
    plan: async () => [],
  } as unknown as ModuleDef;
  (modules as Map<string, ModuleDef>).set('buggy_module', buggy);
  writeFileSync(join(dir, 'inv.ini'), '[db]\nh1 ansible_host=192.0.2.1\n');
  writeFileSync(join(dir, 'p.yaml'), '- hosts: db\n  tasks:\n    - buggy_module: {}\n');
  const writes: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => (writes.push(String(s)), true)) as typeof process.stderr.write;
  let code: number;
  try {
    code = await main(['run', join(dir, 'p.yaml'), '-i', join(dir, 'inv.ini'), '--syntax-check', '--json', join(dir, 'r.json'), '--junit', join(dir, 'r.xml')]);
  } finally {
    process.stderr.write = orig;
    (modules as Map<string, ModuleDef>).delete('buggy_module');
  }
  assert.is(code, EXIT.internal);
  assert.is(EXIT.internal, 5);
  assert.match(writes.join(''), /internal error \(this is a bug in pgtls/);
  const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
  assert.is(report.exitCode, 5);
  assert.match(report.internalError, /cannot read properties/);
  assert.match(readFileSync(join(dir, 'r.xml'), 'utf8'), /<error message="cannot read properties/);
});

test.run();
