import { modules } from '../../src/modules/index.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepare } from '../../src/core/runner.js';
import { silentReporter } from '../../src/core/reporter.js';
import { ConfigError } from '../../src/lib/errors.js';

// Every shipped playbook must validate against the shipped example inventory, before any connection:
// a typo in a playbook is caught here, not on a user's fleet.
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const playbooks = readdirSync(join(ROOT, 'playbooks')).filter((f) => /\.ya?ml$/.test(f));

test('there are playbooks to check', () => {
  assert.ok(playbooks.includes('install.yaml'), playbooks.join(', '));
});

for (const p of playbooks) {
  test(`playbooks/${p} validates against inventory.example.yaml`, () => {
    // the example reads passwords from the environment, as a real deployment would
    const env = { PGTLS_WEBADMIN_PASSWORD: 'x', PGTLS_APPUSER_PASSWORD: 'y', PGTLS_REPL_PASSWORD: 'z', PGTLS_PGPOOL_PASSWORD: 'p' };
    Object.assign(process.env, env);
    try {
      const { book } = prepare({ modules,
        playbook: join(ROOT, 'playbooks', p),
        inventory: join(ROOT, 'inventory.example.yaml'),
        extraVars: [],
        check: true,
        forks: 1,
        tags: [],
        skipTags: [],
        reporter: silentReporter,
      });
      assert.ok(book.plays.length > 0);
    } catch (e) {
      assert.unreachable(e instanceof ConfigError ? e.message : String(e));
    }
  });
}

test.run();
