import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { quote, sh, asUser } from '../../src/lib/sh.js';
import { Secret } from '../../src/lib/secret.js';
import { inspect } from 'node:util';

// Every value must come back byte for byte through a real POSIX shell.
const values = ['plain', '', 'with space', "it's", '"double"', '$HOME', '`id`', 'a\nb', '*', 'semi;colon', "'", '\\', 'ünï'];
for (const v of values) {
  test(`quote round-trips through sh: ${JSON.stringify(v)}`, () => {
    const out = execFileSync('sh', ['-c', `printf %s ${quote(v)}`]).toString();
    assert.is(out, v);
  });
}

test('sh template quotes each value and joins arrays', () => {
  const cmd = sh`ls -l ${'a b'} ${['x', "y'z"]} ${3}`;
  assert.is(cmd.text, `ls -l 'a b' x 'y'\\''z' 3`);
});

test('a Secret cannot be put on a command line', () => {
  assert.throws(() => sh`echo ${new Secret('pw') as unknown as string}`, /stdin/);
});

test('asUser nests a whole command as one argument that a shell unpacks intact', () => {
  const cmd = asUser(sh`printf %s ${"a'b $x"}`, 'postgres', false);
  assert.ok(cmd.text.startsWith('runuser -u postgres -- sh -c '));
  // Swap runuser for env (same argv shape) and let a real shell run it.
  const out = execFileSync('sh', ['-c', cmd.text.replace('runuser -u postgres --', 'env')]).toString();
  assert.is(out, "a'b $x");
});

test('Secret masks itself everywhere', () => {
  const s = new Secret('hunter2');
  assert.is(String(s), '********');
  assert.is(JSON.stringify({ s }), '{"s":"********"}');
  assert.not.match(inspect({ s }), /hunter2/);
  assert.is(s.reveal(), 'hunter2');
});

test.run();
