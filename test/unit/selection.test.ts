import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { taskSelected } from '../../src/core/preflight.js';
import { splitBatches } from '../../src/core/runner.js';
import type { Play, Task } from '../../src/config/playbook.js';

// --tags / --skip-tags as in Ansible, including the special tags always, never, untagged and all.
const task = (tags: string[]) => ({ tags }) as unknown as Task;
const play = (tags: string[] = []) => ({ tags }) as unknown as Play;

const tagCases: { name: string; taskTags: string[]; playTags?: string[]; tags?: string[]; skip?: string[]; runs: boolean }[] = [
  { name: 'no selection runs everything', taskTags: ['a'], runs: true },
  { name: 'no selection runs untagged', taskTags: [], runs: true },
  { name: 'selected tag', taskTags: ['a', 'b'], tags: ['b'], runs: true },
  { name: 'other tag', taskTags: ['a'], tags: ['b'], runs: false },
  { name: 'play tags are inherited', taskTags: [], playTags: ['cfg'], tags: ['cfg'], runs: true },
  { name: 'always runs under any --tags', taskTags: ['always'], tags: ['b'], runs: true },
  { name: 'always can be skipped by name', taskTags: ['always'], skip: ['always'], runs: false },
  { name: 'never does not run by default', taskTags: ['never', 'x'], runs: false },
  { name: 'never runs when one of its tags is asked', taskTags: ['never', 'x'], tags: ['x'], runs: true },
  { name: 'skip wins over tags', taskTags: ['a'], tags: ['a'], skip: ['a'], runs: false },
  { name: 'untagged selects tasks without tags', taskTags: [], tags: ['untagged'], runs: true },
  { name: 'untagged does not select tagged tasks', taskTags: ['a'], tags: ['untagged'], runs: false },
  { name: 'all selects everything', taskTags: ['a'], tags: ['all'], runs: true },
];
for (const c of tagCases) {
  test(`tags: ${c.name}`, () => {
    assert.is(taskSelected(task(c.taskTags), play(c.playTags), { tags: c.tags ?? [], skipTags: c.skip ?? [] }), c.runs);
  });
}

const hosts = ['a', 'b', 'c', 'd', 'e'];
const batchCases: { serial: number | string | undefined; expect: string[][] }[] = [
  { serial: undefined, expect: [hosts] },
  { serial: 1, expect: [['a'], ['b'], ['c'], ['d'], ['e']] },
  { serial: 2, expect: [['a', 'b'], ['c', 'd'], ['e']] },
  { serial: 10, expect: [hosts] },
  { serial: '40%', expect: [['a', 'b'], ['c', 'd'], ['e']] },
  { serial: '10%', expect: [['a'], ['b'], ['c'], ['d'], ['e']] }, // never a batch of 0
  { serial: '100%', expect: [hosts] },
];
for (const c of batchCases) {
  test(`serial ${String(c.serial)}`, () => assert.equal(splitBatches(hosts, c.serial), c.expect));
}

test.run();
