/**
 * ansible-vault, format 1.1 and 1.2 (cipher AES256), with node:crypto only:
 *
 *   $ANSIBLE_VAULT;1.1;AES256            (1.2 adds ;LABEL — the vault id)
 *   hex( hex(salt) "\n" hex(hmac) "\n" hex(ciphertext) ), wrapped at 80 columns
 *
 * key material = PBKDF2-HMAC-SHA256(password, salt, 10000 iterations, 80 bytes):
 * [0,32) AES-256-CTR key, [32,64) HMAC-SHA256 key, [64,80) CTR counter block.
 * The HMAC covers the ciphertext; the plaintext is PKCS#7 padded to 16 bytes before CTR.
 *
 * Decrypted text only ever lives in memory: nothing here writes a file.
 */
import { createCipheriv, createDecipheriv, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { ConfigError, errorMessage } from '../lib/errors.js';
import { Secret } from '../lib/secret.js';

export const VAULT_HEADER = '$ANSIBLE_VAULT;';

export interface VaultPassword {
  /** The vault id (`--vault-id LABEL@FILE`); 'default' otherwise. */
  label: string;
  password: Secret;
  /** Where it came from, for messages. */
  source: string;
}

/** The passwords a run may use to open vaults (`--vault-password-file`, `--vault-id`, ANSIBLE_VAULT_PASSWORD_FILE). */
export class VaultKeyring {
  constructor(readonly passwords: readonly VaultPassword[] = []) {}

  get empty(): boolean {
    return this.passwords.length === 0;
  }

  /** Decrypts a vault; throws an Error whose message names the problem (never a password). */
  decrypt(vaultText: string): string {
    const { label, body } = parseVault(vaultText);
    if (this.empty) throw new Error('is vault-encrypted, but no vault password was given (--vault-password-file, --vault-id or ANSIBLE_VAULT_PASSWORD_FILE)');
    // A 1.2 vault names its id: try the matching password first, then the others (as Ansible does).
    const ordered = [...this.passwords].sort((a, b) => Number(b.label === label) - Number(a.label === label));
    for (const p of ordered) {
      const plain = tryDecrypt(body, p.password.reveal());
      if (plain !== null) return plain;
    }
    throw new Error(`cannot be decrypted with the given vault password${this.passwords.length > 1 ? 's' : ''} (${this.passwords.map((p) => p.source).join(', ')})`);
  }
}

export function isVaultText(text: string): boolean {
  return text.trimStart().startsWith(VAULT_HEADER);
}

function parseVault(text: string): { label?: string; body: Buffer } {
  const lines = text.trim().split(/\r?\n/).map((l) => l.trim());
  const header = (lines.shift() ?? '').split(';');
  if (header[0] !== '$ANSIBLE_VAULT' || !['1.1', '1.2'].includes(header[1] ?? '')) throw new Error(`unsupported vault header '${header.slice(0, 2).join(';')}'`);
  if (header[2] !== 'AES256') throw new Error(`unsupported vault cipher '${header[2] ?? ''}' (only AES256)`);
  const hex = lines.join('');
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new Error('malformed vault: the body is not hexadecimal');
  return { label: header[3], body: Buffer.from(hex, 'hex') };
}

function deriveKeys(password: string, salt: Buffer): { aesKey: Buffer; hmacKey: Buffer; iv: Buffer } {
  const m = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, 10000, 80, 'sha256');
  return { aesKey: m.subarray(0, 32), hmacKey: m.subarray(32, 64), iv: m.subarray(64, 80) };
}

function tryDecrypt(body: Buffer, password: string): string | null {
  const parts = body.toString('latin1').split('\n');
  if (parts.length !== 3 || !parts.every((p) => /^([0-9a-fA-F]{2})+$/.test(p))) throw new Error('malformed vault: expected salt, HMAC and ciphertext');
  const [salt, mac, cipher] = parts.map((p) => Buffer.from(p, 'hex')) as [Buffer, Buffer, Buffer];
  const { aesKey, hmacKey, iv } = deriveKeys(password, salt);
  const expected = createHmac('sha256', hmacKey).update(cipher).digest();
  if (expected.length !== mac.length || !timingSafeEqual(expected, mac)) return null;
  const d = createDecipheriv('aes-256-ctr', aesKey, iv);
  const padded = Buffer.concat([d.update(cipher), d.final()]);
  const pad = padded[padded.length - 1] ?? 0;
  if (pad < 1 || pad > 16 || pad > padded.length) throw new Error('malformed vault: bad padding');
  return padded.subarray(0, padded.length - pad).toString('utf8');
}

/** Encrypts like `ansible-vault encrypt` (for tests and fixtures; pgtls itself never writes vaults). */
export function encryptVault(plaintext: string, password: string, label?: string): string {
  const salt = randomBytes(32);
  const { aesKey, hmacKey, iv } = deriveKeys(password, salt);
  const data = Buffer.from(plaintext, 'utf8');
  const pad = 16 - (data.length % 16);
  const c = createCipheriv('aes-256-ctr', aesKey, iv);
  const cipher = Buffer.concat([c.update(Buffer.concat([data, Buffer.alloc(pad, pad)])), c.final()]);
  const mac = createHmac('sha256', hmacKey).update(cipher).digest();
  const hex = Buffer.from([salt, mac, cipher].map((b) => b.toString('hex')).join('\n'), 'latin1').toString('hex');
  const header = label ? `$ANSIBLE_VAULT;1.2;AES256;${label}` : '$ANSIBLE_VAULT;1.1;AES256';
  return `${header}\n${hex.match(/.{1,80}/g)!.join('\n')}\n`;
}

/**
 * Reads the vault passwords named on the command line. A password file holds the password
 * (trailing newline stripped); an executable one is run and its stdout is the password (Ansible's
 * vault password scripts). ANSIBLE_VAULT_PASSWORD_FILE is used when no option names one.
 */
export function loadVaultPasswords(opts: { passwordFiles?: string[]; vaultIds?: string[]; env?: NodeJS.ProcessEnv }): VaultKeyring {
  const env = opts.env ?? process.env;
  const wanted: { label: string; file: string; source: string }[] = [];
  for (const f of opts.passwordFiles ?? []) wanted.push({ label: 'default', file: f, source: `--vault-password-file ${f}` });
  for (const id of opts.vaultIds ?? []) {
    const at = id.indexOf('@');
    const [label, file] = at < 0 ? ['default', id] : [id.slice(0, at) || 'default', id.slice(at + 1)];
    wanted.push({ label, file, source: `--vault-id ${id}` });
  }
  if (wanted.length === 0 && env.ANSIBLE_VAULT_PASSWORD_FILE)
    wanted.push({ label: 'default', file: env.ANSIBLE_VAULT_PASSWORD_FILE, source: 'ANSIBLE_VAULT_PASSWORD_FILE' });
  const issues = [];
  const passwords: VaultPassword[] = [];
  for (const w of wanted) {
    if (w.file === 'prompt') {
      issues.push({ file: 'command line', field: w.source, message: 'prompting for a vault password is not supported: use a password file or script' });
      continue;
    }
    const file = expandHome(w.file);
    try {
      passwords.push({ label: w.label, password: new Secret(readPasswordFile(file)), source: w.source });
    } catch (e) {
      issues.push({ file: 'command line', field: w.source, message: `cannot read the vault password: ${errorMessage(e)}` });
    }
  }
  if (issues.length) throw new ConfigError(issues);
  return new VaultKeyring(passwords);
}

function readPasswordFile(file: string): string {
  let executable = false;
  try {
    accessSync(file, constants.X_OK);
    executable = !readFileSync(file).subarray(0, 2).equals(Buffer.from('$A')); // never run a vault itself
  } catch {
    executable = false;
  }
  const text = executable
    ? execFileSync(file, [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })
    : readFileSync(file, 'utf8');
  const password = text.replace(/\s+$/, '');
  if (!password) throw new Error(`${file} is empty`);
  return password;
}

/** `~` and `~/…` as the controller's home directory (Ansible expands them in paths). */
export function expandHome(path: string): string {
  if (path === '~') return homedir();
  if (path.startsWith('~/')) return homedir() + path.slice(1);
  return path;
}
