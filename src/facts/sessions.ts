/**
 * Who is connected to a PostgreSQL server over TCP, and with or without TLS
 * (pg_stat_activity ⨝ pg_stat_ssl, asked as the server's OS user over its Unix socket).
 * Unix-socket sessions (client_addr null) are not in transit and are never listed.
 */
import net from 'node:net';
import type { PlanContext } from '../lib/plan-types.js';
import { sh } from '../lib/sh.js';
import { renderValue } from '../template/render.js';
import { psqlQuery, type PgServer } from './postgres.js';

export interface TcpSession {
  pid: number;
  client_addr: string;
  usename: string | null;
  application_name: string;
  /** 'client backend', 'walsender', … */
  backend_type: string;
  /** ISO timestamp: with the pid, names the session (a pid alone may be reused) */
  backend_start: string;
  ssl: boolean;
}

/** Every TCP session but this one (ModuleDef.sql declares it as tcpSessions asks it). */
export const SESSIONS_SQL = `select coalesce(json_agg(json_build_object('pid', a.pid, 'client_addr', host(a.client_addr), 'usename', a.usename,
    'application_name', a.application_name, 'backend_type', a.backend_type, 'backend_start', a.backend_start,
    'ssl', coalesce(l.ssl, false)) order by a.pid), '[]')
  from pg_stat_activity a left join pg_stat_ssl l on l.pid = a.pid
  where a.client_addr is not null and a.pid <> pg_backend_pid();
`;

export async function tcpSessions(ctx: PlanContext, s: PgServer): Promise<TcpSession[]> {
  return JSON.parse((await psqlQuery(ctx, s, SESSIONS_SQL, { independentOfFiles: true })).trim()) as TcpSession[];
}

/** One line per (address, user, application) with a count: a pool of 200 connections is one entry. */
export function describeSessions(list: readonly TcpSession[]): string {
  const groups = new Map<string, number>();
  for (const x of list) {
    const k = `${x.client_addr} user ${x.usename ?? '?'}${x.application_name ? ` application_name ${x.application_name}` : ''}`;
    groups.set(k, (groups.get(k) ?? 0) + 1);
  }
  return [...groups].map(([k, n]) => `${n}× ${k}`).join('; ');
}

/**
 * The addresses other inventory hosts connect from, as this host sees them: each one's
 * ansible_host (rendered with that host's variables), else its name; names are resolved ON this
 * host (getent), since that is the resolver its clients' addresses would come from.
 */
export async function inventoryHostAddresses(ctx: PlanContext, names: readonly string[]): Promise<string[]> {
  const hostvars = (ctx.vars['hostvars'] ?? {}) as Record<string, Record<string, unknown>>;
  const out = new Set<string>();
  for (const name of names) {
    const hv = hostvars[name] ?? {};
    let addr: string = name;
    try {
      const raw = hv['ansible_host'];
      if (raw !== undefined && raw !== null && raw !== '') addr = String(renderValue(raw, { vars: hv, env: process.env }));
    } catch {
      addr = name;
    }
    if (net.isIP(addr)) {
      out.add(addr);
      continue;
    }
    const r = await ctx.query(sh`getent ahosts ${addr}`, { okCodes: [0, 1, 2], independentOfFiles: true });
    for (const line of r.stdout.toString('utf8').split('\n')) {
      const ip = line.split(/\s+/)[0] ?? '';
      if (net.isIP(ip)) out.add(ip);
    }
  }
  return [...out];
}
