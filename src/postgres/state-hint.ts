/**
 * What this run last saw of a host's server configuration (the files it reads, its TLS files): from
 * discovery, then from every server state read. A hint of what the next state will name, for the
 * questions asked ahead of the state itself (src/modules/pg-service/module.ts); never an answer.
 */
import { isAbsolute, join } from 'node:path';
import type { PlanContext } from '../lib/plan-types.js';

export interface StateHint {
  ssl: boolean;
  /** absolute paths ('' when unset) */
  certFile: string;
  keyFile: string;
  caFile: string;
  crlFile: string;
  /** every config file in use: postgresql.conf, its includes, pg_hba.conf, pg_ident.conf */
  configFiles: string[];
}

const box = (ctx: Pick<PlanContext, 'memoStable'>) => ctx.memoStable('postgres:state-hint', () => Promise.resolve<{ hint?: StateHint }>({}));

export async function rememberState(ctx: Pick<PlanContext, 'memoStable'>, hint: StateHint): Promise<void> {
  (await box(ctx)).hint = hint;
}

export async function stateHint(ctx: Pick<PlanContext, 'memoStable'>): Promise<StateHint | undefined> {
  return (await box(ctx)).hint;
}

/** The hint's fields as the state query and discovery's settings query answer them (ssl_* paths may be relative: against the data directory). */
export function hintFromJson(j: Record<string, unknown>, dataDir: string): StateHint {
  const abs = (p: unknown) => (typeof p === 'string' && p !== '' ? (isAbsolute(p) ? p : join(dataDir, p)) : '');
  return {
    ssl: j.ssl === 'on',
    certFile: abs(j.cert),
    keyFile: abs(j.key),
    caFile: abs(j.ca),
    crlFile: abs(j.crl),
    configFiles: ((j.files as string[] | null) ?? []).filter(Boolean),
  };
}

/** The settings both queries ask for the hint (json_build_object pairs). */
export const HINT_SQL_FIELDS = `'ssl', current_setting('ssl'),
  'cert', current_setting('ssl_cert_file'),
  'key', current_setting('ssl_key_file'),
  'ca', current_setting('ssl_ca_file'),
  'crl', current_setting('ssl_crl_file'),
  'files', (select json_agg(distinct f) from (
      select sourcefile as f from pg_file_settings where sourcefile is not null
      union select current_setting('config_file') union select current_setting('hba_file')
      union select current_setting('ident_file')) x)`;
