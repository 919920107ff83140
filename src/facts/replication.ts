/**
 * Facts about a host's part in streaming replication, asked of the RUNNING server:
 *  - is it a standby, and where is its primary_conninfo set: pg_file_settings names the file
 *    and line the server reads it from right now (postgresql.auto.conf as `pg_basebackup -R`
 *    writes it, postgresql.conf, or an included file); before PostgreSQL 12 it is recovery.conf;
 *  - its walreceiver (pg_stat_wal_receiver): streaming or not, and the conninfo it really uses;
 *  - the walsenders it serves (pg_stat_replication joined with pg_stat_ssl), for cascades too.
 */
import { TaskError } from '../lib/errors.js';
import type { PlanContext } from '../lib/plan-types.js';
import { pgServer, psqlQuery, type PgServer } from './postgres.js';

/**
 * How a PostgreSQL major version takes a new primary_conninfo:
 *  - 13+: a setting reloaded on SIGHUP; the startup process restarts the walreceiver itself;
 *  - 12: a setting, but read only at server start (postmaster context): restart;
 *  - up to 11: a line of recovery.conf in the data directory, read at start: restart.
 */
export interface ConninfoPolicy {
  location: 'setting' | 'recovery.conf';
  apply: 'reload' | 'restart';
}

export function conninfoPolicy(versionNum: number): ConninfoPolicy {
  if (versionNum >= 130000) return { location: 'setting', apply: 'reload' };
  if (versionNum >= 120000) return { location: 'setting', apply: 'restart' };
  return { location: 'recovery.conf', apply: 'restart' };
}

export interface WalReceiver {
  pid: number;
  status: string;
  /** The conninfo the walreceiver connected with (passwords obfuscated by the server). */
  conninfo: string;
  senderHost: string;
  senderPort: number;
  /** The last position the walreceiver reported to its sender ('' when the server shows none). */
  latestEndLsn: string;
}

export interface StandbyFacts {
  inRecovery: boolean;
  /** Where the server reads primary_conninfo from; null when it is not set in any file. */
  conninfoSource: { file: string; line: number } | null;
  /** primary_conninfo as the server uses it now ('' when unset). */
  conninfo: string;
  /** Set on the command line or otherwise outside a file pgtls could edit. */
  conninfoOrigin: string;
  slotName: string;
  walReceiver: WalReceiver | null;
  /** pg_last_wal_replay_lsn() >= the last position the walreceiver flushed (or nothing to replay). */
  replayLsn: string;
  flushedLsn: string;
}

const STANDBY_SQL = (recoveryConf: boolean) => `select json_build_object(
  'in_recovery', pg_is_in_recovery(),
  ${
    recoveryConf
      ? `'conninfo', '', 'origin', '', 'file', null, 'line', null, 'slot', '',`
      : `'conninfo', current_setting('primary_conninfo'),
  'origin', (select source from pg_settings where name = 'primary_conninfo'),
  'file', (select sourcefile from pg_file_settings where name = 'primary_conninfo' order by seqno desc limit 1),
  'line', (select sourceline from pg_file_settings where name = 'primary_conninfo' order by seqno desc limit 1),
  'slot', current_setting('primary_slot_name'),`
  }
  'wr', (select to_jsonb(w) from pg_stat_wal_receiver w limit 1),
  'replay', case when pg_is_in_recovery() then pg_last_wal_replay_lsn() end);
`;

/** An LSN ("16/B374D848") as a number, for comparing two; null when it is not one. */
export function lsnValue(lsn: string): bigint | null {
  const m = /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/i.exec(lsn.trim());
  return m ? (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`) : null;
}

/** What standbyFacts asks a server of this version (ModuleDef.sql declares it). */
export const standbySql = (versionNum: number) => STANDBY_SQL(conninfoPolicy(versionNum).location === 'recovery.conf');

export async function standbyFacts(ctx: PlanContext, s?: PgServer): Promise<StandbyFacts> {
  const server = s ?? (await pgServer(ctx));
  const raw = (await psqlQuery(ctx, server, standbySql(server.versionNum))).trim();
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    throw new TaskError(`unexpected answer from PostgreSQL on ${ctx.host}: ${raw.slice(0, 200)}`);
  }
  const wr = j.wr as Record<string, unknown> | null;
  const facts: StandbyFacts = {
    inRecovery: j.in_recovery === true,
    conninfoSource: typeof j.file === 'string' ? { file: j.file, line: Number(j.line) } : null,
    conninfo: String(j.conninfo ?? ''),
    conninfoOrigin: String(j.origin ?? ''),
    slotName: String(j.slot ?? ''),
    walReceiver: wr
      ? {
          pid: Number(wr.pid),
          status: String(wr.status ?? ''),
          conninfo: String(wr.conninfo ?? ''),
          senderHost: String(wr.sender_host ?? ''),
          senderPort: Number(wr.sender_port ?? 0),
          latestEndLsn: String(wr.latest_end_lsn ?? ''),
        }
      : null,
    replayLsn: String(j.replay ?? ''),
    // flushed_lsn since PostgreSQL 13, received_lsn before (the row is taken whole: columns differ by version)
    flushedLsn: String(wr?.flushed_lsn ?? wr?.received_lsn ?? ''),
  };
  if (conninfoPolicy(server.versionNum).location === 'recovery.conf' && facts.inRecovery) {
    facts.conninfoSource = { file: `${server.dataDirectory}/recovery.conf`, line: 0 };
  }
  return facts;
}

export interface WalSender {
  pid: number;
  applicationName: string;
  clientAddr: string;
  state: string;
  ssl: boolean;
}

export const WALSENDERS_SQL = `select coalesce(json_agg(json_build_object('pid', r.pid, 'app', r.application_name, 'addr', host(r.client_addr),
         'state', r.state, 'ssl', coalesce(l.ssl, false)) order by r.pid), '[]')
       from pg_stat_replication r left join pg_stat_ssl l on l.pid = r.pid where r.client_addr is not null;\n`;

/** Every walsender connected over TCP (a Unix-socket stream is not in transit). */
export async function walSenders(ctx: PlanContext, s: PgServer): Promise<WalSender[]> {
  const raw = (await psqlQuery(ctx, s, WALSENDERS_SQL)).trim();
  return (JSON.parse(raw) as Record<string, unknown>[]).map((w) => ({
    pid: Number(w.pid),
    applicationName: String(w.app ?? ''),
    clientAddr: String(w.addr ?? ''),
    state: String(w.state ?? ''),
    ssl: w.ssl === true,
  }));
}

/** The on-demand facts this file contributes to the registry (src/facts/index.ts). */
export const replicationFacts: Record<string, { placeholder: unknown; provide(ctx: PlanContext): Promise<unknown> }> = {
  /** The file the server reads primary_conninfo from ('' on a primary). */
  pg_conninfo_file: {
    placeholder: '/var/lib/postgresql/15/main/postgresql.auto.conf',
    provide: async (ctx) => (await standbyFacts(ctx)).conninfoSource?.file ?? '',
  },
  pg_is_standby: { placeholder: false, provide: async (ctx) => (await standbyFacts(ctx)).inRecovery },
};
