/**
 * What the executor needs beyond the plan to apply it, built once per run from the modules the CLI injects:
 * the verifiers and controller-side operations that verify and local actions name (plans hold names and
 * data, no code), and the run's state (one per run: the CA cache, a --check run's simulated rotation).
 */
import type { LocalOp, ModuleDef, RunState, Verifier } from '../lib/plan-types.js';

export class MapRunState implements RunState {
  private readonly values = new Map<string, unknown>();
  get<T>(key: string, init: () => T): T {
    if (!this.values.has(key)) this.values.set(key, init());
    return this.values.get(key) as T;
  }
}

export interface ActionRegistry {
  verifiers: ReadonlyMap<string, Verifier>;
  localOps: ReadonlyMap<string, LocalOp>;
}

/** The verifiers and local operations of these modules, by name; a name two modules declare is a bug. */
export function actionRegistry(modules: Iterable<Pick<ModuleDef, 'name' | 'verifiers' | 'localOps'>>): ActionRegistry {
  const verifiers = new Map<string, Verifier>();
  const localOps = new Map<string, LocalOp>();
  for (const m of modules) {
    for (const [kind, list, into] of [
      ['verifier', m.verifiers ?? [], verifiers],
      ['local operation', m.localOps ?? [], localOps],
    ] as const) {
      for (const item of list) {
        if (into.has(item.name)) throw new Error(`bug: the ${kind} ${item.name} of module ${m.name} is declared twice`);
        (into as Map<string, unknown>).set(item.name, item);
      }
    }
  }
  return { verifiers, localOps };
}

export const EMPTY_REGISTRY: ActionRegistry = { verifiers: new Map(), localOps: new Map() };
