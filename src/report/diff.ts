import { createTwoFilesPatch } from 'diff';
import type { Diff } from '../lib/plan-types.js';
import { maskConninfoPassword } from '../pgconf/conninfo.js';
import { maskConninfoPasswords } from '../pgconf/guc-file.js';
import { maskPasswordLines } from './sanitize.js';

/** A password inside a primary_conninfo line (postgresql.conf, postgresql.auto.conf…) is never shown, whichever module's diff it is in. */
const mask = (text: string) => maskConninfoPasswords(text, maskConninfoPassword);

/**
 * Unified text of a planned change, built here (the renderer), never by a module. Lines whose key
 * looks like a password (`*_password = …`, `password=` in a conninfo) show masked, context lines too.
 */
export function renderDiff(d: Diff): string {
  if (d.kind === 'redacted') return `--- ${d.path ?? '(secret)'}\n+++ ${d.path ?? '(secret)'}\n  ${d.note}\n`;
  return maskPasswordLines(createTwoFilesPatch(`${d.path} (before)`, `${d.path} (after)`, mask(d.before), mask(d.after), '', '', { context: 3 }));
}

/** Counts of added and removed lines, for the JSON report (the text itself may be large). */
export function diffStats(d: Diff): { path?: string; added: number; removed: number; redacted: boolean } {
  if (d.kind === 'redacted') return { path: d.path, added: 0, removed: 0, redacted: true };
  const patch = createTwoFilesPatch('a', 'b', d.before, d.after, '', '', { context: 0 });
  const lines = patch.split('\n').slice(4);
  return {
    path: d.path,
    added: lines.filter((l) => l.startsWith('+')).length,
    removed: lines.filter((l) => l.startsWith('-')).length,
    redacted: false,
  };
}
