/**
 * Errors are split by audience (changesets' model):
 * - ConfigError: the user's input is wrong. Printed without a stack, exit 2, no host touched.
 * - TaskError: a task failed on one host. That host is marked failed, others go on.
 * - UnreachableError: we could not connect to / authenticate with a host.
 * - anything else is a bug in pgtls: printed with its stack.
 */
export interface ConfigIssue {
  file: string;
  line?: number;
  field?: string;
  message: string;
}

export function formatIssue(i: ConfigIssue): string {
  const where = i.line ? `${i.file}:${i.line}` : i.file;
  return i.field ? `${where}: ${i.field}: ${i.message}` : `${where}: ${i.message}`;
}

export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export class TaskError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskError';
  }
}

export class UnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnreachableError';
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
