import { factProviders } from '../facts/index.js';
import { referencedNames } from '../template/render.js';
import type { PlanContext } from './types.js';

/** Every variable name referenced by the strings inside a value (task args, `when` list). */
export function namesIn(value: unknown, out = new Set<string>()): Set<string> {
  if (typeof value === 'string') for (const n of referencedNames(value).vars) out.add(n);
  else if (Array.isArray(value)) for (const v of value) namesIn(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) namesIn(v, out);
  return out;
}

/** Names of on-demand facts that `value` needs and `vars` does not define. */
export function missingFacts(value: unknown, vars: Record<string, unknown>): string[] {
  return [...namesIn(value)].filter((n) => n in factProviders && vars[n] === undefined);
}

/** Placeholders for validation before connecting. */
export function placeholderFacts(value: unknown, vars: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(missingFacts(value, vars).map((n) => [n, factProviders[n]!.placeholder]));
}

/** Asks the host for the facts a task needs (memoized per host through ctx.memo). */
export async function provideFacts(value: unknown, vars: Record<string, unknown>, ctx: PlanContext): Promise<Record<string, unknown>> {
  const names = missingFacts(value, vars);
  const entries = await Promise.all(
    names.map(async (n) => [n, await ctx.memoStable(`fact:${n}`, () => factProviders[n]!.provide(ctx))] as const),
  );
  return Object.fromEntries(entries);
}
