// Pgpool-II pool_passwd "AES" entries, byte-identical to what `pg_enc -m` writes (pgpool 4.3.5), so pgtls can
// compute entries locally and keep passwords off remote command lines (pg_enc takes them on argv or a tty).
//
// Recipe (pgpool src/utils/ssl_utils.c aes_get_key/aes_encrypt, src/tools/pgenc/pg_enc.c, verified against
// the real pg_enc in test/unit/pool-passwd.test.ts):
//   (key, iv) = EVP_BytesToKey(aes-256-cbc, sha1, salt = NULL, keystring, count = 1)
//   entry     = "AES" + base64(AES-256-CBC(key, iv, PKCS#7)(password bytes))
// There is no salt and the IV is derived from the key, so the same user/password/key always gives the same
// line: "is the entry up to date?" is a plain string comparison, no decryption needed.
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';

/**
 * Longest password pgpool can decrypt. pool_passwd tokens are cut at 128 characters when pgpool reads the
 * file (getNextToken, MAX_TOKEN_LEN in src/auth/pool_passwd.c): 79 bytes -> 80 bytes of ciphertext ->
 * "AES" + 108 base64 chars = 111; 80 bytes -> 96 bytes of ciphertext -> 3 + 128 = 131, truncated, and
 * authentication fails with "unable to decrypt password from pool_passwd" (measured on 4.3.5). pg_enc
 * writes such entries without complaint, so the check has to happen here.
 */
export const MAX_POOL_PASSWORD_BYTES = 79;
/** pgpool's MAX_TOKEN_LEN: longer secrets are silently truncated when pool_passwd is read. */
export const MAX_POOL_PASSWD_TOKEN_CHARS = 128;
/** read_pool_key() reads the key with fgets() into a 256-byte buffer: at most 255 bytes of the first line. */
export const MAX_POOL_KEY_BYTES = 255;

const AES_PREFIX = 'AES';

export function assertPoolPasswordLength(password: string): void {
  const n = Buffer.byteLength(password, 'utf8');
  if (n > MAX_POOL_PASSWORD_BYTES) {
    throw new RangeError(
      `password is ${n} bytes; Pgpool-II cannot decrypt pool_passwd AES entries for passwords over ${MAX_POOL_PASSWORD_BYTES} bytes ` +
        `(the entry is cut at ${MAX_POOL_PASSWD_TOKEN_CHARS} characters when pgpool reads it). Use a shorter password for this role.`,
    );
  }
}

/**
 * The key bytes pgpool and pg_enc derive from a key file's content, exactly as read_pool_key() does:
 * fgets() the first line (at most 255 bytes), C-string semantics (stops at a NUL; a line that *starts* with
 * NUL reads as empty and fgets moves on to the next chunk), strip one trailing "\n". A "\r" is NOT stripped,
 * so a key file saved with CRLF has a key ending in "\r" (and it still works, consistently, everywhere).
 * Returns null when pgpool would find no key at all ("encryption key not provided").
 */
export function poolKeyBytesFromFile(content: string | Uint8Array): Buffer | null {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
  let pos = 0;
  while (pos < bytes.length) {
    // one fgets(buf, 256, fp): up to and including the next "\n", at most 255 bytes
    const nl = bytes.indexOf(0x0a, pos);
    const end = Math.min(nl === -1 ? bytes.length : nl + 1, pos + MAX_POOL_KEY_BYTES);
    let chunk = bytes.subarray(pos, end);
    pos = end;
    const nul = chunk.indexOf(0);
    if (nul !== -1) chunk = chunk.subarray(0, nul); // strlen()
    if (chunk.length === 0) continue; // read_pool_key: `if (len == 0) continue;`
    if (chunk[chunk.length - 1] === 0x0a) chunk = chunk.subarray(0, -1);
    return Buffer.from(chunk);
  }
  return null;
}

const UTF8_STRICT = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The pool key (see poolKeyBytesFromFile) as a string. Throws when the file holds no key, or when the key
 * bytes are not valid UTF-8 (e.g. the 255-byte cut split a character): use poolKeyBytesFromFile then.
 * May return '' (a file whose first line is empty): that is what pgpool would use, but encryptPoolPassword
 * refuses it.
 */
export function poolKeyFromFile(content: string | Uint8Array): string {
  const key = poolKeyBytesFromFile(content);
  if (key === null) throw new Error('pool key file contains no key (pgpool would report "encryption key not provided")');
  try {
    return UTF8_STRICT.decode(key);
  } catch {
    throw new Error('pool key is not valid UTF-8 after pgpool\'s 255-byte cut; use poolKeyBytesFromFile()');
  }
}

function keyBytes(key: string | Uint8Array): Buffer {
  const k = typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key);
  if (k.length === 0) {
    // pgpool would accept a blank first line as the key "", but that is never intended: refuse loudly.
    throw new Error('pool key is empty (is the first line of the .pgpoolkey file blank?)');
  }
  if (k.includes(0) || k.includes(0x0a)) {
    throw new Error('pool key must not contain NUL or newline characters (pgpool only reads the first line, as a C string)');
  }
  return k;
}

/** OpenSSL EVP_BytesToKey(aes-256-cbc, sha1, no salt, count = 1): D_i = SHA1(D_{i-1} || key). */
function evpBytesToKey(pass: Buffer): { key: Buffer; iv: Buffer } {
  const parts: Buffer[] = [];
  let prev = Buffer.alloc(0);
  let len = 0;
  while (len < 48) {
    prev = createHash('sha1').update(prev).update(pass).digest();
    parts.push(prev);
    len += prev.length;
  }
  const all = Buffer.concat(parts);
  return { key: all.subarray(0, 32), iv: all.subarray(32, 48) };
}

/** `AES<base64>` for pool_passwd, identical to pg_enc's output for the same password and key. */
export function encryptPoolPassword(password: string, key: string | Uint8Array): string {
  if (password.length === 0) throw new Error('password must not be empty (pgpool cannot use an empty AES password)');
  if (password.includes('\0')) throw new Error('password must not contain NUL characters');
  assertPoolPasswordLength(password);
  const { key: k, iv } = evpBytesToKey(keyBytes(key));
  const c = createCipheriv('aes-256-cbc', k, iv);
  return AES_PREFIX + Buffer.concat([c.update(password, 'utf8'), c.final()]).toString('base64');
}

/**
 * Decrypts an `AES...` secret (the part after "user:"). Returns null when it is not an AES secret, the
 * base64 or padding is invalid (typically: wrong key), or the plaintext is empty, contains NUL or is not
 * UTF-8. Whitespace inside the base64 is skipped like pgpool's pg_b64_decode does (so a CRLF file's "\r"
 * does not matter). A wrong key passes the padding check about 1 time in 256 and yields garbage, which the
 * UTF-8 check then usually rejects; compare with the expected password when it matters.
 */
export function decryptPoolPassword(entry: string, key: string | Uint8Array): string | null {
  if (!entry.startsWith(AES_PREFIX)) return null;
  const b64 = entry.slice(AES_PREFIX.length).replace(/[ \t\r\n]/g, '');
  if (b64.length === 0 || b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return null;
  const ct = Buffer.from(b64, 'base64');
  if (ct.length === 0 || ct.length % 16 !== 0) return null;
  let k: Buffer;
  try {
    k = keyBytes(key);
  } catch {
    return null;
  }
  const { key: aesKey, iv } = evpBytesToKey(k);
  let plain: Buffer;
  try {
    const d = createDecipheriv('aes-256-cbc', aesKey, iv);
    plain = Buffer.concat([d.update(ct), d.final()]);
  } catch {
    return null; // bad padding
  }
  if (plain.length === 0 || plain.includes(0)) return null;
  try {
    return UTF8_STRICT.decode(plain);
  } catch {
    return null;
  }
}

/**
 * User name as written in pool_passwd. pgpool's reader (userMatchesString) honours backslash escapes, so
 * ":" and "\" in a role name must be escaped to ever match. pg_enc does not escape (it writes such names
 * verbatim, and pgpool then never finds them); for every other name the result equals pg_enc's.
 */
export function escapePoolPasswdUser(user: string): string {
  if (user.length === 0) throw new Error('user name must not be empty');
  if (/[\0\r\n]/.test(user)) throw new Error('user name must not contain NUL, CR or LF');
  return user.replace(/[\\:]/g, (c) => '\\' + c);
}

/** One pool_passwd line without the trailing newline: `user:AES...` (what `pg_enc -m -u user` writes). */
export function poolPasswdEntry(user: string, password: string, key: string | Uint8Array): string {
  return `${escapePoolPasswdUser(user)}:${encryptPoolPassword(password, key)}`;
}

export type PoolSecretType = 'aes' | 'md5' | 'scram-sha-256' | 'text' | 'plain';

export interface PoolPasswdEntry {
  /** user name with pgpool's backslash escapes resolved */
  user: string;
  /** the password field as pgpool reads it (escapes resolved; not truncated, see tooLong) */
  secret: string;
  /** the line as it appears in the file, without "\n" */
  raw: string;
  /** pgpool's get_password_type() classification of the secret */
  type: PoolSecretType;
  /** the secret is longer than pgpool's 128-character token limit: pgpool reads a truncated, unusable value */
  tooLong: boolean;
}

/** Splits at the first unescaped ':' with pgpool's backslash handling; null when there is no such ':'. */
function nextToken(s: string): { token: string; rest: string | null } {
  let token = '';
  for (let i = 0; i < s.length; i++) {
    let ch = s[i]!;
    if (ch === '\\' && i + 1 < s.length) {
      ch = s[++i]!;
      token += ch;
      continue;
    }
    if (ch === ':') return { token, rest: s.slice(i + 1) };
    token += ch;
  }
  return { token, rest: null };
}

function secretType(secret: string): PoolSecretType {
  if (secret.startsWith('md5')) return secret.length === 35 ? 'md5' : 'plain';
  if (secret.startsWith(AES_PREFIX)) return 'aes';
  if (secret.startsWith('SCRAM-SHA-256$')) return 'scram-sha-256';
  if (secret.startsWith('TEXT')) return 'text';
  return 'plain';
}

/**
 * Parses pool_passwd like pgpool does (pool_get_user_credentials): one entry per line, user up to the first
 * unescaped ':', the secret up to the next unescaped ':' (a further `:backend_user:backend_password` mapping
 * is ignored here). Lines without a ':' can never match a user in pgpool and are skipped; so are empty
 * lines. A "\r" before "\n" stays part of the secret, as in pgpool.
 */
export function parsePoolPasswd(text: string): PoolPasswdEntry[] {
  const out: PoolPasswdEntry[] = [];
  for (const raw of text.split('\n')) {
    if (raw.length === 0) continue;
    const u = nextToken(raw);
    if (u.rest === null || u.token.length === 0) continue;
    const secret = nextToken(u.rest).token;
    out.push({ user: u.token, secret, raw, type: secretType(secret), tooLong: secret.length > MAX_POOL_PASSWD_TOKEN_CHARS });
  }
  return out;
}

/**
 * Returns pool_passwd text with `user`'s entry set to `secret`: the first line for that user is replaced in
 * place (later duplicates are left alone: pgpool only ever reads the first), otherwise the entry is appended.
 * Like pg_enc's pool_create_passwdent, but pure, so callers can diff before writing.
 */
export function upsertPoolPasswd(text: string, user: string, secret: string): string {
  if (/[\r\n]/.test(secret)) throw new Error('pool_passwd secret must not contain CR or LF');
  const line = `${escapePoolPasswdUser(user)}:${secret}`;
  const lines = text.length === 0 ? [] : text.replace(/\n$/, '').split('\n');
  const idx = lines.findIndex((l) => {
    const u = nextToken(l);
    return u.rest !== null && u.token === user;
  });
  if (idx === -1) lines.push(line);
  else lines[idx] = line;
  return lines.join('\n') + '\n';
}
