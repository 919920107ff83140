/**
 * reset_password: gives roles a SCRAM-SHA-256 password (normally the SAME
 * password they have, so clients keep working after the md5 -> SCRAM switch).
 *
 * The verifier is computed on the controller (src/crypto/scram.ts) and sent as
 * `ALTER ROLE "name" PASSWORD 'SCRAM-SHA-256$...'` on psql's stdin, as the
 * database OS user over the local socket: the plain password reaches no
 * command line, no server log and no pg_stat_statements entry (PostgreSQL
 * stores a verifier as it is, whatever password_encryption says).
 *
 * Idempotent: rolpassword is read from pg_authid and recomputed with its own
 * salt; when it already is this password, nothing happens.
 *
 * On a streaming standby pg_authid is read-only and comes from the primary:
 * we wait (read-only, bounded) for the primary's change to replay instead of
 * failing, and warn when it does not arrive.
 *
 * "Passwords SCRAM before rules demand SCRAM" (README "Ordering constraints"): install.yaml runs
 * this task before pg_hba in the same play (the runner stops a host at its first failure), and
 * reports the md5-stored roles it could not re-hash, which the scram-sha-256 rules will refuse.
 */
import * as z from 'zod';
import { TaskError } from '../../lib/errors.js';
import { Secret } from '../../lib/secret.js';
import { defineModule, defineVerifier, verifyWith, type Change, type PlanContext } from '../../lib/plan-types.js';
import { buildScramVerifier, scramVerifierMatches, verifierType } from '../../crypto/scram.js';
import { pgServer, psqlAction, psqlQuery, userVar, type PgServer } from '../../facts/postgres.js';
import { secretString, yamlBool } from '../common.js';
import { retryUntil } from '../../lib/retry.js';

const user = z.object({ name: z.string().min(1), password: secretString }).strict();
const args = z
  .object({
    name: z.string().min(1).optional(),
    password: secretString.optional(),
    users: z.array(user).nullable().default([]),
    /** Warn about login roles still stored as md5 that this task (and pgtls_users) does not reset. */
    warn_md5: yamlBool.default(false),
    /** On a standby: how long to wait for the primary's password change to replay. */
    replay_wait_seconds: z.coerce.number().min(0).default(30),
  })
  .strict()
  .superRefine((a, c) => {
    if ((a.name === undefined) !== (a.password === undefined))
      c.addIssue({ code: 'custom', message: 'name and password go together' });
    if (a.password && a.password.reveal() === '') c.addIssue({ code: 'custom', path: ['password'], message: 'must not be empty' });
    for (const [i, u] of (a.users ?? []).entries())
      if (u.password.reveal() === '') c.addIssue({ code: 'custom', path: ['users', i, 'password'], message: 'must not be empty' });
  });

/** SQL string literal (standard_conforming_strings is on since 9.1; we also SET it). */
export const sqlLiteral = (s: string): string => `'${s.replace(/'/g, "''")}'`;
/** SQL identifier, always quoted: role names may have upper case, spaces, quotes. */
export const sqlIdent = (s: string): string => `"${s.replace(/"/g, '""')}"`;

interface RoleRow {
  n: string;
  p: string | null;
}

const rolesSql = (names: readonly string[]) =>
  `SET standard_conforming_strings = on;\n` +
  `select coalesce(json_agg(json_build_object('n', rolname, 'p', rolpassword)), '[]') from pg_authid where rolname in (${names.length ? names.map(sqlLiteral).join(', ') : 'NULL'});\n`;

async function readRoles(ctx: PlanContext, s: PgServer, names: string[]): Promise<Map<string, string | null>> {
  const out = await psqlQuery(ctx, s, rolesSql(names));
  return new Map((JSON.parse(out.trim() || '[]') as RoleRow[]).map((r) => [r.n, r.p]));
}

const MD5_ROLES_SQL = `select coalesce(json_agg(rolname order by rolname), '[]') from pg_authid where rolcanlogin and rolpassword like 'md5%';\n`;

/** Login roles whose stored password is still md5 (they cannot pass a scram-sha-256 pg_hba rule). */
async function md5Roles(ctx: PlanContext, s: PgServer): Promise<string[]> {
  const out = await psqlQuery(ctx, s, MD5_ROLES_SQL, { independentOfFiles: true });
  return JSON.parse(out.trim() || '[]') as string[];
}

/** The roles the task sets, with the password each must have. */
function wantedPasswords(a: z.infer<typeof args>): Map<string, Secret> {
  const wanted = new Map<string, Secret>();
  if (a.name && a.password) wanted.set(a.name, a.password);
  for (const u of a.users ?? []) wanted.set(u.name, u.password);
  return wanted;
}

/** The roles whose stored verifier does not match the wanted password. */
function stale(wanted: Iterable<[string, Secret]>, roles: ReadonlyMap<string, string | null>): string[] {
  return [...wanted].filter(([n, pw]) => !scramVerifierMatches(roles.get(n) ?? '', pw.reveal())).map(([n]) => n);
}

/** On a standby: waits a bounded time for the primary's new verifiers to arrive by replication (a warning if not). */
const replayed = defineVerifier('reset_password.replayed', async (ctx, p: { server: PgServer; wanted: [string, Secret][]; waitSeconds: number }) => {
  const names = p.wanted.map(([n]) => n);
  const still = await retryUntil(p.waitSeconds * 1000, async () => {
    const now = stale(p.wanted, await readRoles(ctx, p.server, names));
    return now.length === 0 ? { done: true } : { done: false, value: now };
    // (the primary sets them at the same moment: they are usually a few milliseconds away)
  }, { first: 50, max: 500 });
  if (still) ctx.warn(`${ctx.host} is a standby: ${still.join(', ')} did not (yet) get the new password from the primary`);
});

export const resetPassword = defineModule({
  name: 'reset_password',
  changesAuthentication: true,
  description: 'set roles to SCRAM-SHA-256 passwords (verifier computed on the controller, sent on stdin)',
  args,
  verifiers: [replayed],
  sql: (a) => [rolesSql([...wantedPasswords(a).keys()]), ...(a.warn_md5 ? [MD5_ROLES_SQL] : [])],
  async plan(ctx, a): Promise<Change[]> {
    const wanted = wantedPasswords(a);
    const s = await pgServer(ctx);
    // A standby's roles come from its primary: read once the other hosts of the play (its primary
    // among them) have set theirs, instead of polling for them while they do.
    if (s.inRecovery) await ctx.peersDone?.();
    // both questions at once: one round trip (and one psql session) instead of two
    const md5Asked = a.warn_md5 ? md5Roles(ctx, s) : Promise.resolve([]);
    md5Asked.catch(() => undefined); // (awaited below; a failed roles query must not leave it unhandled)
    const roles = await readRoles(ctx, s, [...wanted.keys()]);
    const missing = [...wanted.keys()].filter((n) => !roles.has(n));
    if (missing.length) throw new TaskError(`role${missing.length > 1 ? 's' : ''} ${missing.join(', ')} do${missing.length > 1 ? '' : 'es'} not exist on ${ctx.host}`);

    const changes: Change[] = [];
    const left = stale(wanted, roles);
    if (s.inRecovery) {
      // A standby cannot ALTER ROLE: the primary's change arrives by replication. Waited for when applied
      // (a read-only verify: --check changed no primary, so there is nothing to wait for there).
      if (left.length)
        changes.push({
          summary: `wait for ${left.join(', ')} to get the new password from the primary (standby)`,
          verifyOnly: true,
          conditional: true,
          actions: [
            verifyWith(replayed, { server: s, wanted: [...wanted], waitSeconds: a.replay_wait_seconds }, { readOnly: true, description: 'the new passwords arrive by replication' }),
          ],
        });
    } else {
      // every role in ONE psql session (one round trip, however many roles): the summary names each
      if (left.length) {
        const plural = left.length > 1 ? 's' : '';
        const what = `password${plural} of role${plural} ${left.join(', ')}`;
        changes.push({
          summary: left.map((name) => `role ${name}: ${describeStored(roles.get(name))} -> SCRAM-SHA-256`).join('; '),
          diff: { kind: 'redacted', note: `${what} (SCRAM-SHA-256 verifier${plural}, not shown)` },
          actions: [psqlAction(s, `set the ${what}`, passwordSessionSql(left.map((name) => [name, new Secret(buildScramVerifier(wanted.get(name)!.reveal()))])))],
        });
      }
    }

    if (a.warn_md5) {
      const known = new Set([...wanted.keys(), 'webadmin', ...pgtlsUserNames(ctx)]);
      const md5 = (await md5Asked).filter((r) => !known.has(r));
      if (md5.length)
        ctx.warn(
          `login roles with md5 passwords on ${ctx.host}: ${md5.join(', ')} — they cannot log in through scram-sha-256 rules; ` +
            `add them to pgtls_users (name + password) or reset their passwords`,
        );
    }
    return changes;
  },
});

function pgtlsUserNames(ctx: PlanContext): string[] {
  const v = userVar(ctx, 'pgtls_users');
  return Array.isArray(v) ? v.flatMap((u) => (u && typeof u === 'object' && 'name' in u ? [String((u as { name: unknown }).name)] : [])) : [];
}

/**
 * The session that sets a password: nothing of it may reach a log. log_statement / duration logging
 * off (a successful ALTER ROLE is not logged); log_min_error_statement = panic (a FAILED one is not
 * logged with its statement, i.e. with the verifier); pg_stat_statements does not record it
 * (track_utility off, only when the extension is loaded: elsewhere the DO block's error is swallowed
 * and the session goes on). psql runs as the database OS user, a superuser, so these SETs are allowed.
 */
export function passwordSessionSql(roles: readonly (readonly [role: string, verifier: Secret])[]): Secret {
  return Secret.of(
    `SET standard_conforming_strings = on;\nSET log_statement = 'none';\nSET log_min_duration_statement = -1;\n` +
      `SET log_min_error_statement = panic;\n` +
      `DO $pgtls$BEGIN IF current_setting('pg_stat_statements.track_utility', true) IS NOT NULL THEN ` +
      `PERFORM set_config('pg_stat_statements.track_utility', 'off', false); END IF; EXCEPTION WHEN OTHERS THEN NULL; END$pgtls$;\n`,
    ...roles.flatMap(([role, verifier]) => [`ALTER ROLE ${sqlIdent(role)} PASSWORD `, new Secret(sqlLiteral(verifier.reveal())), ';\n']),
  );
}

/** What a role's stored password is, in a summary's words. */
function describeStored(stored: string | null | undefined): string {
  const t = verifierType(stored);
  return t === 'none' ? 'no password' : `${t} password`;
}
