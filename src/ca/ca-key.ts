/**
 * The CA key on the controller: who may read it, and an optional passphrase.
 *
 * - `ca.key` must not be readable by group or others, and the CA directory must not be writable
 *   by anyone but its owner (who must be the user running pgtls, or root): whoever can replace
 *   ca.crt/ca.key there decides which certificates every client trusts. A CA that fails this is
 *   refused with the command that fixes it.
 * - With a passphrase (PGTLS_CA_PASSPHRASE, else the file named by pgtls_ca_passphrase_file),
 *   new CA keys are written as encrypted PKCS#8 (AES-256-CBC, PBKDF2), and an encrypted ca.key
 *   is decrypted in memory only. An encrypted key without a passphrase is a clear error.
 * Relative CA directories are resolved against the inventory's directory (never the working
 * directory: a run from elsewhere must find the same CA, not silently create another).
 */
import { createPrivateKey } from 'node:crypto';
import { lstatSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { TaskError } from '../lib/errors.js';
import { Secret } from '../lib/secret.js';

export const PASSPHRASE_ENV = 'PGTLS_CA_PASSPHRASE';

/** The passphrase (PGTLS_CA_PASSPHRASE, else the run's pgtls_ca_passphrase_file), or null when none is configured. */
export function caPassphrase(passphraseFile: string | undefined): Secret | null {
  const env = process.env[PASSPHRASE_ENV];
  if (env !== undefined && env !== '') return new Secret(env);
  if (!passphraseFile) return null;
  let st;
  try {
    st = statSync(passphraseFile);
  } catch (e) {
    throw new TaskError(`pgtls_ca_passphrase_file ${passphraseFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if ((st.mode & 0o077) !== 0)
    throw new TaskError(`pgtls_ca_passphrase_file ${passphraseFile} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 ${passphraseFile}`);
  const text = readFileSync(passphraseFile, 'utf8').replace(/\r?\n$/, '');
  if (text === '') throw new TaskError(`pgtls_ca_passphrase_file ${passphraseFile} is empty`);
  return new Secret(text);
}

/** The key as it is stored: encrypted PKCS#8 when a passphrase is configured. */
export function sealCaKey(keyPem: string, passphraseFile: string | undefined): string {
  const pass = caPassphrase(passphraseFile);
  if (!pass) return keyPem;
  return createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: pass.reveal() }) as string;
}

export function isEncryptedKey(text: string): boolean {
  return text.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || /^Proc-Type: 4,ENCRYPTED/m.test(text);
}

/** The key in memory (unencrypted PKCS#8 PEM), from the stored text. */
export function openCaKey(text: string, file: string, passphraseFile: string | undefined): string {
  if (!isEncryptedKey(text)) return text;
  const pass = caPassphrase(passphraseFile);
  if (!pass) throw new TaskError(`${file} is encrypted: give its passphrase in ${PASSPHRASE_ENV} or a file named by pgtls_ca_passphrase_file`);
  try {
    return createPrivateKey({ key: text, format: 'pem', passphrase: pass.reveal() }).export({ type: 'pkcs8', format: 'pem' }) as string;
  } catch {
    throw new TaskError(`${file}: cannot decrypt it with the configured passphrase (wrong passphrase?)`);
  }
}

/** Refuses a CA directory others can write and a CA key others can read (clear errors, with the fix). */
export function checkCaPermissions(dir: string): void {
  const uid = process.getuid?.() ?? 0;
  const d = statOrNull(dir, true);
  if (!d) return;
  if (!d.isDirectory()) throw new TaskError(`CA directory ${dir} is not a directory`);
  if (d.uid !== uid && d.uid !== 0) throw new TaskError(`CA directory ${dir} is owned by uid ${d.uid}, not by the user running pgtls (uid ${uid}) or root: chown it`);
  if ((d.mode & 0o022) !== 0)
    throw new TaskError(`CA directory ${dir} is writable by group or others (mode ${(d.mode & 0o777).toString(8)}): chmod 700 ${dir}`);
  const key = join(dir, 'ca.key');
  const k = statOrNull(key, false);
  if (!k) return;
  if (k.isSymbolicLink()) throw new TaskError(`CA key ${key} is a symbolic link: replace it with the key file itself`);
  if ((k.mode & 0o077) !== 0)
    throw new TaskError(`CA key ${key} is readable by group or others (mode ${(k.mode & 0o777).toString(8)}): chmod 600 ${key}, and consider it exposed`);
}

function statOrNull(path: string, follow: boolean) {
  try {
    return follow ? statSync(path) : lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** A controller path from the inventory (pgtls_ca_dir, pgtls_ca_passphrase_file): relative ones are next to the inventory. */
export function resolveFromInventory(vars: Readonly<Record<string, unknown>>, path: string): string {
  if (isAbsolute(path)) return path;
  const base = typeof vars.inventory_dir === 'string' ? vars.inventory_dir : process.cwd();
  return resolve(base, path);
}

