import { decryptPoolPassword, parsePoolPasswd } from '../crypto/pool-passwd.js';

/**
 * pool_passwd as Pgpool-II will use it: users that should be there and are not (pgpool then
 * cannot authenticate them with SCRAM/md5 against pool_hba), and AES entries the pgpool key
 * cannot decrypt (another key, or a corrupt line). pgpool reads only the first entry of a user.
 * `key` null: no readable key file, so no AES entry can be decrypted.
 */
export function checkPoolPasswd(text: string, key: string | null, expected: string[]): { missing: string[]; undecryptable: string[] } {
  const first = new Map<string, ReturnType<typeof parsePoolPasswd>[number]>();
  for (const e of parsePoolPasswd(text)) if (!first.has(e.user)) first.set(e.user, e);
  const missing = [...new Set(expected)].filter((u) => !first.has(u));
  const undecryptable = [...first.values()]
    .filter((e) => e.type === 'aes' && (e.tooLong || key === null || decryptPoolPassword(e.secret, key) === null))
    .map((e) => e.user);
  return { missing, undecryptable };
}

/** The role names status expects in pool_passwd: what install-pgpool.yaml puts there. */
export function expectedPoolUsers(vars: Readonly<Record<string, unknown>>): string[] {
  // Names only: the passwords next to them may be lookups of environment variables that a
  // status run has no reason to need.
  const users = Array.isArray(vars.pgtls_users) ? vars.pgtls_users : [];
  const names = users.map((u) => (u && typeof u === 'object' ? (u as { name?: unknown }).name : undefined)).filter((n): n is string => typeof n === 'string' && n !== '' && !n.includes('{{'));
  const pgpool = vars.pgpool_password !== undefined && vars.pgpool_password !== null && vars.pgpool_password !== '' ? ['pgpool'] : [];
  return ['webadmin', ...pgpool, ...names];
}
