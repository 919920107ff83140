import { applyPatch, structuredPatch } from 'diff';

/** What an uninstall should do with one file pgtls changed, given the three versions of it. */
export type RestoreDecision =
  | { kind: 'keep'; reason: string }
  | { kind: 'write'; content: string; merged: boolean }
  | { kind: 'remove' }
  | { kind: 'conflict'; reason: string };

export interface RestoreInput {
  /** Content before pgtls first changed the file; null: it did not exist. */
  original: string | null;
  /** Content pgtls left there (null when unknown). */
  installed: string | null;
  /** Content now; null: the file is gone. */
  current: string | null;
}

/**
 * The three-way decision behind uninstall: when nobody touched the file since
 * pgtls wrote it, put the original back; when someone did, revert only the lines
 * pgtls changed (the patch installed→original, without context lines so that
 * edits next to pgtls's lines do not block it, applied to the current content),
 * and refuse rather than guess when that patch does not apply.
 */
export function decideRestore({ original, installed, current }: RestoreInput): RestoreDecision {
  if (original === null) {
    if (current === null) return { kind: 'keep', reason: 'already gone' };
    return { kind: 'remove' };
  }
  if (current === original) return { kind: 'keep', reason: 'already as before the install' };
  if (current === null || installed === null || current === installed) return { kind: 'write', content: original, merged: false };
  const patch = structuredPatch('installed', 'original', installed, original, '', '', { context: 0 });
  const merged = applyPatch(current, patch, { fuzzFactor: 0 });
  if (merged === false) {
    return { kind: 'conflict', reason: 'changed after the install where pgtls changed it; revert by hand' };
  }
  return { kind: 'write', content: merged, merged: true };
}
