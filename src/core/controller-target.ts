/**
 * The controller as a target of local actions: files written there are journaled like a host's, per
 * host session, so a failed verify (or an interrupted run) puts them back together with the host's
 * files, and a passed verify proves them. Only files are journaled: a CA created or a rotation step
 * taken is shared by every host of the run (other hosts may already hold certificates from it), is made
 * atomically, and a re-run continues from it; undoing it because one host failed would break the others.
 */
import { lstat, readFile, rm } from 'node:fs/promises';
import { writeFileAtomic } from '../lib/private-file.js';
import type { ControllerTarget, RunState } from '../lib/plan-types.js';

interface Before {
  path: string;
  /** null: the file did not exist */
  was: { content: Buffer; mode: number } | null;
}

export class JournaledController implements ControllerTarget {
  private readonly journal: Before[] = [];

  constructor(readonly runState: RunState) {}

  async writeFile(path: string, content: Buffer, mode: number): Promise<void> {
    const first = !this.journal.some((j) => j.path === path);
    const was = first ? await current(path) : null;
    writeFileAtomic(path, content, mode);
    // journaled once written: a refused write (a symlink there) leaves nothing to put back
    if (first) this.journal.push({ path, was });
  }

  /** The files written since the last proven state. */
  get changed(): string[] {
    return this.journal.map((j) => j.path);
  }

  /** A verify passed: what was written is the new state a later failure rolls back to. */
  proven(): void {
    this.journal.length = 0;
  }

  /** Puts back every file written since the last proven state, newest first. */
  async rollback(): Promise<void> {
    for (const j of this.journal.splice(0).reverse()) {
      if (j.was) writeFileAtomic(j.path, j.was.content, j.was.mode);
      else await rm(j.path, { force: true });
    }
  }
}

async function current(path: string): Promise<Before['was']> {
  try {
    const st = await lstat(path);
    // writeFileAtomic refuses a symlink anyway; nothing to keep of one
    if (!st.isFile()) return null;
    return { content: await readFile(path), mode: st.mode & 0o777 };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}
