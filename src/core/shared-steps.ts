/**
 * Run-level steps on the controller that several hosts ask for and that must happen once, after every one
 * of those hosts is done: "remove the shared CA" only when no host that asked still has pgtls records
 * (its uninstall failed). A host's plan names the step (LocalAction.shared); the executor hands it here
 * instead of running it; the runner runs each step at the end of the play when every host that asked
 * for it ended the play ok, else keeps it and says which hosts stopped it. One instance per run.
 */
import { errorMessage } from '../lib/errors.js';
import type { LocalAction } from '../lib/plan-types.js';

export class SharedSteps {
  private readonly steps = new Map<string, { action: LocalAction; hosts: Set<string> }>();

  /** true for the first host that asks (it reports the change; the others join it). */
  add(key: string, host: string, action: LocalAction): boolean {
    const s = this.steps.get(key);
    if (s) s.hosts.add(host);
    else this.steps.set(key, { action, hosts: new Set([host]) });
    return !s;
  }

  /** Runs (`run`: in --check it simulates) every step whose hosts all ended ok; returns what each step did or why it was kept. */
  async runAll(statusOf: (host: string) => string, run: (action: LocalAction) => Promise<unknown>): Promise<string[]> {
    const said: string[] = [];
    for (const [key, { action, hosts }] of this.steps) {
      this.steps.delete(key);
      const failed = [...hosts].filter((h) => statusOf(h) !== 'ok');
      if (failed.length > 0) {
        said.push(`${action.description}: not done, ${failed.join(', ')} did not finish`);
        continue;
      }
      try {
        await run(action);
      } catch (e) {
        said.push(`${action.description} failed: ${errorMessage(e)}`);
      }
    }
    return said;
  }
}
