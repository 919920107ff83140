import { structuredPatch } from 'diff';
import type { Diff, TaskDiff } from './plan-types.js';

// WHY compact (TaskDiff in plan-types.ts): a result lives until the run's end, and a plan's Diff
// holds two whole copies of the file. A first run of 14 lineinfile tasks on 200 hosts kept 12 copies
// of a 30 KB postgresql.conf and 12 of a 49 KB pgpool.conf per host: ~190 MB of the controller's
// heap (issue 12: 462 MB peak RSS). A hunk is a few hundred bytes; the diff is computed once, when
// the task ends, and the JSON report and --diff both read it.

/** Context lines kept around each change (as `diff -u`, and what --diff always showed). */
export const DIFF_CONTEXT = 3;

/**
 * A flat copy of a string. V8 keeps a substring (a sliced string) as a view of its parent, so a
 * short line cut from a file's text would keep the whole text alive; a copy through UTF-8 does not.
 */
function detach(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

/**
 * Where two texts differ, in whole lines: the common prefix and suffix are skipped by comparing
 * characters, without splitting either text into lines. A lineinfile change to a 50 KB file is then
 * a diff of a few lines, not of two thousand (the full line diff made ~0.5 MB of garbage per change).
 */
function changedRegion(a: string, b: string): { start: number; aEnd: number; bEnd: number } {
  const max = Math.min(a.length, b.length);
  let i = 0;
  while (i < max && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  const start = i === 0 ? 0 : a.lastIndexOf('\n', i - 1) + 1; // the line the first difference is on
  let j = 0; // common suffix length, never into the prefix of either text
  while (j < max - start && a.charCodeAt(a.length - 1 - j) === b.charCodeAt(b.length - 1 - j)) j++;
  // the suffix begins at a line start: move its beginning to the start of the next line
  let k = a.length - j;
  if (k > start && a.charCodeAt(k - 1) !== 10) {
    const nl = a.indexOf('\n', k);
    k = nl < 0 ? a.length : nl + 1;
  }
  const suffix = a.length - k;
  return { start, aEnd: a.length - suffix, bEnd: b.length - suffix };
}

/** The start of the line `n` lines before the line that starts at `at` (or 0). */
function linesBack(text: string, at: number, n: number): number {
  let p = at;
  for (let i = 0; i < n && p > 0; i++) p = text.lastIndexOf('\n', p - 2) + 1;
  return p;
}

/** The end of the line `n` lines after `at` (which is a line start or the end), or the text's end. */
function linesForward(text: string, at: number, n: number): number {
  let p = at;
  for (let i = 0; i < n && p < text.length; i++) {
    const nl = text.indexOf('\n', p);
    p = nl < 0 ? text.length : nl + 1;
  }
  return p;
}

function countLines(text: string, end: number): number {
  let n = 0;
  for (let p = text.indexOf('\n'); p >= 0 && p < end; p = text.indexOf('\n', p + 1)) n++;
  return n;
}

/** The patch of a planned file change, computed once (unmasked: masking is the renderer's, line by line). */
export function taskDiff(d: Diff): TaskDiff {
  if (d.kind === 'redacted') return d;
  const { before: a, after: b } = d;
  const r = changedRegion(a, b);
  // the changed lines with their context; what lies outside is the same in both and only shifts line numbers
  const from = linesBack(a, r.start, DIFF_CONTEXT);
  const skipped = countLines(a, from);
  const aTo = linesForward(a, r.aEnd, DIFF_CONTEXT);
  const bTo = b.length - (a.length - aTo);
  const p = structuredPatch('a', 'b', a.slice(from, aTo), b.slice(from, bTo), '', '', { context: DIFF_CONTEXT });
  let added = 0;
  let removed = 0;
  const hunks = p.hunks.map((h) => {
    for (const l of h.lines) {
      if (l.startsWith('+')) added++;
      else if (l.startsWith('-')) removed++;
    }
    return {
      oldStart: h.oldStart + skipped,
      oldLines: h.oldLines,
      newStart: h.newStart + skipped,
      newLines: h.newLines,
      text: detach(h.lines.join('\n')),
    };
  });
  return { kind: 'patch', path: detach(d.path), hunks, added, removed };
}

/** Whether two planned diffs are the same change (a change planned again after its command ran is reported once). */
export function sameDiff(a: Diff, b: Diff): boolean {
  if (a.kind === 'file' && b.kind === 'file') return a.path === b.path && a.before === b.before && a.after === b.after;
  if (a.kind === 'redacted' && b.kind === 'redacted') return a.path === b.path && a.note === b.note;
  return false;
}
