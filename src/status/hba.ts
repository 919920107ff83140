import { parseHbaLine } from '../modules/pg-hba/rewrite.js';

/** Methods that send a password (or a proof of one): the ones pg_hba/pool_hba turn into hostssl. */
const PASSWORD_METHODS = new Set(['md5', 'password', 'scram-sha-256']);
/** Network rule types that also match a connection without TLS. */
const PLAIN_TYPES = new Set(['host', 'hostnossl', 'hostnogssenc']);

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const isIpNoMask = (s: string) => IPV4.test(s) || (s.includes(':') && !s.includes('/'));

/**
 * Rules of a pg_hba.conf-format text (Pgpool-II's pool_hba.conf) that accept a connection without
 * TLS, as "line N: <rule>": `password` rules take a password that way (a problem), `other` rules
 * (trust, ident, …; reject excluded) let a client in unencrypted without one (a note).
 * PostgreSQL's own rules are read from pg_hba_file_rules instead (it resolves includes).
 */
export function plainRules(text: string): { password: string[]; other: string[] } {
  const out = { password: [] as string[], other: [] as string[] };
  text.split(/\r?\n/).forEach((raw, i) => {
    const f = parseHbaLine(raw).fields.map((x) => x.text);
    if (f.length < 5 || !PLAIN_TYPES.has(f[0]!)) return;
    // an address followed by a separate netmask pushes the method one column right
    const mi = isIpNoMask(f[3]!) && isIpNoMask(f[4] ?? '') && f.length > 5 ? 5 : 4;
    const method = f[mi] ?? '';
    const rule = `line ${i + 1}: ${f.slice(0, mi + 1).join(' ')}`;
    if (PASSWORD_METHODS.has(method)) out.password.push(rule);
    else if (method !== 'reject') out.other.push(rule);
  });
  return out;
}

export const plainPasswordRules = (text: string): string[] => plainRules(text).password;

/** A pg_hba_file_rules row (PostgreSQL 10+), as status reads it. */
export interface HbaRuleRow {
  line_number: number;
  type: string;
  database: string[] | null;
  user_name: string[] | null;
  address: string | null;
  netmask: string | null;
  auth_method: string;
}

/** The same judgement for the rows PostgreSQL parsed itself. */
export function plainRows(rows: HbaRuleRow[]): { password: string[]; other: string[] } {
  const show = (r: HbaRuleRow) =>
    `line ${r.line_number}: ${[r.type, (r.database ?? []).join(','), (r.user_name ?? []).join(','), r.address, r.netmask, r.auth_method].filter((x) => x).join(' ')}`;
  const plain = rows.filter((r) => PLAIN_TYPES.has(r.type));
  return {
    password: plain.filter((r) => PASSWORD_METHODS.has(r.auth_method)).map(show),
    other: plain.filter((r) => !PASSWORD_METHODS.has(r.auth_method) && r.auth_method !== 'reject').map(show),
  };
}

export const plainPasswordRows = (rows: HbaRuleRow[]): string[] => plainRows(rows).password;
