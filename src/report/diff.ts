import { formatPatch } from 'diff';
import type { Diff, TaskDiff } from '../lib/plan-types.js';
import { taskDiff } from '../lib/task-diff.js';
import { maskConninfoPassword } from '../pgconf/conninfo.js';
import { maskConninfoPasswords } from '../pgconf/guc-file.js';
import { maskPasswordLines } from './sanitize.js';

/** A password inside a primary_conninfo line (postgresql.conf, postgresql.auto.conf…) is never shown, whichever module's diff it is in. */
const mask = (text: string) => maskConninfoPasswords(text, maskConninfoPassword);

/** A hunk line with its conninfo password masked ('\' lines, "No newline at end of file", are pgtls's own). */
const maskHunkLine = (line: string) => (line.startsWith('\\') ? line : line.slice(0, 1) + mask(line.slice(1)));

/**
 * Unified text of a change (a task's TaskDiff, or a plan's Diff), built here (the renderer), never by a
 * module. Lines whose key looks like a password (`*_password = …`, `password=` in a conninfo) show
 * masked, context lines too: a line whose password changed shows as removed and added, both masked.
 */
export function renderDiff(d: Diff | TaskDiff): string {
  if (d.kind === 'redacted') return `--- ${d.path ?? '(secret)'}\n+++ ${d.path ?? '(secret)'}\n  ${d.note}\n`;
  const p = d.kind === 'file' ? taskDiff(d) : d;
  if (p.kind === 'redacted') return renderDiff(p);
  const hunks = p.hunks.map(({ text, ...range }) => ({ ...range, lines: text.split('\n').map(maskHunkLine) }));
  return maskPasswordLines(formatPatch({ oldFileName: `${p.path} (before)`, newFileName: `${p.path} (after)`, oldHeader: '', newHeader: '', hunks }));
}

/** Counts of added and removed lines, for the JSON report (the text itself may be large). */
export function diffStats(d: Diff | TaskDiff): { path?: string; added: number; removed: number; redacted: boolean } {
  if (d.kind === 'redacted') return { path: d.path, added: 0, removed: 0, redacted: true };
  const p = d.kind === 'file' ? taskDiff(d) : d;
  if (p.kind === 'redacted') return diffStats(p);
  return { path: p.path, added: p.added, removed: p.removed, redacted: false };
}
