import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { retryUntil } from '../../src/lib/retry.js';

test('a first pause that doubles up to the longest: attempts come quickly, then only now and then', async () => {
  const at: number[] = [];
  const t0 = Date.now();
  const left = await retryUntil(
    400,
    async () => {
      at.push(Date.now() - t0);
      return { done: false, value: 'still' };
    },
    { first: 20, max: 80 },
  );
  assert.is(left, 'still', 'not done by the deadline: the last value');
  const pauses = at.slice(1).map((t, i) => t - at[i]!);
  // 20, 40, 80, 80 … (timers only ever fire late, never early)
  assert.ok(pauses[0]! >= 19 && pauses[1]! >= 39 && pauses[2]! >= 79, pauses.join(','));
  assert.ok(pauses.slice(3, -1).every((p) => p >= 79 && p < 200), pauses.join(','));
  assert.ok(at.length >= 5 && at.length <= 9, `${at.length} attempts`);
});

test('done at once: one attempt, no pause; a final answer ends the wait', async () => {
  let n = 0;
  assert.is(await retryUntil(1000, async () => (n++, { done: true }), { first: 50, max: 500 }), undefined);
  assert.is(n, 1);
  assert.is(await retryUntil(1000, async () => ({ done: false, value: 'refused', final: true })), 'refused');
});

test.run();
