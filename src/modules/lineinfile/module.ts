import { z } from 'zod';
import { defineModule, type Change } from '../../core/types.js';
import { TaskError } from '../../core/errors.js';
import { absolutePath, fileMode, yamlBool } from '../common.js';
import { editLines, validateSpec } from './edit.js';

const args = z
  .object({
    path: absolutePath,
    regexp: z.string().optional(),
    search_string: z.string().optional(),
    line: z.string().optional(),
    state: z.enum(['present', 'absent']).default('present'),
    insertafter: z.string().optional(),
    insertbefore: z.string().optional(),
    backrefs: yamlBool.default(false),
    firstmatch: yamlBool.default(false),
    create: yamlBool.default(false),
    mode: fileMode.optional(),
    owner: z.string().optional(),
    group: z.string().optional(),
    backup: yamlBool.default(false),
    validate: z.string().includes('%s', { message: "must contain %s (the file to check)" }).optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    for (const message of validateSpec(a)) ctx.addIssue({ code: 'custom', message });
  });

/** Ansible's lineinfile: one line in a file, edited in memory and written atomically. */
export const lineinfile = defineModule({
  name: 'lineinfile',
  description: 'ensure a line is present in (or absent from) a text file',
  args,
  async plan(ctx, a): Promise<Change[]> {
    const file = await ctx.readFile(a.path);
    if (!file && !a.create) {
      if (a.state === 'absent') return [];
      throw new TaskError(`${a.path} does not exist (set create: true to create it)`);
    }
    const before = file?.content.toString('utf8') ?? null;
    const result = editLines(before, a);
    for (const w of result.warnings) ctx.warn(w);
    const metaChanged =
      file !== null &&
      ((a.mode !== undefined && a.mode !== file.mode) ||
        (a.owner !== undefined && a.owner !== file.owner) ||
        (a.group !== undefined && a.group !== file.group));
    if (!result.changed && !metaChanged && file) return [];
    if (!result.changed && !file && a.state === 'absent') return [];
    const after = result.content;
    const summary = result.changed ? `${a.path}: ${result.message}` : `${a.path}: owner/mode updated`;
    return [
      {
        summary,
        diff: { kind: 'file', path: a.path, before: before ?? '', after },
        actions: [
          {
            kind: 'write',
            path: a.path,
            content: Buffer.from(after, 'utf8'),
            mode: a.mode,
            owner: a.owner,
            group: a.group,
            backup: a.backup,
            validate: a.validate,
          },
        ],
      },
    ];
  },
});
