/**
 * What status needs of a libpq connection string (`primary_conninfo`, pg_stat_wal_receiver.conninfo):
 * the sslmode and the host, never the whole string (it may hold a password). Parsed by the same
 * parser as the replication_tls module (src/pgconf/conninfo.ts: keyword and URI forms).
 */
import { conninfoValue, parseConninfo } from '../pgconf/conninfo.js';

const KEYS = ['sslmode', 'requiressl', 'host', 'hostaddr'] as const;

/** The keywords status reads, as libpq would take them (the last occurrence wins); none for a malformed string. */
export function conninfoParams(s: string): Map<string, string> {
  const out = new Map<string, string>();
  try {
    const c = parseConninfo(s.trim());
    for (const k of KEYS) {
      const v = conninfoValue(c, k);
      if (v !== undefined) out.set(k, v);
    }
  } catch {
    // libpq refuses it too: no key is known
  }
  return out;
}

/** The sslmode libpq uses for a conninfo: its own, else libpq's default `prefer`. */
export function effectiveSslmode(conninfo: string): string {
  const p = conninfoParams(conninfo);
  return p.get('sslmode') || (p.get('requiressl') === '1' ? 'require' : 'prefer');
}
