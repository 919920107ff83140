/**
 * THE way pgtls runs SQL on a host's own PostgreSQL (facts, role changes, status): one helper, so
 * every psql on the host logs in the same way, whatever the server's `local` rules say.
 *
 *  - `os-user`: psql as the server's OS user over the Unix socket, no password (`peer`, `trust`,
 *    `ident` local rules: Debian's default);
 *  - `password`: when the local rules want a password (`md5`, `scram-sha-256`, `password`: the stock
 *    rule on many RHEL and platform images), psql logs in as `webadmin` with `webadmin_password`.
 *    The password is the first line of psql's stdin, read by the shell into psql's own environment
 *    (PGPASSWORD of a process of the login/become user, readable by root and that user only: never
 *    argv, never a process of the database's OS user, which may be hostile), and the SQL follows it.
 *
 * Which one applies is found once per host (a `select 1` each way, os-user first) and said once.
 * Logins that check what clients see (over TCP, through Pgpool-II) use passwordClientCommand here.
 */
import { TaskError } from '../lib/errors.js';
import { Secret, redact } from '../lib/secret.js';
import type { PlanContext } from '../lib/plan-types.js';
import { RemoteCommandError } from '../lib/transport.js';
import { sh, type ShellCommand } from '../lib/sh.js';

export type SqlLogin = { kind: 'os-user'; osUser: string } | { kind: 'password'; role: string; password: Secret };

/** Where the server listens locally and which psql talks to it. */
export interface LocalServer {
  binDir: string;
  socketDir: string;
  port: number;
  osUser: string;
}

/** The role a password login uses (the seed's administrator). */
export const PASSWORD_LOGIN_ROLE = 'webadmin';

/** psql that never prompts, never reads ~/.psqlrc or ~/.pgpass, stops at the first error; SQL comes on stdin. */
function psql(s: Omit<LocalServer, 'osUser'>, db: string, login: SqlLogin): ShellCommand {
  const bin = s.binDir ? `${s.binDir}/psql` : 'psql';
  const conn = sh`-h ${s.socketDir} -p ${s.port} -d ${db}`;
  // cd /: run from root's cwd as another user, psql would complain that it cannot access it
  if (login.kind === 'os-user') return sh`cd / && exec ${bin} -X -A -t -q -w -v ON_ERROR_STOP=1 ${conn}`;
  return sh`cd / && { IFS= read -r PGPASSWORD || [ -n "$PGPASSWORD" ]; } && export PGPASSWORD && PGPASSFILE=/dev/null && export PGPASSFILE && unset PGSERVICE PGSERVICEFILE && exec ${bin} -X -A -t -q -w -v ON_ERROR_STOP=1 ${conn} -U ${login.role}`;
}

// A client login with a password (the checks that log in like a client would, over TCP, through
// Pgpool-II): the password is the first line of stdin, into psql's own environment only; no
// ~/.pgpass, no service file; one query with -c.
// A bare \`psql\` that is Debian's pg_wrapper (a Perl program: ~60 ms of CPU before psql even starts,
// and a Pgpool-II host runs several such logins in one round trip) becomes the newest installed
// client, the one pg_wrapper itself picks for a host that is no local cluster (psql talks to older
// servers). The candidates are root's package paths, never one another user controls.
const CLIENT = `cd / || exit 1
IFS= read -r PGPASSWORD || [ -n "$PGPASSWORD" ]
export PGPASSWORD
PGPASSFILE=/dev/null; export PGPASSFILE
unset PGSERVICE PGSERVICEFILE
bin=$1
if [ "$bin" = psql ] && command -v readlink >/dev/null 2>&1; then
  case $(readlink -f "$(command -v psql)" 2>/dev/null) in
  */pg_wrapper)
    newest=0
    for b in /usr/lib/postgresql/*/bin/psql; do
      v=\${b#/usr/lib/postgresql/} v=\${v%%/*} v=\${v%%.*}
      case $v in '' | *[!0-9]*) continue ;; esac
      if [ -x "$b" ] && [ "$v" -gt "$newest" ]; then newest=$v bin=$b; fi
    done
    ;;
  esac
fi
exec "$bin" -X -A -t -q -w -d "$2" -c "$3"`;

/** psql `bin` logging in with `conninfo` and a password sent as stdin (the caller sends the Secret), running `sql`. */
export function passwordClientCommand(bin: string, conninfo: string, sql: string): ShellCommand {
  return sh`sh -c ${CLIENT} pgtls-login ${bin} ${conninfo} ${sql}`;
}

/** The command, the OS user it runs as and its stdin for SQL run through `login`. */
export function sqlInvocation(
  s: Omit<LocalServer, 'osUser'>,
  login: SqlLogin,
  sql: string | Secret,
  db = 'postgres',
): { cmd: ShellCommand; user: string | undefined; stdin: string | Secret } {
  if (login.kind === 'os-user') return { cmd: psql(s, db, login), user: login.osUser, stdin: sql };
  // the password line and the SQL travel together: the whole stdin is a secret (the SQL one where it is)
  return { cmd: psql(s, db, login), user: undefined, stdin: Secret.of(login.password, '\n', sql) };
}

/**
 * Read-only SQL (never a secret) through `login`. As the OS user it needs no stdin: the SQL is psql's
 * `-c` argument (visible in /proc like any query in pg_stat_activity, and nothing in it is secret),
 * so the executor can send it in a round trip with other commands, or with the lock when a task
 * declared it (ModuleDef.sql). One statement, or several whose last is the one answer (psql < 15
 * prints only the last result of a -c string). A password login keeps the password and SQL on stdin.
 */
export function sqlReadInvocation(
  s: Omit<LocalServer, 'osUser'>,
  login: SqlLogin,
  sql: string,
  db = 'postgres',
): { cmd: ShellCommand; user: string | undefined; stdin: string | Secret | undefined } {
  if (login.kind !== 'os-user') return sqlInvocation(s, login, sql, db);
  return { cmd: sh`${psql(s, db, login)} -c ${sql}`, user: login.osUser, stdin: undefined };
}

/** How the local rules want a client to authenticate, from psql's error (null: not an authentication problem). */
export function authFailure(stderr: string): 'password-needed' | 'password-rejected' | 'peer-rejected' | 'no-rule' | null {
  if (/fe_sendauth: no password supplied|password is required/i.test(stderr)) return 'password-needed';
  if (/password authentication failed/i.test(stderr)) return 'password-rejected';
  if (/(peer|ident) authentication failed/i.test(stderr)) return 'peer-rejected';
  if (/no pg_hba\.conf entry/i.test(stderr)) return 'no-rule';
  return null;
}

/** A one-line summary of a failed psql (secrets removed). */
function why(e: unknown, secrets: Secret[]): string {
  if (e instanceof RemoteCommandError) return redact(e.message, secrets);
  return redact(e instanceof Error ? e.message : String(e), secrets);
}

function passwordOf(ctx: PlanContext): Secret | undefined {
  const v = ctx.vars['webadmin_password'];
  if (v instanceof Secret) return v;
  if (typeof v === 'string' && v !== '') return new Secret(v);
  return undefined;
}

async function trySelect(ctx: PlanContext, s: LocalServer, login: SqlLogin): Promise<unknown> {
  const inv = sqlInvocation(s, login, 'select 1;\n');
  try {
    await ctx.query(inv.cmd, { user: inv.user, stdin: inv.stdin, timeoutMs: 30_000, independentOfFiles: true });
    return null;
  } catch (e) {
    return e;
  }
}

/**
 * How SQL logs in on this host, found once per run (the rules' method does not change while a run
 * switches `host` rules to TLS: pg_hba leaves `local` rules alone). `password` is read from
 * `webadmin_password` by the caller (a template may need rendering).
 */
export function sqlLogin(ctx: PlanContext, s: LocalServer, password: Secret | undefined = passwordOf(ctx)): Promise<SqlLogin> {
  return ctx.memoStable(loginKey(s), () => decideLogin(ctx, s, password));
}

const loginKey = (s: LocalServer) => `pgtls:sql-login:${s.socketDir}:${s.port}`;

/** The OS user was seen to log in (discovery asked as it): that is this host's SQL login for the run. */
export function osUserLogsIn(ctx: PlanContext, s: LocalServer): Promise<SqlLogin> {
  return ctx.memoStable(loginKey(s), () => Promise.resolve<SqlLogin>({ kind: 'os-user', osUser: s.osUser }));
}

/**
 * sqlLogin, and the answer of read-only `sql` through it, in ONE command when the OS user gets in
 * without a password (the usual case): `sql` itself is the trial login instead of `select 1`.
 * When it fails, sqlLogin's own diagnosis decides (the same messages, the same choice) and `query`
 * asks again through the login it chose.
 */
export async function sqlLoginAndQuery(
  ctx: PlanContext,
  s: LocalServer,
  password: Secret | undefined,
  sql: string,
  query: (login: SqlLogin) => Promise<string>,
): Promise<{ login: SqlLogin; stdout: string }> {
  let answer: string | undefined;
  const login = await ctx.memoStable(loginKey(s), async () => {
    const asOsUser: SqlLogin = { kind: 'os-user', osUser: s.osUser };
    const inv = sqlReadInvocation(s, asOsUser, sql);
    try {
      answer = (await ctx.query(inv.cmd, { user: inv.user, timeoutMs: 30_000, independentOfFiles: true })).stdout.toString('utf8');
      return asOsUser;
    } catch (e) {
      return decideLogin(ctx, s, password, e); // that failure is the OS user's trial login
    }
  });
  return { login, stdout: answer ?? (await query(login)) };
}

/** `osUserFailure`: how the OS user's trial login already failed (else it is tried here). */
async function decideLogin(ctx: PlanContext, s: LocalServer, password: Secret | undefined, osUserFailure?: unknown): Promise<SqlLogin> {
  const asOsUser: SqlLogin = { kind: 'os-user', osUser: s.osUser };
  const first = osUserFailure ?? (await trySelect(ctx, s, asOsUser));
  if (first === null) return asOsUser;
  const firstWhy = why(first, []);
  const stderr = first instanceof RemoteCommandError ? first.result.stderr.toString('utf8') : '';
  const kind = authFailure(stderr);
  if (kind === null) throw new TaskError(`psql on ${ctx.host} failed: ${firstWhy}`);
  if (!password)
    throw new TaskError(
      `SQL on ${ctx.host}: the local rules of pg_hba.conf refuse OS user ${s.osUser} without a password (${firstWhy}); ` +
        `set webadmin_password so that pgtls logs in as ${PASSWORD_LOGIN_ROLE}, or allow peer for ${s.osUser}`,
    );
  const withPassword: SqlLogin = { kind: 'password', role: PASSWORD_LOGIN_ROLE, password };
  const second = await trySelect(ctx, s, withPassword);
  if (second !== null)
    throw new TaskError(
      `SQL on ${ctx.host}: neither OS user ${s.osUser} without a password (${firstWhy}) nor ${PASSWORD_LOGIN_ROLE} with webadmin_password ` +
        `(${why(second, [password])}) can log in over ${s.socketDir}; check webadmin_password and the local rules of pg_hba.conf`,
    );
  ctx.warn(
    `SQL on ${ctx.host}: the local rules of pg_hba.conf want a password, so pgtls logs in as ${PASSWORD_LOGIN_ROLE} with webadmin_password over ${s.socketDir} (password on stdin)`,
  );
  return withPassword;
}

/** A human description of a login, for messages. */
export function describeLogin(l: SqlLogin): string {
  return l.kind === 'os-user' ? `OS user ${l.osUser} without a password (peer/trust)` : `${l.role} with webadmin_password`;
}
