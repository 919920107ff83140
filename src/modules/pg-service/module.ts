/**
 * restart (YAML name): reload or restart PostgreSQL and PROVE the result.
 *
 * Meant as a handler (notified by gencert / lineinfile / pg_hba), but safe as
 * a plain task because it decides for itself whether anything needs loading:
 *  - a config or TLS file changed after pg_conf_load_time() (mtimes, on the
 *    server's own clock), or
 *  - with ssl on, the server presents another certificate than ssl_cert_file
 *    (an earlier reload failed, or someone replaced the files), or
 *  - restarted: a restart-only setting is pending; or `force`.
 * Nothing to load -> ok, no change: a second run reports changed=0.
 * In --check the same question is asked of the files as earlier tasks would
 * have left them (the overlay) against the files on disk.
 *
 * SSL settings are sighup since PostgreSQL 10, so `reloaded` is the default
 * and needs no downtime; `restarted` is there for restart-only settings.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { defineModule, type Change, type ExecAction, type PlanContext } from '../../core/types.js';
import { pgServer, userVar, type PgServer } from '../../facts/postgres.js';
import { sh } from '../../remote/sh.js';
import { fingerprint, servedCert } from '../../tls/served-cert.js';
import { secretString, yamlBool } from '../common.js';
import { serviceCommand } from './service.js';
import { serverState, type ServerState } from './state.js';
import { connectTarget, verifyServer } from './verify.js';

const args = z
  .object({
    state: z.enum(['reloaded', 'restarted']).default('reloaded'),
    force: yamlBool.default(false),
    /** The role whose password login over TLS is checked after the reload (the seed's admin role). */
    login_user: z.string().min(1).default('webadmin'),
    login_password: secretString.optional(),
    login_db: z.string().min(1).default('postgres'),
    /** channel_binding=require: the login must be SCRAM (md5 cannot do channel binding). */
    require_scram: yamlBool.default(true),
    /** CA file for sslrootcert (default: the server's ssl_ca_file). */
    ca_file: z.string().min(1).optional(),
    /** Name checked by verify-full (default: ansible_host, else the inventory name). */
    verify_host: z.string().min(1).optional(),
    wait_seconds: z.coerce.number().positive().default(60),
  })
  .strict();

/**
 * Modification times (epoch seconds) of the files whose change needs a reload. Nanoseconds when the
 * host's stat can print them (%.9Y); an old coreutils prints whole seconds, then a file written in the
 * same second as the last reload counts as newer (one reload too many, never one too few).
 */
// Run as the server's OS user: these files sit in directories that user controls, and it reads them
// anyway; a link it planted then shows root nothing more than the user could see itself.
async function mtimes(ctx: PlanContext, files: string[], user: string): Promise<Map<string, number>> {
  const parse = (out: string, bump: number) => {
    const m = new Map<string, number>();
    for (const line of out.split('\n')) {
      const i = line.indexOf(' ');
      const t = Number(line.slice(0, i));
      if (i > 0 && Number.isFinite(t)) m.set(line.slice(i + 1), t + bump);
    }
    return m;
  };
  const fine = parse((await ctx.query(sh`stat -L -c ${'%.9Y %n'} -- ${files}`, { okCodes: [0, 1], user })).stdout.toString('utf8'), 0);
  if (fine.size > 0 || files.length === 0) return fine;
  return parse((await ctx.query(sh`stat -L -c ${'%Y %n'} -- ${files}`, { okCodes: [0, 1], user })).stdout.toString('utf8'), 0.999999999);
}

/** --check: files an earlier task of this run would have changed (the overlay differs from the disk). */
async function changedInOverlay(ctx: PlanContext, files: string[], user: string): Promise<string[]> {
  const out = (await ctx.query(sh`sha256sum -- ${files}`, { okCodes: [0, 1], user })).stdout.toString('utf8');
  const onDisk = new Map(out.split('\n').filter(Boolean).map((l) => [l.slice(66), l.slice(0, 64)] as const));
  const changed: string[] = [];
  for (const f of files) {
    const planned = await ctx.readFile(f);
    const hash = planned ? createHash('sha256').update(planned.content).digest('hex') : undefined;
    if (hash !== onDisk.get(f)) changed.push(f);
  }
  return changed;
}

async function reasons(ctx: PlanContext, s: PgServer, st: ServerState, verifyHost?: string): Promise<string[]> {
  const out: string[] = [];
  // the key file is never read back to the controller, not even in --check (gencert plans keys, it does not write them there)
  const files = [...new Set([...st.configFiles, st.certFile, st.caFile, st.crlFile].filter(Boolean))];
  if (ctx.check) {
    for (const f of await changedInOverlay(ctx, files, s.osUser)) out.push(`${f} would change`);
  } else {
    const times = await mtimes(ctx, [...files, ...(st.keyFile ? [st.keyFile] : [])], s.osUser);
    for (const [f, t] of times) if (t > st.loadTime) out.push(`${f} changed since the last reload`);
  }
  if (st.ssl && st.certFile) {
    const file = await ctx.readFile(st.certFile, { user: s.osUser });
    const t = connectTarget(ctx, s, verifyHost);
    const served = await servedCert(ctx, t.addr, s.port, String(userVar(ctx, 'ansible_host') ?? ctx.host));
    let want: string | null = null;
    try {
      want = file ? fingerprint(file.content.toString('utf8')) : null;
    } catch {
      want = null;
    }
    if (!served.pem) out.push('ssl is on but the server does not accept TLS');
    else if (want && fingerprint(served.pem) !== want) out.push(`the server presents another certificate than ${st.certFile}`);
  }
  return out;
}

export const restart = defineModule({
  name: 'restart',
  description: 'reload/restart PostgreSQL when needed, then verify TLS and a SCRAM login',
  args,
  async plan(ctx, a): Promise<Change[]> {
    const s = await pgServer(ctx);
    const st = await serverState(ctx, s);
    const why = a.force ? ['forced'] : await reasons(ctx, s, st, a.verify_host);
    if (a.state === 'restarted' && st.pendingRestart.length) why.push(`restart-only settings changed: ${st.pendingRestart.join(', ')}`);
    if (why.length === 0) {
      if (a.state === 'reloaded' && st.pendingRestart.length) ctx.warn(`settings that need a restart to apply: ${st.pendingRestart.join(', ')}`);
      return [];
    }
    const action = a.state === 'restarted' ? 'restart' : 'reload';
    const svc = serviceCommand(ctx, s, action);
    const timeoutMs = (a.wait_seconds + 60) * 1000;
    // A failing reload/restart command rolls the files back like a failing check: the executor
    // treats an exec followed by a verify as one guarded step.
    const exec: ExecAction = { kind: 'exec', description: svc.text, cmd: svc.cmd, user: svc.user, timeoutMs };
    return [
      {
        summary: `${ctx.check ? 'would ' : ''}${action} PostgreSQL (${svc.text}): ${why.join('; ')}`,
        actions: [
          exec,
          {
            kind: 'verify',
            description: `PostgreSQL ${action} check`,
            check: async (vctx) => {
              await verifyServer(vctx, s, st, action, a.wait_seconds, {
                user: a.login_user,
                password: a.login_password,
                db: a.login_db,
                requireScram: a.require_scram,
                caFile: a.ca_file,
                verifyHost: a.verify_host,
              });
            },
            recover: { kind: 'exec', description: `${svc.text} (with the previous files)`, cmd: svc.cmd, user: svc.user, timeoutMs },
          },
        ],
      },
    ];
  },
});
