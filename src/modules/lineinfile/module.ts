import * as z from 'zod';
import { defineModule, type Change, type Diff } from '../../lib/plan-types.js';
import { Secret, redact } from '../../lib/secret.js';
import { TaskError } from '../../lib/errors.js';
import { absolutePath, fileMode, yamlBool } from '../common.js';
import { compilePythonRegex, editLines, validateSpec } from './edit.js';

const args = z
  .object({
    path: absolutePath,
    regexp: z.string().optional(),
    search_string: z.string().optional(),
    /** May be a secret (a templated password): it reaches the host on stdin and every diff shows it masked. */
    line: z.union([z.string(), z.instanceof(Secret)]).optional(),
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
    for (const message of validateSpec(revealLine(a))) ctx.addIssue({ code: 'custom', message: hideLine(a.line, message) });
  });

/** The spec with its line as text, for the pure editing logic (its output is masked by hideLine). */
function revealLine<T extends { line?: string | Secret }>(a: T): T & { line?: string } {
  return { ...a, line: a.line instanceof Secret ? a.line.reveal() : a.line };
}

function hideLine(line: string | Secret | undefined, text: string): string {
  return line instanceof Secret ? redact(text, [line]) : text;
}

/**
 * A secret line's diff: the line and every line the edit matched (the old password line) show masked,
 * so `--diff` says which line changes without saying what it holds.
 */
function maskedDiff(path: string, before: string, after: string, line: Secret, matches: (l: string) => boolean): Diff {
  const mask = (text: string) =>
    text
      .split('\n')
      .map((l) => (l === line.reveal() || matches(l) ? `${Secret.MASK} (secret line)` : redact(l, [line])))
      .join('\n');
  return { kind: 'file', path, before: mask(before), after: mask(after) };
}

/** Ansible's lineinfile: one line in a file, edited in memory and written atomically. */
export const lineinfile = defineModule({
  name: 'lineinfile',
  hostLocal: true,
  description: 'ensure a line is present in (or absent from) a text file',
  args,
  reads: (a) => [a.path],
  async plan(ctx, a): Promise<Change[]> {
    const file = await ctx.readFile(a.path);
    if (!file && !a.create) {
      if (a.state === 'absent') return [];
      throw new TaskError(`${a.path} does not exist (set create: true to create it)`);
    }
    const before = file?.content.toString('utf8') ?? null;
    const result = editLines(before, revealLine(a));
    for (const w of result.warnings) ctx.warn(hideLine(a.line, w));
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
        diff:
          a.line instanceof Secret
            ? maskedDiff(a.path, before ?? '', after, a.line, lineMatcher(a))
            : { kind: 'file', path: a.path, before: before ?? '', after },
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

/** Whether a line of the file is one the edit looks for (regexp or search_string). */
function lineMatcher(a: { regexp?: string; search_string?: string }): (l: string) => boolean {
  if (a.regexp !== undefined) {
    const re = compilePythonRegex(a.regexp).re;
    return (l) => re.test(l + '\n');
  }
  if (a.search_string !== undefined) {
    const s = a.search_string;
    return (l) => s !== '' && l.includes(s);
  }
  return () => false;
}
