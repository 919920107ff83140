import type * as z from 'zod';
import type { ConfigIssue } from '../lib/errors.js';
import type { LoadedYaml, YamlPath } from './yaml.js';

/** Turns zod issues into file:line: field: message, with the line of the offending node. */
export function zodIssues(error: z.ZodError, doc: LoadedYaml, base: YamlPath = []): ConfigIssue[] {
  return error.issues.map((issue) => {
    const path = [...base, ...(issue.path as (string | number)[])];
    // Point at the unknown key itself, not at the mapping that holds it.
    if (issue.code === 'unrecognized_keys' && issue.keys.length === 1) path.push(issue.keys[0]!);
    return {
      file: doc.file,
      line: doc.lineOf(path),
      field: path.length ? formatPath(path) : undefined,
      message: issue.message,
    };
  });
}

export function formatPath(path: YamlPath): string {
  return path.reduce<string>(
    (acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p),
    '',
  );
}
