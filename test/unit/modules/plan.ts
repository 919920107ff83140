// Plans one module against a fake host with the real executor (HostSession): facts in, changes out.
import { modules } from '../../../src/modules/index.js';
import type { Action, Change, PlanContext } from '../../../src/lib/plan-types.js';
import { actionRegistry } from '../../../src/core/run-state.js';
import { fakeSession, type FakeHostSpec, type FakeSession, type FakeTransport } from '../fake-host.js';
import { moduleCases } from '../module-cases.js';

export interface Planned extends FakeSession {
  changes: Change[];
}

export function parseArgs(module: string, args: unknown): unknown {
  const mod = modules.get(module)!;
  const r = mod.args.safeParse(args);
  if (!r.success) throw new Error(`${module}: ${r.error.message}`);
  return r.data;
}

export async function planModule(
  module: string,
  args: unknown,
  spec: FakeHostSpec = {},
  o: { check?: boolean; vars?: Record<string, unknown>; memos?: Record<string, unknown>; transport?: FakeTransport; host?: string; runId?: string } = {},
): Promise<Planned> {
  const f = fakeSession(spec, o);
  const changes = await modules.get(module)!.plan(f.ctx, parseArgs(module, args));
  return { ...f, changes };
}

/** The case of module-cases.ts whose name starts with `prefix`, planned. */
export async function planCase(prefix: string, o: { check?: boolean } = {}): Promise<Planned> {
  const c = moduleCases().find((x) => x.name.startsWith(prefix));
  if (!c) throw new Error(`no case ${prefix}`);
  return planModule(c.module, c.args, c.host, { ...o, vars: c.vars, memos: c.memos });
}

export const kinds = (changes: Change[]) => changes.map((c) => c.actions.map((a) => a.kind));
export const actions = (changes: Change[]): Action[] => changes.flatMap((c) => c.actions);

const registry = actionRegistry(modules.values());

/** Runs the check a verify action names, as the executor would (by name, with the action's data). */
export function runVerify(action: Action | undefined, ctx: PlanContext): Promise<void> {
  if (action?.kind !== 'verify') throw new Error(`not a verify action: ${action?.kind}`);
  const v = registry.verifiers.get(action.verifier);
  if (!v) throw new Error(`no verifier ${action.verifier}`);
  return v.run(ctx, action.params);
}
