/**
 * One task's plan, applied: the same for --check and a real run except for what the executor does with
 * each action (HostSession.apply: the overlay in --check, the host in a real run). Modules never know
 * the mode; this is where --check's "would …" and "conditional change" come from.
 *
 *  - A change marked `replan` (a CA that has to exist before anything can be signed by it) ends a real
 *    run's round: it is applied and the task is planned again against what it left. --check cannot know
 *    that outcome, so it applies the rest of the first plan and shows it as conditional.
 *  - A change whose local action reports that nothing was done (another host did it) is not counted.
 *  - A `verifyOnly` change (a login that must work) changes nothing: the task stays ok when it passes.
 *  - A change planned again after its command ran (a CSR signed once the host printed it) is the same change:
 *    its summary and diff are reported once.
 */
import { createHash } from 'node:crypto';
import { TaskError } from '../lib/errors.js';
import type { Action, Change, Diff, PlanContext, PlannedAction, TaskDiff } from '../lib/plan-types.js';
import { sameDiff, taskDiff } from '../lib/task-diff.js';

/** How often a real run plans a task again after a `replan` change (a loop would be a bug in the module). */
const MAX_ROUNDS = 3;

export interface AppliedPlan {
  changed: boolean;
  summaries: string[];
  /** Hunks and counts, not the file's text (a result lives until the run ends: lib/task-diff.ts). */
  diffs: TaskDiff[];
  planned: PlannedAction[];
}

export async function applyPlan(
  plan: () => Promise<Change[]>,
  apply: (actions: Action[], ctx: PlanContext) => Promise<{ outcome?: string | null }>,
  ctx: PlanContext,
  check: boolean,
): Promise<AppliedPlan> {
  const out: AppliedPlan = { changed: false, summaries: [], diffs: [], planned: [] };
  const seen: Diff[] = []; // this task's diffs as planned, to report each once; dropped when the task ends
  let changes = await plan();
  for (let round = 1; ; round++) {
    const cut = changes.findIndex((c) => c.replan);
    // never apply what was planned after an unfinished step in a real run (stand-ins for what it makes)
    if (!check && cut >= 0 && round > MAX_ROUNDS) throw new TaskError(`bug: the plan still waits for "${changes[cut]!.summary}" after ${MAX_ROUNDS} rounds`);
    const last = check || cut < 0;
    const now = last ? changes : changes.slice(0, cut + 1);
    let afterReplan = false;
    for (const c of now) {
      const { outcome } = await apply(c.actions, ctx);
      if (outcome === null) continue;
      const conditional = Boolean(c.conditional || afterReplan);
      out.planned.push(...c.actions.map((a) => plannedAction(a, c.summary, conditional)));
      if (c.replan) afterReplan = true;
      if (c.verifyOnly) continue;
      out.changed = true;
      const summary = outcome !== undefined ? outcome : check ? checkPhrase(c.summary, conditional) : c.summary;
      if (!out.summaries.includes(summary)) out.summaries.push(summary);
      const diff = c.diff;
      if (diff && !seen.some((d) => sameDiff(d, diff))) {
        seen.push(diff);
        out.diffs.push(taskDiff(diff));
      }
    }
    if (last) return out;
    changes = await plan();
  }
}

/** --check's wording of a planned change: "would reload PostgreSQL (…)". */
export function checkPhrase(summary: string, conditional: boolean): string {
  return `${conditional ? 'conditional change: ' : ''}would ${summary}`;
}

/** What --check --json lists of an action: kind, path, description; a hash and length instead of content. */
export function plannedAction(a: Action, change: string, conditional: boolean): PlannedAction {
  const base = { change, ...(conditional ? { conditional } : {}) };
  switch (a.kind) {
    case 'write':
      return {
        ...base,
        kind: a.kind,
        description: `write ${a.path}`,
        path: a.path,
        sha256: createHash('sha256').update(a.content).digest('hex'),
        bytes: a.content.length,
        ...(a.mode ? { mode: a.mode } : {}),
        ...(a.owner ? { owner: a.owner } : {}),
        ...(a.group ? { group: a.group } : {}),
      };
    case 'remove':
      return { ...base, kind: a.kind, description: `remove ${a.path}`, path: a.path };
    case 'rename':
      return { ...base, kind: a.kind, description: `install ${a.from} as ${a.path}`, path: a.path };
    case 'exec':
      return { ...base, kind: a.kind, description: a.description, ...(a.user ? { user: a.user } : {}), ...(a.touches?.length ? { touches: a.touches } : {}) };
    case 'verify':
      return { ...base, kind: a.kind, description: a.description, name: a.verifier };
    case 'local':
      return { ...base, kind: a.kind, description: a.description, name: a.op };
  }
}
