import * as z from 'zod';
import { Secret } from '../../lib/secret.js';
import { defineModule, type Change, type PlanContext } from '../../lib/plan-types.js';
import { raw, sh } from '../../lib/sh.js';

/**
 * The command line itself may not hold a secret (`ps` on the host would show it): a templated
 * password is refused at validation, before any host is contacted. It goes in `stdin:` instead,
 * and the command reads it (`read -r PW`, `psql -f -`, `chpasswd`…).
 */
const commandLine = z.union([z.string().min(1), z.instanceof(Secret)]).transform((v, ctx) => {
  if (typeof v === 'string') return v;
  ctx.addIssue({
    code: 'custom',
    message: 'the command line holds a secret (a secret variable is templated into it); pass the secret with stdin: and read it there',
  });
  return z.NEVER;
});

/** `shell: "cmd"` is `shell: { cmd: "cmd" }` (a templated secret included, so the refusal names cmd). */
const args = z.preprocess(
  (v) => (typeof v === 'string' || v instanceof Secret ? { cmd: v } : v),
  z
    .object({
      cmd: commandLine,
      /** Skip when this path exists (makes the command idempotent, as in Ansible). */
      creates: z.string().optional(),
      /** Run only when this path exists. */
      removes: z.string().optional(),
      /** Text fed to the command's standard input: the place for secrets (never shown, never in argv). */
      stdin: z.union([z.string(), z.instanceof(Secret)]).optional(),
    })
    .strict(),
);

/**
 * Ansible's `shell`: a command line written by the playbook author, run by sh.
 * Not idempotent by itself; `creates`/`removes` make it so. In --check it does not run.
 */
export const shell = defineModule({
  name: 'shell',
  description: 'run a shell command (use creates/removes to make it idempotent; secrets go in stdin)',
  args,
  async plan(ctx, a): Promise<Change[]> {
    if (a.creates !== undefined && (await exists(ctx, a.creates))) return [];
    if (a.removes !== undefined && !(await exists(ctx, a.removes))) return [];
    return [{ summary: `run: ${a.cmd}`, actions: [{ kind: 'exec', description: a.cmd, cmd: sh`${raw(a.cmd)}`, stdin: a.stdin }] }];
  },
});

async function exists(ctx: PlanContext, path: string): Promise<boolean> {
  // the executor's answer: a file an earlier task of this run creates (or removes) counts, in both modes
  return (await ctx.stat([path])).has(path);
}
