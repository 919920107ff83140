/**
 * The pure part of `pg_enc`: given pool_passwd's text, the pool key and the wanted
 * users, which lines change. No I/O, so the decisions are unit-tested directly.
 *
 * An entry is left alone when it already DECRYPTS to the wanted password with the
 * key (not merely when it is byte-identical): a line written by the real pg_enc,
 * or with escapes we would spell the same way, must not count as a change.
 * Every other line of the file (other users, comments, pgpool's user mappings)
 * is kept byte for byte.
 */
import { decryptPoolPassword, encryptPoolPassword, parsePoolPasswd, upsertPoolPasswd } from '../../crypto/pool-passwd.js';

export interface WantedEntry {
  name: string;
  password: string;
}

export interface PoolPasswdPlan {
  text: string;
  /** users whose entry was added or replaced, in the order asked */
  changed: string[];
  /** AES entries of OTHER users that this key cannot decrypt (encrypted with another key: pgpool will fail them) */
  undecryptable: string[];
}

export function planPoolPasswd(text: string, wanted: readonly WantedEntry[], key: string | Uint8Array): PoolPasswdPlan {
  const entries = parsePoolPasswd(text);
  let out = text;
  const changed: string[] = [];
  for (const w of wanted) {
    // pgpool uses the FIRST entry of a user; later duplicates never matter
    const current = entries.find((e) => e.user === w.name);
    if (current && current.type === 'aes' && !current.tooLong && decryptPoolPassword(current.secret, key) === w.password) continue;
    out = upsertPoolPasswd(out, w.name, encryptPoolPassword(w.password, key));
    changed.push(w.name);
  }
  // only the first entry of each other user counts, as in pgpool
  const undecryptable: string[] = [];
  const seen = new Set(wanted.map((w) => w.name));
  for (const e of entries) {
    if (seen.has(e.user)) continue;
    seen.add(e.user);
    if (e.type === 'aes' && decryptPoolPassword(e.secret, key) === null) undecryptable.push(e.user);
  }
  return { text: out, changed, undecryptable };
}
