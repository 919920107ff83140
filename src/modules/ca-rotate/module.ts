/**
 * ca_rotate: the controller's steps of a CA rotation (playbooks/reissue.yaml -e reissue=ca / ca-finish).
 * It changes nothing on the host it runs for: the CA directory is on the controller
 * (src/ca/rotation-store.ts). gencert then converges each host to the stage its
 * `ca_rotation` argument names.
 *
 *   begin    a new CA in pgtls_ca_dir/next/, cross-signed both ways with the current one
 *            (nothing if a rotation is already in progress: re-running `ca` continues it);
 *   publish  the new CA becomes pgtls_ca_dir/ca.crt, the old one moves to previous/ — run it once every
 *            server presents a chain clients of the new CA verify;
 *   finish   the old CA is retired (its key deleted) — run it after every host dropped it.
 *
 * Several hosts run the task at once; the step happens once and only the host that did it reports
 * a change. The step is a controller-side operation (ca_rotate.step) the executor runs; in --check it is
 * simulated and the next tasks plan against the run's in-memory copy (CaRun.simulated).
 */
import * as z from 'zod';
import { caDirProblem, finishProblem } from '../../ca/ca-dir-check.js';
import { defineLocalOp, defineModule, localWith, type Change } from '../../lib/plan-types.js';
import { caDirFor } from '../../ca/ca.js';
import { resolveFromInventory } from '../../ca/ca-key.js';
import { caRunOf } from '../../ca/ca-run.js';
import { beginRotation, finishRotation, publishRotation, viewRotation } from '../../ca/rotation-store.js';

const int = z.coerce.number().int();
const args = z
  .object({
    step: z.enum(['begin', 'publish', 'finish']),
    ca: z.enum(['shared', 'per_node']).default('shared'),
    ca_dir: z.string().min(1).default('pgtls-ca'),
    /** Name of the new CA; default: the old one's, with the date (two CAs must not share a subject). */
    ca_common_name: z.string().min(1).optional(),
    ca_days: int.positive().default(3650),
    ca_key_bits: int.min(2048).max(16384).default(3072),
  })
  .strict();

interface Step {
  step: 'begin' | 'publish' | 'finish';
  dir: string;
  commonName?: string;
  days: number;
  keyBits: number;
}

/**
 * One rotation step on the controller (in --check: simulated in the run's memory, for the tasks after it).
 * Several hosts ask at once; the step happens once, and a host that joined another host's step did nothing itself.
 */
const rotationStep = defineLocalOp('ca_rotate.step', async (target, p: Step, simulate) => {
  const run = caRunOf(target.runState);
  const s =
    p.step === 'begin'
      ? beginRotation(run, p.dir, { commonName: p.commonName, days: p.days, keyBits: p.keyBits, simulate })
      : p.step === 'publish'
        ? publishRotation(run, p.dir, simulate)
        : finishRotation(run, p.dir, simulate);
  const done = await s.done;
  return s.mine ? done : null;
});

export const caRotate = defineModule({
  name: 'ca_rotate',
  changesFleetState: true,
  description: 'the controller side of a CA rotation: begin (new CA), publish (new CA is ca.crt), finish (retire the old CA)',
  args,
  preflight: (a) => {
    const why = caDirProblem(a.ca_dir) ?? (a.step === 'finish' && a.ca === 'shared' ? finishProblem(a.ca_dir) : undefined);
    return why ? [{ field: a.step === 'finish' && !caDirProblem(a.ca_dir) ? 'step' : 'ca_dir', message: why }] : [];
  },
  localOps: [rotationStep],
  async plan(ctx, a): Promise<Change[]> {
    const run = caRunOf(ctx.runState, ctx.vars);
    const dir = caDirFor(a.ca, resolveFromInventory(ctx.vars, a.ca_dir), ctx.host);
    if (a.step === 'begin' && (await viewRotation(run, dir))?.published)
      ctx.warn(`a CA rotation is already in progress in ${dir} (new CA published): it continues; run reissue=ca-finish before starting another`);
    const step: Step = { step: a.step, dir, commonName: a.ca_common_name, days: a.ca_days, keyBits: a.ca_key_bits };
    return [{ summary: `${a.step} the CA rotation in ${dir}`, conditional: true, actions: [localWith(rotationStep, step, { description: `CA rotation step ${a.step} in ${dir}` })] }];
  },
});
