/**
 * OpenSSH known_hosts: parsing, host matching and host key verdicts.
 *
 * Follows OpenSSH (hostfile.c, match.c, sshconnect.c), checked against
 * OpenSSH 9.2 (ssh, ssh-keygen -F/-H) in test/unit/known-hosts.test.ts:
 * - a line is `[@marker] hosts keytype base64 [comment]`; blank lines, `#`
 *   comments and malformed lines are skipped (OpenSSH skips them too);
 * - `hosts` is a comma list of patterns (`*`, `?`, `!negation`; a matching
 *   negation vetoes the line), matched case-insensitively, or one hashed
 *   `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`;
 * - the looked-up name is `host` for port 22 and `[host]:port` otherwise; when
 *   nothing at all is known under `[host]:port`, OpenSSH retries the bare
 *   `host` and accepts only an exact key match there ("checking without port
 *   identifier");
 * - any known key for the name that differs from the presented one — of the
 *   same type or not — is a CHANGED host key (OpenSSH 9.2 prints "REMOTE HOST
 *   IDENTIFICATION HAS CHANGED" when only a key of another type is known);
 *   use preferredHostKeyAlgorithms() so the server is asked for a key type we
 *   already know, as OpenSSH does, and this never fires spuriously;
 * - a key listed under `@revoked` for the name is rejected whatever else says;
 * - `@cert-authority` lines are ignored (no host certificate support).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface KnownHostEntry {
  marker?: '@cert-authority' | '@revoked';
  /** Host patterns as written (`!` kept); empty for a hashed entry. */
  patterns: string[];
  /** Set for a hashed entry (`|1|salt|hash`). */
  hashed?: { salt: Buffer; hash: Buffer };
  keyType: string;
  keyBase64: string;
  /** 1-based line number in the file. */
  line: number;
}

export type HostKeyVerdict =
  | { status: 'match' }
  | {
      status: 'unknown';
      /** Key type presented by the server. */
      keyType?: string;
      /**
       * Non-default port only: a different key is known for the bare host
       * name (e.g. the sshd on port 22), which does not count for this port.
       */
      bareHostKey?: { line: number; keyType: string };
    }
  | {
      status: 'changed';
      /** Line of the offending known_hosts entry (same key type preferred). */
      line: number;
      /** Key type at that line. */
      knownKeyType?: string;
      /** Key type presented by the server. */
      keyType?: string;
    }
  | { status: 'revoked'; line: number };

const HASH_MAGIC = '|1|';
const SHA1_LEN = 20;

// ---------------------------------------------------------------------------
// Key blobs
// ---------------------------------------------------------------------------

/**
 * Key type of an SSH wire-format public key blob (its first length-prefixed
 * string, e.g. "ssh-ed25519"). Returns '' for a malformed blob — it is called
 * from inside ssh2's hostVerifier, where throwing would be unhelpful.
 */
export function keyTypeOfBlob(blob: Buffer): string {
  if (blob.length < 4) return '';
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 256 || 4 + len > blob.length) return '';
  const type = blob.toString('latin1', 4, 4 + len);
  return /^[\x21-\x7e]+$/.test(type) ? type : '';
}

/** `SHA256:` + unpadded base64 of the blob's SHA-256, as `ssh-keygen -l` prints it. */
export function sha256Fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** Strict base64 decoding (Buffer.from silently ignores garbage). */
function decodeBase64(s: string): Buffer | undefined {
  if (s.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(s)) return undefined;
  const buf = Buffer.from(s, 'base64');
  return buf.length > 0 ? buf : undefined;
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

function parseHashed(field: string): { salt: Buffer; hash: Buffer } | undefined {
  if (!field.startsWith(HASH_MAGIC)) return undefined;
  const rest = field.slice(HASH_MAGIC.length);
  const bar = rest.indexOf('|');
  if (bar <= 0) return undefined;
  const salt = decodeBase64(rest.slice(0, bar));
  const hash = decodeBase64(rest.slice(bar + 1));
  if (salt?.length !== SHA1_LEN || hash?.length !== SHA1_LEN) return undefined;
  return { salt, hash };
}

/** Parses one line; undefined for blank, comment and malformed lines. */
function parseLine(raw: string, lineNo: number): KnownHostEntry | undefined {
  const text = raw.replace(/\r$/, '');
  let rest = text.replace(/^[ \t]+/, '');
  if (rest === '' || rest.startsWith('#')) return undefined;

  let marker: KnownHostEntry['marker'];
  if (rest.startsWith('@')) {
    const m = /^(@\S+)[ \t]+/.exec(rest);
    if (!m || (m[1] !== '@cert-authority' && m[1] !== '@revoked')) return undefined;
    marker = m[1];
    rest = rest.slice(m[0].length);
    if (rest.startsWith('@')) return undefined; // only one marker is allowed
  }

  const fields = rest.split(/[ \t]+/);
  const [hosts, keyType, keyBase64] = fields;
  if (hosts === undefined || keyType === undefined || keyBase64 === undefined) return undefined;
  if (hosts === '' || keyType === '' || keyType.startsWith('#')) return undefined;

  // The key must decode and carry the type the line claims (sshkey_read checks this).
  const blob = decodeBase64(keyBase64);
  if (blob === undefined || keyTypeOfBlob(blob) !== keyType) return undefined;

  const entry: KnownHostEntry = { patterns: [], keyType, keyBase64, line: lineNo };
  if (marker !== undefined) entry.marker = marker;
  if (hosts.startsWith('|')) {
    const hashed = parseHashed(hosts);
    if (hashed === undefined) return undefined; // "bad host hash": OpenSSH skips the line
    entry.hashed = hashed;
  } else {
    entry.patterns = hosts.split(',');
  }
  return entry;
}

/** Parses a known_hosts file; blank, comment and malformed lines are skipped. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const e = parseLine(raw, i + 1);
    if (e !== undefined) out.push(e);
  });
  return out;
}

// ---------------------------------------------------------------------------
// Matching
// ---------------------------------------------------------------------------

const asciiLower = (s: string): string => s.replace(/[A-Z]/g, (c) => c.toLowerCase());

/**
 * The name OpenSSH looks host keys up under (put_host_port): `host` for port
 * 22, `[host]:port` otherwise. Lowercased, as ssh does with the host name.
 */
export function knownHostsName(host: string, port: number): string {
  const h = asciiLower(host);
  return port === 22 || port === 0 ? h : `[${h}]:${port}`;
}

/** OpenSSH match_pattern: `*` any run (also empty), `?` exactly one char. */
function globMatch(s: string, p: string): boolean {
  let si = 0;
  let pi = 0;
  let star = -1;
  let mark = 0;
  while (si < s.length) {
    if (pi < p.length && (p[pi] === '?' || p[pi] === s[si])) {
      si++;
      pi++;
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++;
      mark = si;
    } else if (star !== -1) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

/** OpenSSH match_hostname / match_pattern_list: a matching `!pattern` vetoes. */
function matchPatternList(name: string, patterns: string[]): boolean {
  const s = asciiLower(name);
  let positive = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pat = asciiLower(negated ? raw.slice(1) : raw);
    if (globMatch(s, pat)) {
      if (negated) return false;
      positive = true;
    }
  }
  return positive;
}

/** Whether a known_hosts entry applies to a lookup name (see knownHostsName). */
export function entryMatchesName(entry: KnownHostEntry, name: string): boolean {
  if (entry.hashed !== undefined) {
    const mac = createHmac('sha1', entry.hashed.salt).update(asciiLower(name)).digest();
    return mac.length === entry.hashed.hash.length && timingSafeEqual(mac, entry.hashed.hash);
  }
  return matchPatternList(name, entry.patterns);
}

function sameKey(entry: KnownHostEntry, keyBlob: Buffer): boolean {
  const blob = decodeBase64(entry.keyBase64);
  return blob !== undefined && blob.equals(keyBlob);
}

type NameVerdict =
  | { status: 'match' }
  | { status: 'new' }
  | { status: 'changed'; entry: KnownHostEntry }
  | { status: 'revoked'; entry: KnownHostEntry };

/** OpenSSH check_key_in_hostkeys for one lookup name. */
function checkName(entries: KnownHostEntry[], name: string, keyType: string, keyBlob: Buffer): NameVerdict {
  const forName = entries.filter((e) => e.marker !== '@cert-authority' && entryMatchesName(e, name));
  const revoked = forName.find((e) => e.marker === '@revoked' && sameKey(e, keyBlob));
  if (revoked !== undefined) return { status: 'revoked', entry: revoked };
  const plain = forName.filter((e) => e.marker === undefined);
  if (plain.some((e) => sameKey(e, keyBlob))) return { status: 'match' };
  if (plain.length === 0) return { status: 'new' };
  // OpenSSH names the last differing entry; one of the same key type is the
  // more useful line to point at, so prefer that.
  const sameType = plain.filter((e) => e.keyType === keyType);
  const offending = sameType[sameType.length - 1] ?? plain[plain.length - 1];
  return offending === undefined ? { status: 'new' } : { status: 'changed', entry: offending };
}

/**
 * Verdict for a presented host key. `host` is the name or address as the user
 * wrote it (ansible_host), `keyBlob` the SSH wire-format key ssh2's
 * hostVerifier receives, `keyType` normally keyTypeOfBlob(keyBlob).
 */
export function checkHostKey(
  entries: KnownHostEntry[],
  host: string,
  port: number,
  keyType: string,
  keyBlob: Buffer,
): HostKeyVerdict {
  const v = checkName(entries, knownHostsName(host, port), keyType, keyBlob);
  switch (v.status) {
    case 'match':
      return { status: 'match' };
    case 'revoked':
      return { status: 'revoked', line: v.entry.line };
    case 'changed':
      return { status: 'changed', line: v.entry.line, knownKeyType: v.entry.keyType, keyType };
    case 'new':
      break;
  }
  const bare = knownHostsName(host, 22);
  if (bare !== knownHostsName(host, port)) {
    // "checking without port identifier": only an exact match counts.
    const b = checkName(entries, bare, keyType, keyBlob);
    if (b.status === 'match') return { status: 'match' };
    // OpenSSH warns about the revocation and then fails as unknown; say revoked.
    if (b.status === 'revoked') return { status: 'revoked', line: b.entry.line };
    if (b.status === 'changed') {
      return { status: 'unknown', keyType, bareHostKey: { line: b.entry.line, keyType: b.entry.keyType } };
    }
  }
  return { status: 'unknown', keyType };
}

// ---------------------------------------------------------------------------
// Host key algorithm order (OpenSSH order_hostkeyalgs)
// ---------------------------------------------------------------------------

/** ssh2's default server host key algorithms, in its order (ssh2 1.x, Node with Ed25519). */
export const SSH2_DEFAULT_HOST_KEY_ALGORITHMS: readonly string[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

/** Host key algorithms that yield a key of the given type (an RSA key signs with three). */
function algorithmsForKeyType(keyType: string): string[] {
  return keyType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [keyType];
}

/**
 * Like OpenSSH, ask the server first for key types already known for this
 * host, so that a host with several keys presents the one we can verify
 * (otherwise a legitimate ed25519 key with only the rsa one on file looks like
 * a changed key). Returns the full ordered list for ssh2's
 * `algorithms.serverHostKey` (ssh2's `prepend` does not reorder existing entries).
 */
export function preferredHostKeyAlgorithms(
  entries: KnownHostEntry[],
  host: string,
  port: number,
  available: readonly string[] = SSH2_DEFAULT_HOST_KEY_ALGORITHMS,
): string[] {
  const names = [knownHostsName(host, port), knownHostsName(host, 22)];
  const knownAlgs = new Set<string>();
  for (const name of names) {
    for (const e of entries) {
      if (e.marker === undefined && entryMatchesName(e, name)) {
        for (const a of algorithmsForKeyType(e.keyType)) knownAlgs.add(a);
      }
    }
  }
  const first = available.filter((a) => knownAlgs.has(a));
  return [...first, ...available.filter((a) => !knownAlgs.has(a))];
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/** Single-quotes for a POSIX shell when needed (brackets are glob characters). */
function shq(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Short type name for ssh-keyscan -t / messages: ssh-ed25519 -> ed25519. */
function shortType(keyType: string): string {
  if (keyType === 'ssh-ed25519') return 'ed25519';
  if (keyType === 'ssh-rsa') return 'rsa';
  if (keyType.startsWith('ecdsa-sha2-')) return 'ecdsa';
  return keyType;
}

/**
 * User-facing text for a verdict: what happened and what to do about it.
 * `fingerprint` is sha256Fingerprint() of the presented key.
 */
export function hostKeyMessage(
  verdict: HostKeyVerdict,
  host: string,
  port: number,
  knownHostsPath: string,
  fingerprint: string,
): string {
  const name = knownHostsName(host, port);
  const file = knownHostsPath === '' ? '~/.ssh/known_hosts' : knownHostsPath;
  const fileArg = knownHostsPath === '' ? '~/.ssh/known_hosts' : shq(knownHostsPath);
  const portArg = port === 22 ? '' : `-p ${port} `;
  const keyscan = (keyType?: string): string =>
    `ssh-keyscan ${keyType ? `-t ${shortType(keyType)} ` : ''}${portArg}${shq(host)} >> ${fileArg}`;

  switch (verdict.status) {
    case 'match':
      return `host key for ${name} matches ${file} (${fingerprint})`;

    case 'unknown': {
      const what = verdict.keyType ? `${verdict.keyType} host key` : 'host key';
      const lines = [`${what} for ${name} is not in ${file} (${fingerprint}).`];
      if (verdict.bareHostKey) {
        lines.push(
          `${file}:${verdict.bareHostKey.line} has a different ${verdict.bareHostKey.keyType} key for ${knownHostsName(host, 22)} ` +
            `(port 22); it does not apply to port ${port}.`,
        );
      }
      lines.push(
        `Verify the fingerprint out of band (on the server: ssh-keygen -lf /etc/ssh/ssh_host_${verdict.keyType ? shortType(verdict.keyType) : '*'}_key.pub) ` +
          `and add it with: ${keyscan(verdict.keyType)}, or pass --known-hosts FILE.`,
      );
      return lines.join('\n');
    }

    case 'changed': {
      const otherType = verdict.knownKeyType !== undefined && verdict.keyType !== undefined && verdict.knownKeyType !== verdict.keyType;
      const lines = [
        `WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for ${name}!`,
        `IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY: someone could be eavesdropping on you right now (man-in-the-middle attack).`,
        `It is also possible that the host key has just been changed (host reinstalled or replaced).`,
        `The ${verdict.keyType ?? 'host'} key sent by the remote host is ${fingerprint}.`,
      ];
      if (otherType) {
        lines.push(
          `${file}:${verdict.line} holds a ${verdict.knownKeyType} key for this host and no ${verdict.keyType} key; ` +
            `OpenSSH treats this as a changed key too. If the host legitimately has both, verify the fingerprint out of band ` +
            `and add it with: ${keyscan(verdict.keyType)}`,
        );
      } else {
        lines.push(`Offending ${verdict.knownKeyType ?? 'host'} key in ${file}:${verdict.line}.`);
      }
      lines.push(
        `Refusing to connect. If the change is expected, verify the new fingerprint out of band, then remove the old key with: ` +
          `ssh-keygen -R ${shq(name)} -f ${fileArg} and add the new one with: ${keyscan(verdict.keyType)}`,
      );
      return lines.join('\n');
    }

    case 'revoked':
      return [
        `WARNING: REVOKED HOST KEY DETECTED for ${name}!`,
        `The host key ${fingerprint} is marked @revoked in ${file}:${verdict.line}.`,
        `This could mean that a stolen key is being used to impersonate this host. Refusing to connect.`,
        `Contact the host's administrator; the host needs a new host key.`,
      ].join('\n');
  }
}
