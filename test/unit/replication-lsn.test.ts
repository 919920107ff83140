import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lsnValue } from '../../src/facts/replication.js';

// The standby's replay is compared with the walreceiver's position on the controller (one query per poll)
test('LSNs compare as 64-bit positions, not as text', () => {
  assert.is(lsnValue('0/3000060'), 0x3000060n);
  assert.is(lsnValue('16/B374D848'), (0x16n << 32n) + 0xb374d848n);
  // text order would put 9/0 after 10/0
  assert.ok(lsnValue('10/0')! > lsnValue('9/FFFFFFFF')!);
  assert.ok(lsnValue('0/A')! > lsnValue('0/9')!);
});

test('what is not an LSN is null (never a position to wait for)', () => {
  for (const s of ['', 'null', '0/', '/5', '0/G', '1/2/3', '123456789/0']) assert.is(lsnValue(s), null, s);
});

test.run();
