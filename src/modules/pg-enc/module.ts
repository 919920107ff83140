import { randomBytes } from 'node:crypto';
import * as z from 'zod';
import { TaskError } from '../../lib/errors.js';
import type { Secret } from '../../lib/secret.js';
import { defineModule, type Action, type Change, type FileState, type PlanContext } from '../../lib/plan-types.js';
import { MAX_POOL_PASSWORD_BYTES, poolKeyFromFile } from '../../crypto/pool-passwd.js';
import { poolPasswdPath } from '../../facts/pgpool.js';
import { absolutePath, secretString } from '../common.js';
import { planPoolPasswd } from './entries.js';

/** The key Jelastic's cluster installer and the original add-on wrote to every node: public, so worthless. */
const WELL_KNOWN_KEYS = new Set(['defaultpgpoolkey']);

// Checked here, at validation, so that a too-long password stops the run before any host is touched.
const password = secretString.superRefine((s, ctx) => {
  const v = s.reveal();
  const n = Buffer.byteLength(v, 'utf8');
  if (n === 0) ctx.addIssue({ code: 'custom', message: 'must not be empty' });
  else if (n > MAX_POOL_PASSWORD_BYTES)
    ctx.addIssue({
      code: 'custom',
      message: `is ${n} bytes; Pgpool-II cannot decrypt pool_passwd entries of passwords over ${MAX_POOL_PASSWORD_BYTES} bytes (use a shorter password for this role)`,
    });
  else if (v.includes('\0')) ctx.addIssue({ code: 'custom', message: 'must not contain NUL characters' });
});

const user = z
  .object({
    name: z.string().min(1).regex(/^[^\0\r\n]+$/, 'must not contain NUL, CR or LF'),
    /** null (e.g. `{{ pgpool_password | default(none) }}`): keep whatever entry the user has */
    password: password.nullable(),
  });
// not strict: pgtls_users entries may carry fields for other tasks (they are ignored here)

const args = z
  .object({
    /** An item may itself be a list (`"{{ pgtls_users }}"`): it is flattened in place. */
    users: z
      .array(z.union([user, z.array(user)]))
      .transform((items, ctx) => {
        // A role may come from two sources (pgpool_password and pgtls_users): one entry per role,
        // a given password wins over "keep", two different passwords are an error.
        const byName = new Map<string, z.infer<typeof user>>();
        for (const u of items.flat()) {
          const prev = byName.get(u.name);
          if (prev?.password && u.password && prev.password.reveal() !== u.password.reveal())
            ctx.addIssue({ code: 'custom', message: `user '${u.name}' is listed twice with different passwords` });
          if (!prev?.password) byName.set(u.name, u);
        }
        return [...byName.values()];
      }),
    /** pool_passwd; default: what conf_file's `pool_passwd` says (relative to its directory), else next to it. */
    path: absolutePath.optional(),
    /** pgpool.conf, to find pool_passwd when `path` is not given. */
    conf_file: absolutePath.optional(),
    /** The key pgpool decrypts with (pgpool_key_file): created, random, when missing. */
    key_file: absolutePath,
    /** Owner of a key file or pool_passwd that pgtls creates: the user pgpool runs as. */
    os_user: z.string().min(1).default('postgres'),
  })
  .strict()
  .refine((a) => a.path !== undefined || a.conf_file !== undefined, { message: 'give path or conf_file' });

/** pool_passwd: `path`, else where pgpool.conf says it is. */
async function poolPasswdFile(ctx: PlanContext, a: z.infer<typeof args>): Promise<{ path: string; file: FileState | null }> {
  let path = a.path;
  if (path === undefined) {
    const conf = await ctx.readFile(a.conf_file!);
    if (!conf) throw new TaskError(`${a.conf_file} does not exist`);
    path = poolPasswdPath(a.conf_file!, conf.content.toString('utf8'));
  }
  return { path, file: await ctx.readFile(path) };
}

/**
 * `pg_enc -m` without the binary: pool_passwd AES entries computed here
 * (src/crypto/pool-passwd.ts, byte-identical to pg_enc), so no password ever
 * reaches a remote command line. Idempotent per entry; the file's other lines are
 * kept. Nothing of the file or the key is ever shown in a diff.
 *
 * A running pgpool only sees the new pool_passwd (written by rename, a new inode)
 * and a new key after a restart: pgpool_restart notices the newer files and restarts.
 */
export const pgEnc = defineModule({
  name: 'pg_enc',
  hostLocal: true,
  description: "set Pgpool-II pool_passwd entries (pg_enc's AES format) without putting passwords on a command line",
  args,
  async plan(ctx, a): Promise<Change[]> {
    const changes: Change[] = [];
    // the key and pool_passwd asked together: one round trip for both
    const [keyState, { path, file }] = await Promise.all([ctx.readFile(a.key_file), poolPasswdFile(ctx, a)]);
    let key: string;
    if (keyState) {
      try {
        key = poolKeyFromFile(keyState.content);
      } catch (e) {
        throw new TaskError(`${a.key_file}: ${(e as Error).message}`);
      }
      if (key === '') throw new TaskError(`${a.key_file}: the first line is empty, pgpool would use an empty key`);
      if (WELL_KNOWN_KEYS.has(key))
        ctx.warn(`${a.key_file} holds the publicly known key '${key}': anyone with pool_passwd can decrypt it; rotate it (new key file, then re-run)`);
      if (!readableBy(keyState, a.os_user))
        ctx.warn(`${a.key_file} is owned by ${keyState.owner} with mode ${keyState.mode}: pgpool running as ${a.os_user} may not be able to read it`);
    } else {
      // Never a default key: 32 random bytes, base64url (no newline, no NUL, well under pgpool's 255 bytes).
      key = randomBytes(32).toString('base64url');
      changes.push({
        summary: `${a.key_file}: new random Pgpool-II key (0600, ${a.os_user})`,
        diff: { kind: 'redacted', path: a.key_file, note: 'new pgpool key (not shown)' },
        actions: [{ kind: 'write', path: a.key_file, content: Buffer.from(key + '\n'), mode: '600', owner: a.os_user }],
      });
    }

    const skipped = a.users.filter((u) => u.password === null).map((u) => u.name);
    if (skipped.length > 0) ctx.warn(`no password given for ${skipped.join(', ')}: ${skipped.length > 1 ? 'their entries are' : 'its entry is'} left as it is`);
    const wanted = a.users.flatMap((u) => (u.password === null ? [] : [{ name: u.name, password: (u.password as Secret).reveal() }]));
    const plan = planPoolPasswd(file?.content.toString('utf8') ?? '', wanted, key);
    if (plan.undecryptable.length > 0)
      ctx.warn(`${path}: entries for ${plan.undecryptable.join(', ')} cannot be decrypted with ${a.key_file} (another key?): pgpool will reject those users`);
    if (plan.changed.length > 0) {
      const action: Action = { kind: 'write', path, content: Buffer.from(plan.text, 'utf8') };
      // A new file is pgpool's and private; an existing one keeps its owner and mode (Debian: root:postgres 0640).
      if (!file) Object.assign(action, { mode: '600', owner: a.os_user });
      changes.push({
        summary: `${path}: ${file ? 'set' : 'created with'} entries for ${plan.changed.join(', ')}`,
        diff: { kind: 'redacted', path, note: `entries for ${plan.changed.join(', ')} (not shown)` },
        actions: [action],
      });
    }
    return changes;
  },
});

/** Whether `user` can read the file by owner, group-named-like-the-user or world bits (pgpool is silent when it cannot). */
function readableBy(f: { owner: string; group: string; mode: string }, user: string): boolean {
  const digits = f.mode.padStart(3, '0').slice(-3);
  const can = (d: string | undefined) => d !== undefined && (Number(d) & 4) !== 0;
  return (f.owner === user && can(digits[0])) || (f.group === user && can(digits[1])) || can(digits[2]) || user === 'root';
}
