import { isLoopbackAddress } from './address.js';
import { parseHbaLine } from './rewrite.js';

/** Methods that send a password (or a proof of one): the ones pg_hba/pool_hba turn into hostssl. */
const PASSWORD_METHODS = new Set(['md5', 'password', 'scram-sha-256']);
/** Network rule types that also match a connection without TLS. */
const PLAIN_TYPES = new Set(['host', 'hostnossl', 'hostnogssenc']);
/** Methods that never let a connection without TLS in: `reject`, and `cert` (PostgreSQL requires TLS for it). */
const CLOSED_METHODS = new Set(['reject', 'cert']);

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const isIpNoMask = (s: string) => IPV4.test(s) || (s.includes(':') && !s.includes('/'));

/**
 * Rules that accept a connection without TLS, as "line N: <rule>":
 * - `password`: a password (or a proof of one) travels that way, from any address (a problem);
 * - `open`: a REMOTE client gets in without TLS and without such a password (trust, ident, ldap,
 *   pam, radius, gss …: a problem too: the session's data is in clear text on the network);
 * - `other`: the same from loopback only (trust on 127.0.0.1): not in transit, a note.
 */
export interface PlainRules {
  password: string[];
  open: string[];
  other: string[];
}

function classify(out: PlainRules, rule: string, method: string, loopback: boolean): void {
  if (PASSWORD_METHODS.has(method)) out.password.push(rule);
  else if (CLOSED_METHODS.has(method)) return;
  else if (loopback) out.other.push(rule);
  else out.open.push(rule);
}

/** The judgement for a pg_hba.conf-format text (Pgpool-II's pool_hba.conf). */
export function plainRules(text: string): PlainRules {
  const out: PlainRules = { password: [], open: [], other: [] };
  text.split(/\r?\n/).forEach((raw, i) => {
    const f = parseHbaLine(raw).fields.map((x) => x.text);
    if (f.length < 5 || !PLAIN_TYPES.has(f[0]!)) return;
    // an address followed by a separate netmask pushes the method one column right
    const mi = isIpNoMask(f[3]!) && isIpNoMask(f[4] ?? '') && f.length > 5 ? 5 : 4;
    classify(out, `line ${i + 1}: ${f.slice(0, mi + 1).join(' ')}`, f[mi] ?? '', isLoopbackAddress(f[3], mi === 5 ? f[4] : undefined));
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

/** The same judgement for the rows PostgreSQL parsed itself (PostgreSQL's own rules: it resolves includes). */
export function plainRows(rows: HbaRuleRow[]): PlainRules {
  const show = (r: HbaRuleRow) =>
    `line ${r.line_number}: ${[r.type, (r.database ?? []).join(','), (r.user_name ?? []).join(','), r.address, r.netmask, r.auth_method].filter((x) => x).join(' ')}`;
  const out: PlainRules = { password: [], open: [], other: [] };
  for (const r of rows) if (PLAIN_TYPES.has(r.type)) classify(out, show(r), r.auth_method, isLoopbackAddress(r.address, r.netmask));
  return out;
}

export const plainPasswordRows = (rows: HbaRuleRow[]): string[] => plainRows(rows).password;
