import type { PlanContext } from '../lib/plan-types.js';
import { pgpoolFacts } from './pgpool.js';
import { postgresFacts } from './postgres.js';
import { replicationFacts } from './replication.js';

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
}

export const factProviders: Readonly<Record<string, FactProvider>> = { ...postgresFacts, ...pgpoolFacts, ...replicationFacts };
