/**
 * What the running server says about its configuration, in one psql round
 * trip: when it last (re)loaded, the files it reads, the TLS files it
 * points at, and the errors PostgreSQL itself finds in pg_hba.conf and
 * postgresql.conf (both views read the files on disk, so they also show
 * errors a reload would refuse).
 */
import type { PlanContext } from '../lib/plan-types.js';
import { psqlQuery, type PgServer } from '../facts/postgres.js';
import { hbaRuleFileExpr } from '../facts/pg-versions.js';
import { HINT_SQL_FIELDS, hintFromJson, rememberState, type StateHint } from './state-hint.js';

/** The files it reads and its TLS files (StateHint), and: */
export interface ServerState extends StateHint {
  /** pg_conf_load_time() / pg_postmaster_start_time(), epoch seconds (server clock) */
  loadTime: number;
  startTime: number;
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
  'data', current_setting('data_directory'),
  ${HINT_SQL_FIELDS},
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
  const files = hintFromJson(j, String(j.data));
  await rememberState(ctx, files);
  return {
    loadTime: Number(j.load),
    startTime: Number(j.start),
    ...files,
    pendingRestart: (j.pending as string[]) ?? [],
    hbaErrors: (j.hba_errors as string[]) ?? [],
    confErrors: (j.conf_errors as string[]) ?? [],
  };
}
