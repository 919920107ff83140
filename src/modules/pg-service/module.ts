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
 * --check asks the very same questions: the executor answers them from the files
 * as earlier tasks would have left them (its overlay) and from the host.
 *
 * SSL settings are sighup since PostgreSQL 10, so `reloaded` is the default
 * and needs no downtime; `restarted` is there for restart-only settings.
 */
import * as z from 'zod';
import { defineModule, defineVerifier, verifyWith, type Change, type ExecAction, type PlanContext } from '../../lib/plan-types.js';
import { pgServer, userVar, type PgServer } from '../../facts/postgres.js';
import { fingerprint, servedCert } from '../../tls/served-cert.js';
import { secretString, yamlBool } from '../common.js';
import { serviceCommand } from '../../postgres/service.js';
import { serverState, stateSql, type ServerState } from '../../postgres/state.js';
import { stateHint, type StateHint } from '../../postgres/state-hint.js';
import { connectTarget, verifyServer } from '../../postgres/verify.js';

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

/** What reasons() asks of the host for a server state: the files it reads, and the certificate it should present. */
interface Questions {
  files: string[];
  /** ssl is on: the certificate file (read) and the one served (handshake) */
  certFile: string | null;
}

function questionsFor(st: StateHint): Questions {
  return { files: [...new Set([...st.configFiles, st.certFile, st.caFile, st.crlFile, st.keyFile].filter(Boolean))], certFile: st.ssl && st.certFile ? st.certFile : null };
}

const sameQuestions = (a: Questions, b: Questions) => a.certFile === b.certFile && a.files.length === b.files.length && a.files.every((f, i) => f === b.files[i]);

/**
 * The same questions in both modes: was a file the server reads changed after its last load? The executor
 * answers from its overlay (what this run planned and has not written yet: in --check everything) and from
 * the host. As the server's OS user: these files sit in directories that user controls, and it reads them
 * anyway; a link it planted shows root nothing more than the user could see itself. The key file is only
 * stat'ed, never read back to the controller. The three questions are asked together: one round trip.
 */
function ask(ctx: PlanContext, s: PgServer, q: Questions, verifyHost?: string) {
  const target = q.certFile ? connectTarget(ctx, s, verifyHost) : null;
  return Promise.all([
    ctx.stat(q.files, { user: s.osUser }),
    q.certFile ? ctx.readFile(q.certFile, { user: s.osUser }) : null,
    target ? servedCert(ctx, target.addr, s.port, String(userVar(ctx, 'ansible_host') ?? ctx.host)) : null,
  ]);
}

async function reasons(ctx: PlanContext, s: PgServer, verifyHost?: string): Promise<{ st: ServerState; why: string[] }> {
  // Asked ahead, with the state itself, for the files the server named when this run last asked
  // (discovery, or the last state read): one round trip instead of two when they are the same.
  const seen = await stateHint(ctx);
  const guess = seen && questionsFor(seen);
  const early = guess && ask(ctx, s, guess, verifyHost);
  early?.catch(() => undefined); // (used only when the state names the same files)
  const st = await serverState(ctx, s);
  const q = questionsFor(st);
  // (a file this run wrote and did not commit yet counts as changed, with the same words: the plan must
  // not depend on whether the executor has written it yet)
  const [stats, file, served] = await (early && guess && sameQuestions(guess, q) ? early : ask(ctx, s, q, verifyHost));
  const out: string[] = [];
  for (const [f, t] of stats) if (t.pending || t.mtime > st.loadTime) out.push(`${f} changed since the last reload`);
  if (q.certFile && served) {
    let want: string | null = null;
    try {
      want = file ? fingerprint(file.content.toString('utf8')) : null;
    } catch {
      want = null;
    }
    if (!served.pem) out.push('ssl is on but the server does not accept TLS');
    else if (want && fingerprint(served.pem) !== want) out.push(`the server presents another certificate than ${st.certFile}`);
  }
  return { st, why: out };
}

/** After the reload/restart: the server loaded the new files, serves them, and lets the login role in. */
const serverVerified = defineVerifier(
  'restart.server',
  async (ctx, p: { server: PgServer; state: ServerState; action: 'reload' | 'restart'; waitSeconds: number; login: Parameters<typeof verifyServer>[5] }) => {
    await verifyServer(ctx, p.server, p.state, p.action, p.waitSeconds, p.login);
    // the server loaded and serves what its files say: until this run changes the host again, a
    // reload has nothing to load (the handler notified by the same edits, after "Serve TLS now")
    await ctx.memoUntilChange?.(PROVEN, () => Promise.resolve(true));
  },
);

/** memoUntilChange's key: a reload or restart was proven and nothing changed on the host since. */
const PROVEN = 'restart:proven';

export const restart = defineModule({
  name: 'restart',
  description: 'reload/restart PostgreSQL when needed, then verify TLS and a SCRAM login',
  args,
  verifiers: [serverVerified],
  sql: (_a, server) => [stateSql(server.version)],
  async plan(ctx, a): Promise<Change[]> {
    const s = await pgServer(ctx);
    // (asks nothing of the host; in --check no check runs, so nothing was proven)
    if (a.state === 'reloaded' && !a.force && (await ctx.memoUntilChange?.(PROVEN, () => Promise.resolve(false)))) return [];
    const { st, why } = a.force ? { st: await serverState(ctx, s), why: ['forced'] } : await reasons(ctx, s, a.verify_host);
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
    // (a reload keeps the postmaster: what discovery found about it still holds)
    const exec: ExecAction = { kind: 'exec', description: svc.text, cmd: svc.cmd, user: svc.user, timeoutMs, leavesAlone: action === 'reload' ? ['files', 'server'] : ['files'] };
    return [
      {
        summary: `${action} PostgreSQL (${svc.text}): ${why.join('; ')}`,
        actions: [
          exec,
          verifyWith(
            serverVerified,
            {
              server: s,
              state: st,
              action,
              waitSeconds: a.wait_seconds,
              login: { user: a.login_user, password: a.login_password, db: a.login_db, requireScram: a.require_scram, caFile: a.ca_file, verifyHost: a.verify_host },
            },
            {
              description: `PostgreSQL ${action} check`,
              recover: { kind: 'exec', description: `${svc.text} (with the previous files)`, cmd: svc.cmd, user: svc.user, timeoutMs },
            },
          ),
        ],
      },
    ];
  },
});
