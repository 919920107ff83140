/**
 * remove_ca: deletes the CA that gencert keeps on the controller (ca.key and ca.crt in
 * pgtls_ca_dir, or pgtls_ca_dir/nodes/<host> for per-node CAs). Only when asked: uninstall.yaml
 * runs it with `-e pgtls_remove_ca=true`; by default the CA stays, so a later install issues
 * certificates that clients who kept root.crt still trust.
 *
 * Every host checks that pgtls has no record left on it (its uninstall finished). The removal is a
 * run-level step on the controller (core/shared-steps.ts): done once, at the end of the play, and only
 * when every host that asked for it ended the play ok, so one host whose uninstall failed keeps a
 * shared CA in place. The first host to ask reports the change.
 */
import { rm, rmdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as z from 'zod';
import { stateDirOf } from '../../lib/state-dir.js';
import { defineLocalOp, defineModule, localWith, type Change } from '../../lib/plan-types.js';
import { sh } from '../../lib/sh.js';
import { absolutePath } from '../common.js';
import { resolveFromInventory } from '../../ca/ca-key.js';

const args = z
  .object({
    ca_dir: z.string().min(1).default('pgtls-ca'),
    ca: z.enum(['shared', 'per_node']).default('shared'),
    state_dir: absolutePath.optional(),
  })
  .strict();

/** Where a CA rotation keeps the next, the previous and the retired CAs. */
const ROTATION_DIRS = ['next', 'previous', 'retired'];
/** The CA itself: what planning looks for and the operation deletes. */
const CA_FILES = ['ca.key', 'ca.crt'];

const exists = (p: string) => stat(p).then(() => true, () => false);

/** Deletes the CA's key and certificate, and a rotation's other generations; --check deletes nothing. */
const removeCaFiles = defineLocalOp('remove_ca.remove', async (_target, p: { dir: string }, simulate) => {
  if (simulate) return;
  await Promise.all(CA_FILES.map((f) => rm(join(p.dir, f), { force: true })));
  // a CA rotation's other generations (src/ca/rotation-store.ts) go with it
  await Promise.all(ROTATION_DIRS.map((d) => rm(join(p.dir, d), { recursive: true, force: true })));
  await rmdir(p.dir).catch(() => undefined); // only when empty
  return `removed the CA ${p.dir}`;
});

export const removeCa = defineModule({
  name: 'remove_ca',
  changesFleetState: true,
  description: 'delete the CA (key and certificate) on the controller',
  args,
  localOps: [removeCaFiles],
  async plan(ctx, a): Promise<Change[]> {
    const base = resolveFromInventory(ctx.vars, a.ca_dir);
    const dir = resolve(a.ca === 'per_node' ? join(base, 'nodes', ctx.host) : base);
    const present = (await Promise.all(CA_FILES.map((f) => exists(join(dir, f))))).some(Boolean);
    if (!present) return [];
    const state = stateDirOf(ctx.vars, a.state_dir);
    return [
      {
        summary: `remove the CA ${dir} (ca.key, ca.crt) on the controller`,
        diff: { kind: 'redacted', path: dir, note: 'CA key and certificate removed' },
        actions: [
          // first: the step is asked for (it runs at the end of the play), so a failing check below keeps it from running
          localWith(removeCaFiles, { dir }, { description: `remove the CA ${dir}`, shared: dir }),
          {
            kind: 'exec',
            description: `check that pgtls has nothing left on ${ctx.host} before removing its CA`,
            cmd: sh`if ls -- ${state}/*.path >/dev/null 2>&1; then echo "pgtls still tracks files on this host: its uninstall did not finish" >&2; exit 1; fi`,
          },
        ],
      },
    ];
  },
});
