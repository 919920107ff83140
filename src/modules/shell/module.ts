import { z } from 'zod';
import { defineModule, type Change, type PlanContext } from '../../core/types.js';
import { raw, sh } from '../../remote/sh.js';

const args = z.union([
  z.string().min(1).transform((cmd) => ({ cmd, creates: undefined, removes: undefined })),
  z
    .object({
      cmd: z.string().min(1),
      /** Skip when this path exists (makes the command idempotent, as in Ansible). */
      creates: z.string().optional(),
      /** Run only when this path exists. */
      removes: z.string().optional(),
    })
    .strict(),
]);

/**
 * Ansible's `shell`: a command line written by the playbook author, run by sh.
 * Not idempotent by itself; `creates`/`removes` make it so. In --check it does not run.
 */
export const shell = defineModule({
  name: 'shell',
  description: 'run a shell command (use creates/removes to make it idempotent)',
  args,
  async plan(ctx, a): Promise<Change[]> {
    if (a.creates !== undefined && (await exists(ctx, a.creates))) return [];
    if (a.removes !== undefined && !(await exists(ctx, a.removes))) return [];
    return [{ summary: `run: ${a.cmd}`, actions: [{ kind: 'exec', description: a.cmd, cmd: sh`${raw(a.cmd)}` }] }];
  },
});

async function exists(ctx: PlanContext, path: string): Promise<boolean> {
  return (await ctx.query(sh`test -e ${path}`, { okCodes: [0, 1] })).exitCode === 0;
}
