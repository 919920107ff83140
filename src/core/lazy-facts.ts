import { factProviders } from '../facts/index.js';
import { referencedNames } from '../template/render.js';
import type { PlanContext } from '../lib/plan-types.js';

/** Every variable name referenced by the strings inside a value (task args, `when` list). */
export function namesIn(value: unknown, out = new Set<string>(), condition = false): Set<string> {
  if (typeof value === 'string') {
    try {
      for (const n of referencedNames(value, { condition }).vars) out.add(n);
    } catch {
      // A syntax error is reported by the evaluation itself, with its file and line.
    }
  }
  else if (Array.isArray(value)) for (const v of value) namesIn(v, out, condition);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) namesIn(v, out, condition);
  return out;
}

/** Names a task needs: its `when` list holds bare expressions, its args hold templates. */
function taskNames(task: { when: unknown; args: unknown }): Set<string> {
  return namesIn(task.args, namesIn(task.when, new Set(), true));
}

/** Names of on-demand facts that a task needs and `vars` does not define. */
export function missingFacts(task: { when: unknown; args: unknown }, vars: Record<string, unknown>): string[] {
  return [...taskNames(task)].filter((n) => n in factProviders && vars[n] === undefined);
}

/** Placeholders for validation before connecting. */
export function placeholderFacts(value: { when: unknown; args: unknown }, vars: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(missingFacts(value, vars).map((n) => [n, factProviders[n]!.placeholder]));
}

/** The config files among provided facts (FactProvider.reads): the executor reads them with a task's first read. */
export function filesNamedBy(facts: Readonly<Record<string, unknown>>): { path: string }[] {
  return Object.entries(facts)
    .filter(([n, v]) => factProviders[n]?.reads && typeof v === 'string' && v.startsWith('/'))
    .map(([, v]) => ({ path: v as string }));
}

/** Asks the host for the facts a task needs (memoized per host through ctx.memo). */
export async function provideFacts(value: { when: unknown; args: unknown }, vars: Record<string, unknown>, ctx: PlanContext): Promise<Record<string, unknown>> {
  const names = missingFacts(value, vars);
  const entries = await Promise.all(
    names.map(async (n) => [n, await ctx.memoStable(`fact:${n}`, () => factProviders[n]!.provide(ctx))] as const),
  );
  return Object.fromEntries(entries);
}
