import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decideRestore, type RestoreDecision, type RestoreInput } from '../../src/modules/restore-originals/plan-restore.js';

const ORIG = `# conf\nport = 5432\n#ssl = off\nmax_connections = 100\nshared_buffers = 128MB\n`;
const INST = `# conf\nport = 5432\nssl = on\nmax_connections = 100\nshared_buffers = 128MB\npassword_encryption = 'scram-sha-256'\n`;

const cases: { name: string; input: RestoreInput; expect: RestoreDecision }[] = [
  { name: 'untouched since install: original back', input: { original: ORIG, installed: INST, current: INST }, expect: { kind: 'write', content: ORIG, merged: false } },
  { name: 'already original', input: { original: ORIG, installed: INST, current: ORIG }, expect: { kind: 'keep', reason: 'already as before the install' } },
  { name: 'file deleted since: original back', input: { original: ORIG, installed: INST, current: null }, expect: { kind: 'write', content: ORIG, merged: false } },
  { name: 'created by install: removed', input: { original: null, installed: 'x', current: 'x' }, expect: { kind: 'remove' } },
  { name: 'created by install, already gone', input: { original: null, installed: 'x', current: null }, expect: { kind: 'keep', reason: 'already gone' } },
  {
    name: 'someone changed another line: only pgtls lines reverted, theirs kept',
    input: { original: ORIG, installed: INST, current: INST.replace('max_connections = 100', 'max_connections = 300') },
    expect: { kind: 'write', content: ORIG.replace('max_connections = 100', 'max_connections = 300'), merged: true },
  },
  {
    name: 'someone appended a line at the end: kept',
    input: { original: ORIG, installed: INST, current: INST + 'work_mem = 8MB\n' },
    expect: { kind: 'write', content: ORIG + 'work_mem = 8MB\n', merged: true },
  },
  {
    name: 'someone changed the very line pgtls set: conflict, nothing guessed',
    input: { original: ORIG, installed: INST, current: INST.replace('ssl = on', 'ssl = off # by hand') },
    expect: { kind: 'conflict', reason: 'changed after the install where pgtls changed it; revert by hand' },
  },
];

for (const c of cases) test(c.name, () => assert.equal(decideRestore(c.input), c.expect));

test.run();
