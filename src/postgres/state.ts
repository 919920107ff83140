/**
 * What the running server says about its configuration, in one psql round
 * trip: when it last (re)loaded, the files it reads, the TLS files it
 * points at, and the errors PostgreSQL itself finds in pg_hba.conf and
 * postgresql.conf (both views read the files on disk, so they also show
 * errors a reload would refuse).
 */
import { isAbsolute, join } from 'node:path';
import type { PlanContext } from '../lib/plan-types.js';
import { psqlQuery, type PgServer } from '../facts/postgres.js';
import { hbaRuleFileExpr } from '../facts/pg-versions.js';

export interface ServerState {
  /** pg_conf_load_time() / pg_postmaster_start_time(), epoch seconds (server clock) */
  loadTime: number;
  startTime: number;
  ssl: boolean;
  certFile: string;
  keyFile: string;
  caFile: string;
  crlFile: string;
  /** every config file in use: postgresql.conf, its includes, pg_hba.conf, pg_ident.conf */
  configFiles: string[];
  /** settings changed in the files that only a restart applies */
  pendingRestart: string[];
  hbaErrors: string[];
  confErrors: string[];
}

// pg_file_settings marks a restart-only parameter changed on disk as "setting could not be applied":
// that is not a broken file, it is pending_restart (reported separately).
export const stateSql = (major: number) => {
  const HBA_FILE = hbaRuleFileExpr(major);
  return `select json_build_object(
  'load', extract(epoch from pg_conf_load_time()),
  'start', extract(epoch from pg_postmaster_start_time()),
  'ssl', current_setting('ssl'),
  'cert', current_setting('ssl_cert_file'),
  'key', current_setting('ssl_key_file'),
  'ca', current_setting('ssl_ca_file'),
  'crl', current_setting('ssl_crl_file'),
  'data', current_setting('data_directory'),
  'files', (select json_agg(distinct f) from (
      select sourcefile as f from pg_file_settings where sourcefile is not null
      union select current_setting('config_file') union select current_setting('hba_file')
      union select current_setting('ident_file')) x),
  'pending', (select coalesce(json_agg(name order by name), '[]') from pg_settings where pending_restart),
  'hba_errors', (select coalesce(json_agg(format('%s line %s: %s', ${HBA_FILE}, line_number, error)), '[]')
      from pg_hba_file_rules where error is not null),
  'conf_errors', (select coalesce(json_agg(format('%s:%s: %s', f.sourcefile, f.sourceline, f.error)), '[]')
      from pg_file_settings f left join pg_settings s on s.name = f.name
      where f.error is not null and not coalesce(s.pending_restart, false)));
`;
};

export async function serverState(ctx: PlanContext, s: PgServer): Promise<ServerState> {
  const j = JSON.parse((await psqlQuery(ctx, s, stateSql(s.version))).trim()) as Record<string, unknown>;
  const data = String(j.data);
  // ssl_* paths may be relative: PostgreSQL resolves them against the data directory
  const abs = (p: unknown) => (typeof p === 'string' && p !== '' ? (isAbsolute(p) ? p : join(data, p)) : '');
  const st: ServerState = {
    loadTime: Number(j.load),
    startTime: Number(j.start),
    ssl: j.ssl === 'on',
    certFile: abs(j.cert),
    keyFile: abs(j.key),
    caFile: abs(j.ca),
    crlFile: abs(j.crl),
    configFiles: ((j.files as string[] | null) ?? []).filter(Boolean),
    pendingRestart: (j.pending as string[]) ?? [],
    hbaErrors: (j.hba_errors as string[]) ?? [],
    confErrors: (j.conf_errors as string[]) ?? [],
  };
  (await lastSeen(ctx)).state = st;
  return st;
}

/**
 * The state this run last saw of this host's server: a hint of what the next state will name (its
 * files, its certificate), for questions asked ahead of the state itself; never an answer.
 */
export async function lastSeenState(ctx: PlanContext): Promise<ServerState | undefined> {
  return (await lastSeen(ctx)).state;
}

const lastSeen = (ctx: PlanContext) => ctx.memoStable('postgres:last-seen-state', () => Promise.resolve<{ state?: ServerState }>({}));
