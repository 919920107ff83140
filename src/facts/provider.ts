import type { PlanContext } from '../lib/plan-types.js';
import type { ShellCommand } from '../lib/sh.js';

/**
 * Facts computed on demand: a variable named here that a task references and
 * the user did not set is asked of the host (once per host, memoized) right
 * before the task is templated. Before any connection, `placeholder` stands in
 * so that templates can be validated.
 */
export interface FactProvider {
  placeholder: unknown;
  provide(ctx: PlanContext): Promise<unknown>;
  /** Its value is a file the tasks read (a config file): the executor reads it with the first file a task reads. */
  reads?: boolean;
  /**
   * The read-only command `provide` starts with (discovery), known before connecting: run in the
   * connection's first round trip, with the host's names, and given to provide's identical query.
   */
  probe?(vars: Readonly<Record<string, unknown>>): ShellCommand;
}

