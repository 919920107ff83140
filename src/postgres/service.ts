/**
 * How to reload/restart PostgreSQL on a host, from the pg_service fact:
 * systemd when systemd is PID 1 and the postmaster runs in a unit's cgroup,
 * Debian's pg_ctlcluster for /etc/postgresql/VER/CLUSTER layouts, else plain
 * pg_ctl as the OS user. `pg_reload_cmd` / `pg_restart_cmd` (shell, run as
 * root or the login user) override all of this, like Ansible's `validate`.
 */
import type { PlanContext } from '../lib/plan-types.js';
import { userVar, type PgServer } from '../facts/postgres.js';
import { sh, type ShellCommand } from '../lib/sh.js';

export interface ServiceCommand {
  cmd: ShellCommand;
  /** OS user to run as (pg_ctl must run as the cluster owner); undefined = the task's user */
  user?: string;
  /** what the recap says */
  text: string;
}

export function serviceCommand(ctx: PlanContext, s: PgServer, action: 'reload' | 'restart'): ServiceCommand {
  const custom = userVar(ctx, action === 'reload' ? 'pg_reload_cmd' : 'pg_restart_cmd');
  if (custom !== undefined) return { cmd: sh`sh -c ${String(custom)}`, text: String(custom) };
  const svc = s.service;
  switch (svc.kind) {
    case 'systemd':
      return { cmd: sh`systemctl ${action} ${svc.unit}`, text: `systemctl ${action} ${svc.unit}` };
    case 'pg_ctlcluster':
      return { cmd: sh`pg_ctlcluster ${svc.version} ${svc.cluster} ${action}`, text: `pg_ctlcluster ${svc.version} ${svc.cluster} ${action}` };
    case 'pg_ctl':
      // -l: the restarted postmaster must not keep our SSH channel's stdout open (and its early log goes somewhere)
      return action === 'reload'
        ? { cmd: sh`${svc.pgCtl} reload -s -D ${svc.dataDir}`, user: s.osUser, text: `pg_ctl reload -D ${svc.dataDir}` }
        : {
            cmd: sh`${svc.pgCtl} restart -s -w -t 120 -m fast -D ${svc.dataDir} -l ${`${svc.dataDir}/pgtls-pg_ctl.log`}`,
            user: s.osUser,
            text: `pg_ctl restart -D ${svc.dataDir}`,
          };
  }
}
