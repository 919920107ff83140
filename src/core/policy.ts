/**
 * Fleet-wide policy variables that several plays and `pgtls status` read, validated once before
 * any connection (preflight): a bad value is bad input (exit 2) naming where it was set, never a
 * server that refuses to reload or a status that judges by a policy nobody can meet.
 */
import type { Inventory } from '../config/inventory.js';
import type { Play } from '../config/playbook.js';
import { renderValue } from '../template/render.js';
import type { ConfigIssue } from '../lib/errors.js';
import { templateContext } from './vars.js';

/** The TLS versions `pgtls_min_tls` may name (PostgreSQL's ssl_min_protocol_version spelling). */
export const MIN_TLS_CHOICES = ['TLSv1.2', 'TLSv1.3'] as const;
export type MinTls = (typeof MIN_TLS_CHOICES)[number];

/** Why a pgtls_min_tls value is not acceptable, or null when it is. */
export function minTlsProblem(value: unknown): string | null {
  if (typeof value === 'string' && (MIN_TLS_CHOICES as readonly string[]).includes(value)) return null;
  const shown = typeof value === 'string' ? `'${value}'` : JSON.stringify(value);
  return `must be ${MIN_TLS_CHOICES.join(' or ')} (got ${shown}); older versions are broken, and PostgreSQL spells them exactly so`;
}

type Where = Pick<ConfigIssue, 'file' | 'line'>;

/** Where a variable the host sees was set: -e, the play's vars, or the inventory (host, then its groups). */
export function varSource(name: string, inv: Inventory, host: string, play: Play | undefined, extra: Record<string, unknown>): Where {
  if (name in extra) return { file: '-e' };
  if (play && name in play.vars) return { file: play.doc.file, line: play.doc.lineOf([...play.path, 'vars', name]) };
  const data = inv.doc.data as Record<string, unknown> | null;
  const groups = new Set(inv.hosts.get(host)?.groups ?? []);
  // host vars win over group vars; among groups the deepest (most specific) found last wins
  let best: { path: (string | number)[]; rank: number } | null = null;
  const visit = (node: unknown, group: string, path: (string | number)[], depth: number) => {
    if (!node || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    const hosts = n.hosts as Record<string, unknown> | undefined;
    const hv = hosts && typeof hosts === 'object' ? hosts[host] : undefined;
    if (hv && typeof hv === 'object' && name in (hv as object)) best = { path: [...path, 'hosts', host, name], rank: 1e9 };
    const vars = n.vars as Record<string, unknown> | undefined;
    if (groups.has(group) && vars && typeof vars === 'object' && name in vars && (!best || depth >= best.rank)) best = { path: [...path, 'vars', name], rank: depth };
    for (const [c, g] of Object.entries((n.children as Record<string, unknown>) ?? {})) visit(g, c, [...path, 'children', c], depth + 1);
  };
  for (const [g, node] of Object.entries(data ?? {})) visit(node, g, [g], 0);
  const found = best as { path: (string | number)[] } | null;
  return { file: inv.file, ...(found ? { line: inv.doc.lineOf(found.path) } : {}) };
}

/** Policy problems of one host as a play sees it (its inventory, play and -e vars). */
export function policyIssues(vars: Record<string, unknown>, where: (name: string) => Where): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const raw = vars['pgtls_min_tls'];
  if (raw !== undefined) {
    let value: unknown;
    try {
      value = renderValue(raw, templateContext(vars));
    } catch (e) {
      return [{ ...where('pgtls_min_tls'), field: 'pgtls_min_tls', message: (e as Error).message }];
    }
    const p = minTlsProblem(value);
    if (p) out.push({ ...where('pgtls_min_tls'), field: 'pgtls_min_tls', message: p });
  }
  return out;
}
