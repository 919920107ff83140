/**
 * known_hosts tests against material made by the real OpenSSH tools:
 * host keys from `ssh-keygen -t ...`, hashed entries from `ssh-keygen -H`,
 * host matching cross-checked with `ssh-keygen -F`, fingerprints with
 * `ssh-keygen -l`, and verdicts cross-checked with the real `ssh` client
 * connecting to an in-process ssh2 server (which also shows that ssh2's
 * hostVerifier receives exactly the .pub blob).
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  checkHostKey,
  entryMatchesName,
  hostKeyMessage,
  type HostKeyVerdict,
  keyTypeOfBlob,
  knownHostsName,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
  sha256Fingerprint,
} from '../../src/remote/known-hosts.js';

// ssh2 is CommonJS and Server is not detected as a named export.
const { Client, Server } = ssh2;

const has = (cmd: string): boolean => spawnSync(cmd, ['-?'], { stdio: 'ignore' }).error === undefined;
const HAVE_KEYGEN = has('ssh-keygen');
const HAVE_SSH = has('ssh');

type KeyName = 'ed' | 'ed2' | 'rsa' | 'ec';
interface Key {
  type: string;
  /** "type base64" as in a .pub file, without comment. */
  pub: string;
  blob: Buffer;
  privFile: string;
  pubFile: string;
}

const dir = mkdtempSync(join(tmpdir(), 'pgtls-kh-'));
const KEYS = {} as Record<KeyName, Key>;
if (HAVE_KEYGEN) {
  const specs: [KeyName, string[]][] = [
    ['ed', ['-t', 'ed25519']],
    ['ed2', ['-t', 'ed25519']],
    ['rsa', ['-t', 'rsa', '-b', '2048']],
    ['ec', ['-t', 'ecdsa', '-b', '256']],
  ];
  for (const [name, args] of specs) {
    const privFile = join(dir, `host_${name}`);
    const r = spawnSync('ssh-keygen', ['-q', ...args, '-N', '', '-C', `${name}@test`, '-f', privFile]);
    if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
    const [type = '', b64 = ''] = readFileSync(`${privFile}.pub`, 'utf8').trim().split(' ');
    KEYS[name] = { type, pub: `${type} ${b64}`, blob: Buffer.from(b64, 'base64'), privFile, pubFile: `${privFile}.pub` };
  }
}

/** Replaces {ed}, {ed2}, {rsa}, {ec} with "type base64". */
const fill = (line: string): string => line.replace(/\{(ed2|ed|rsa|ec)\}/g, (_, k: KeyName) => KEYS[k].pub);

let fileSeq = 0;
function writeKnown(lines: string[]): string {
  const f = join(dir, `known_${fileSeq++}`);
  writeFileSync(f, `${lines.map(fill).join('\n')}\n`);
  return f;
}

/** Hashes a known_hosts file with the real `ssh-keygen -H` and returns its lines. */
function hashWithSshKeygen(lines: string[]): string[] {
  const f = writeKnown(lines);
  const r = spawnSync('ssh-keygen', ['-H', '-f', f], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen -H: ${r.stderr}`);
  const out = readFileSync(f, 'utf8').trimEnd().split('\n');
  // ssh-keygen -H leaves @revoked / @cert-authority lines alone.
  for (const l of out) if (!l.startsWith('#') && !l.startsWith('@') && !l.startsWith('|1|')) throw new Error(`not hashed: ${l}`);
  return out;
}

// ---------------------------------------------------------------------------
// Verdict table
// ---------------------------------------------------------------------------

interface VerdictCase {
  name: string;
  known: string[];
  /** Hash the file with `ssh-keygen -H` first (single-name lines keep their numbers). */
  hash?: boolean;
  /** Prefixed to every line after hashing (ssh-keygen -H does not hash marker lines itself). */
  markAfterHash?: string;
  host: string;
  port: number;
  key: KeyName;
  expect: HostKeyVerdict['status'];
  line?: number;
  /** Also run the real ssh client against a server presenting `key` (needs 127.0.0.1 hosts). */
  viaSsh?: boolean;
}

const verdictCases: VerdictCase[] = [
  { name: 'plain name, port 22', known: ['db1 {ed}'], host: 'db1', port: 22, key: 'ed', expect: 'match' },
  { name: 'no entry for the host', known: ['db2 {ed}'], host: 'db1', port: 22, key: 'ed', expect: 'unknown' },
  { name: 'empty file', known: [], host: 'db1', port: 22, key: 'ed', expect: 'unknown' },
  { name: 'same type, different key', known: ['db1 {ed2}'], host: 'db1', port: 22, key: 'ed', expect: 'changed', line: 1 },
  { name: 'only another key type known -> changed (as OpenSSH 9.2)', known: ['db1 {rsa}'], host: 'db1', port: 22, key: 'ed', expect: 'changed', line: 1 },
  { name: 'several key types, one matches', known: ['db1 {rsa}', 'db1 {ec}', 'db1 {ed}'], host: 'db1', port: 22, key: 'ed', expect: 'match' },
  { name: 'wrong key then right key', known: ['db1 {ed2}', 'db1 {ed}'], host: 'db1', port: 22, key: 'ed', expect: 'match' },
  { name: 'offending line prefers the same key type', known: ['db1 {ed2}', 'db1 {rsa}'], host: 'db1', port: 22, key: 'ed', expect: 'changed', line: 1 },
  { name: 'offending line: last differing key otherwise', known: ['db1 {rsa}', 'db1 {ec}'], host: 'db1', port: 22, key: 'ed', expect: 'changed', line: 2 },
  { name: 'ecdsa match', known: ['db1 {ec}'], host: 'db1', port: 22, key: 'ec', expect: 'match' },
  { name: 'rsa match', known: ['db1 {rsa}'], host: 'db1', port: 22, key: 'rsa', expect: 'match' },
  { name: '[host]:port entry', known: ['[10.0.0.1]:2222 {ed}'], host: '10.0.0.1', port: 2222, key: 'ed', expect: 'match' },
  { name: '[host]:port entry does not apply to port 22', known: ['[10.0.0.1]:2222 {ed}'], host: '10.0.0.1', port: 22, key: 'ed', expect: 'unknown' },
  { name: '[host]:port entry for another port', known: ['[10.0.0.1]:2200 {ed}'], host: '10.0.0.1', port: 2222, key: 'ed', expect: 'unknown' },
  { name: 'explicit [host]:22 is not the port-22 name', known: ['[10.0.0.1]:22 {ed}'], host: '10.0.0.1', port: 22, key: 'ed', expect: 'unknown' },
  { name: 'bare entry matches a non-default port (checking without port)', known: ['127.0.0.1 {ed}'], host: '127.0.0.1', port: 2222, key: 'ed', expect: 'match', viaSsh: true },
  { name: 'bare entry with another key: unknown for the port', known: ['127.0.0.1 {ed2}'], host: '127.0.0.1', port: 2222, key: 'ed', expect: 'unknown', viaSsh: true },
  { name: 'ported entry changed wins over bare match', known: ['[127.0.0.1]:2222 {ed2}', '127.0.0.1 {ed}'], host: '127.0.0.1', port: 2222, key: 'ed', expect: 'changed', line: 1, viaSsh: true },
  { name: 'bare changed, ported right', known: ['127.0.0.1 {ed2}', '[127.0.0.1]:2222 {ed}'], host: '127.0.0.1', port: 2222, key: 'ed', expect: 'match', viaSsh: true },
  { name: 'comma list', known: ['db0,db1,10.0.0.1 {ed}'], host: '10.0.0.1', port: 22, key: 'ed', expect: 'match' },
  { name: 'comma list with [host]:port', known: ['db1,[db1]:2222 {ed}'], host: 'db1', port: 2222, key: 'ed', expect: 'match' },
  { name: 'wildcard *', known: ['*.example.com {ed}'], host: 'db1.example.com', port: 22, key: 'ed', expect: 'match' },
  { name: 'wildcard * needs the dot', known: ['*.example.com {ed}'], host: 'example.com', port: 22, key: 'ed', expect: 'unknown' },
  { name: 'wildcard inside brackets', known: ['[127.0.0.?]:2222 {ed}'], host: '127.0.0.1', port: 2222, key: 'ed', expect: 'match', viaSsh: true },
  { name: 'wildcard ? is exactly one char', known: ['db? {ed}'], host: 'db10', port: 22, key: 'ed', expect: 'unknown' },
  { name: 'match-all * also covers [host]:port', known: ['* {ed}'], host: '127.0.0.1', port: 2222, key: 'ed', expect: 'match', viaSsh: true },
  { name: 'negation vetoes the line', known: ['*.example.com,!bad.example.com {ed}'], host: 'bad.example.com', port: 22, key: 'ed', expect: 'unknown' },
  { name: 'negation does not affect other names', known: ['*.example.com,!bad.example.com {ed}'], host: 'good.example.com', port: 22, key: 'ed', expect: 'match' },
  { name: 'negation written first', known: ['!bad.example.com,*.example.com {ed}'], host: 'bad.example.com', port: 22, key: 'ed', expect: 'unknown' },
  { name: 'negated [host]:port still falls back to the bare name', known: ['*,![127.0.0.1]:2222 {ed}'], host: '127.0.0.1', port: 2222, key: 'ed', expect: 'match', viaSsh: true },
  { name: 'negating both names', known: ['*,![127.0.0.1]:2222,!127.0.0.1 {ed}'], host: '127.0.0.1', port: 2222, key: 'ed', expect: 'unknown', viaSsh: true },
  { name: 'negated line is skipped, next line counts', known: ['*,!db1 {ed2}', 'db1 {ed}'], host: 'db1', port: 22, key: 'ed', expect: 'match' },
  { name: 'patterns are case-insensitive', known: ['DB1.Example.COM {ed}'], host: 'db1.example.com', port: 22, key: 'ed', expect: 'match' },
  { name: 'host name is case-insensitive', known: ['db1.example.com {ed}'], host: 'DB1.EXAMPLE.com', port: 22, key: 'ed', expect: 'match' },
  { name: 'IPv6 port 22', known: ['::1 {ed}'], host: '::1', port: 22, key: 'ed', expect: 'match' },
  { name: 'IPv6 other port', known: ['[::1]:2222 {ed}'], host: '::1', port: 2222, key: 'ed', expect: 'match' },
  { name: 'hashed name', hash: true, known: ['db1 {ed}'], host: 'db1', port: 22, key: 'ed', expect: 'match' },
  { name: 'hashed name, other host', hash: true, known: ['db1 {ed}'], host: 'db2', port: 22, key: 'ed', expect: 'unknown' },
  { name: 'hashed name, upper-case host', hash: true, known: ['db1.example.com {ed}'], host: 'DB1.example.com', port: 22, key: 'ed', expect: 'match' },
  { name: 'hashed [host]:port', hash: true, known: ['[10.0.0.1]:2222 {ed}'], host: '10.0.0.1', port: 2222, key: 'ed', expect: 'match' },
  { name: 'hashed bare name, non-default port', hash: true, known: ['10.0.0.1 {ed}'], host: '10.0.0.1', port: 2222, key: 'ed', expect: 'match' },
  { name: 'hashed changed key', hash: true, known: ['db0 {ed}', 'db1 {ed2}'], host: 'db1', port: 22, key: 'ed', expect: 'changed', line: 2 },
  { name: 'hashed comma list (split by ssh-keygen -H)', hash: true, known: ['db0,db1 {ed}'], host: 'db1', port: 22, key: 'ed', expect: 'match' },
  { name: 'revoked key', known: ['@revoked db1 {ed}', 'db1 {ed}'], host: 'db1', port: 22, key: 'ed', expect: 'revoked', line: 1 },
  { name: 'revoked via *', known: ['127.0.0.1 {ed}', '@revoked * {ed}'], host: '127.0.0.1', port: 22, key: 'ed', expect: 'revoked', line: 2 },
  { name: 'revoked for [host]:port', known: ['@revoked * {ed}', '[127.0.0.1]:2222 {ed}'], host: '127.0.0.1', port: 2222, key: 'ed', expect: 'revoked', line: 1, viaSsh: true },
  { name: 'revoked without any plain entry', known: ['@revoked [127.0.0.1]:2222 {ed}'], host: '127.0.0.1', port: 2222, key: 'ed', expect: 'revoked', line: 1, viaSsh: true },
  { name: 'another key revoked', known: ['@revoked * {ed2}', '[127.0.0.1]:2222 {ed}'], host: '127.0.0.1', port: 2222, key: 'ed', expect: 'match', viaSsh: true },
  { name: 'revocation for another host', known: ['@revoked otherhost {ed}', '[127.0.0.1]:2222 {ed}'], host: '127.0.0.1', port: 2222, key: 'ed', expect: 'match', viaSsh: true },
  { name: 'revoked under the bare name, non-default port (ssh: revoked warning, then unknown)', known: ['@revoked 10.0.0.1 {ed}'], host: '10.0.0.1', port: 2222, key: 'ed', expect: 'revoked', line: 1 },
  { name: 'hashed revoked', hash: true, markAfterHash: '@revoked ', known: ['db1 {ed}'], host: 'db1', port: 22, key: 'ed', expect: 'revoked', line: 1 },
  { name: '@cert-authority lines are ignored', known: ['@cert-authority * {ed}'], host: '127.0.0.1', port: 2222, key: 'ed', expect: 'unknown', viaSsh: true },
  { name: 'only another type known via ssh too', known: ['[127.0.0.1]:2222 {rsa}'], host: '127.0.0.1', port: 2222, key: 'ed', expect: 'changed', line: 1, viaSsh: true },
  { name: 'same type changed via ssh', known: ['# c', '', '[127.0.0.1]:2222 {ed2}'], host: '127.0.0.1', port: 2222, key: 'ed', expect: 'changed', line: 3, viaSsh: true },
  {
    name: 'comments, blanks, indentation, tabs and comments after the key',
    known: ['# header', '', '   # indented comment', '\tdb0 {ed}', 'db1\t{ed2} trailing comment'],
    host: 'db1', port: 22, key: 'ed', expect: 'changed', line: 5,
  },
  {
    name: 'malformed lines are skipped, like OpenSSH does',
    known: [
      'db1 ssh-ed25519 not*base64',
      'db1 ssh-rsa PLACEHOLDER', // an ed25519 blob under the ssh-rsa name
      '@bogus db1 {ed2}',
      '@revoked @revoked db1 {ed}',
      'db1 2048 65537 12345678901234567890',
      '|1|bad|hash {ed2}',
      'db1',
      'db1 {ed}',
    ],
    host: 'db1', port: 22, key: 'ed', expect: 'match',
  },
];

/** ssh-rsa line carrying an ed25519 blob (type mismatch): built after keys exist. */
function fixMalformed(lines: string[]): string[] {
  return lines.map((l) => (l.includes('PLACEHOLDER') ? l.replace('PLACEHOLDER', KEYS.ed.pub.split(' ')[1] ?? '') : l));
}

// Under CI the real ssh-keygen/ssh must be there: without them these fail instead of being skipped.
const CI = process.env['CI'] === 'true';
const maybe = HAVE_KEYGEN || CI ? test : test.skip;

for (const c of verdictCases) {
  maybe(`verdict: ${c.name}`, () => {
    const lines = fixMalformed(c.known.map(fill));
    const text = c.hash ? hashWithSshKeygen(lines).map((l) => `${c.markAfterHash ?? ''}${l}`).join('\n') : lines.join('\n');
    const entries = parseKnownHosts(text);
    const k = KEYS[c.key];
    const v = checkHostKey(entries, c.host, c.port, keyTypeOfBlob(k.blob), k.blob);
    assert.is(v.status, c.expect, `${c.name}: ${JSON.stringify(v)}\n${text}`);
    if (c.line !== undefined) assert.is((v as { line?: number }).line, c.line, `${c.name}: line`);
  });
}

maybe('verdict details: changed reports both key types; unknown reports the bare-host key', () => {
  const changed = checkHostKey(parseKnownHosts(fill('db1 {rsa}')), 'db1', 22, 'ssh-ed25519', KEYS.ed.blob);
  assert.equal(changed, { status: 'changed', line: 1, knownKeyType: 'ssh-rsa', keyType: 'ssh-ed25519' });
  const unknown = checkHostKey(parseKnownHosts(fill('x {ec}\n10.0.0.1 {ed2}')), '10.0.0.1', 2222, 'ssh-ed25519', KEYS.ed.blob);
  assert.equal(unknown, { status: 'unknown', keyType: 'ssh-ed25519', bareHostKey: { line: 2, keyType: 'ssh-ed25519' } });
});

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

maybe('parseKnownHosts: fields, markers, hashed entries, line numbers', () => {
  const hashed = hashWithSshKeygen([fill('db9 {ec}')])[0] ?? '';
  const text = [
    '# comment',
    fill('db1,[db1]:2222,!bad,*.x {ed} some comment'),
    '',
    fill('@revoked db2 {rsa}'),
    fill('@cert-authority *.example.com {ed2}'),
    hashed,
    'garbage',
    fill('crlf {ed}\r'),
  ].join('\n');
  const e = parseKnownHosts(text);
  assert.is(e.length, 5);
  assert.equal(e[0], { patterns: ['db1', '[db1]:2222', '!bad', '*.x'], keyType: 'ssh-ed25519', keyBase64: KEYS.ed.pub.split(' ')[1], line: 2 });
  assert.is(e[1]?.marker, '@revoked');
  assert.equal(e[1]?.patterns, ['db2']);
  assert.is(e[1]?.line, 4);
  assert.is(e[2]?.marker, '@cert-authority');
  assert.is(e[3]?.line, 6);
  assert.equal(e[3]?.patterns, []);
  assert.is(e[3]?.hashed?.salt.length, 20);
  assert.is(e[3]?.hashed?.hash.length, 20);
  assert.is(e[3]?.keyType, 'ecdsa-sha2-nistp256');
  assert.ok(e[3] && entryMatchesName(e[3], 'db9'));
  assert.is(e[4]?.keyBase64, KEYS.ed.pub.split(' ')[1], 'CR stripped');
});

/** Line numbers (and REVOKED/CA tags) `ssh-keygen -F name` reports. */
function sshKeygenFind(file: string, name: string): string[] {
  const r = spawnSync('ssh-keygen', ['-F', name, '-f', file], { encoding: 'utf8' });
  const found: string[] = [];
  for (const m of r.stdout.matchAll(/^# Host .* found: line (\d+)[ \t]*([A-Z]*)[ \t]*$/gm)) found.push(`${m[1]}${m[2] ? ` ${m[2]}` : ''}`);
  return found;
}

maybe('host matching agrees with ssh-keygen -F (plain and ssh-keygen -H hashed)', () => {
  const plain = [
    '# comment',
    'db1,db2 {ed}',
    '@revoked db1 {rsa}',
    '@cert-authority *.example.com {ed}',
    '*.example.com,!bad.example.com {ed}',
    '[10.0.0.1]:2222 {ed}',
    'DB? {rsa}',
    '[127.0.0.?]:22?? {ec}',
    '::1,[::1]:2222 {ed2}',
    '!*.internal,*.internal.example.com {ec}',
    'Mixed.Case.Host {ed}',
  ];
  const names = [
    'db1', 'db2', 'db3', 'dbx', 'DBX', 'bad.example.com', 'good.example.com', 'example.com', '[10.0.0.1]:2222',
    '10.0.0.1', '[127.0.0.1]:2222', '[127.0.0.1]:22', '::1', '[::1]:2222', 'a.internal.example.com', 'a.internal',
    'mixed.case.host',
  ];
  const pf = writeKnown(plain);
  const pe = parseKnownHosts(readFileSync(pf, 'utf8'));
  for (const name of names) {
    const mine = pe
      .filter((e) => entryMatchesName(e, name))
      .map((e) => `${e.line}${e.marker === '@revoked' ? ' REVOKED' : e.marker === '@cert-authority' ? ' CA' : ''}`);
    assert.equal(mine, sshKeygenFind(pf, name), `plain: ${name}`);
  }
  // ssh-keygen -H refuses wildcards; hash the literal names only.
  const literal = ['db1,db2 {ed}', '[10.0.0.1]:2222 {ed}', '::1,[::1]:2222 {ed2}', 'mixed.case.host {ed}'];
  const hf = join(dir, `hashed_${fileSeq++}`);
  writeFileSync(hf, `${hashWithSshKeygen(literal).join('\n')}\n`);
  const he = parseKnownHosts(readFileSync(hf, 'utf8'));
  assert.ok(he.every((e) => e.hashed !== undefined));
  for (const name of names) {
    const mine = he.filter((e) => entryMatchesName(e, name)).map((e) => String(e.line));
    assert.equal(mine, sshKeygenFind(hf, name), `hashed: ${name}`);
  }
});

// ---------------------------------------------------------------------------
// Blobs, fingerprints, names, algorithms
// ---------------------------------------------------------------------------

maybe('keyTypeOfBlob and sha256Fingerprint agree with ssh-keygen -l', () => {
  for (const name of ['ed', 'rsa', 'ec'] as const) {
    const k = KEYS[name];
    assert.is(keyTypeOfBlob(k.blob), k.type);
    const r = spawnSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', k.pubFile], { encoding: 'utf8' });
    const fp = r.stdout.split(' ')[1];
    assert.is(sha256Fingerprint(k.blob), fp, name);
  }
  assert.is(keyTypeOfBlob(Buffer.alloc(0)), '');
  assert.is(keyTypeOfBlob(Buffer.from([0, 0, 0, 50, 65])), '');
  assert.is(keyTypeOfBlob(Buffer.from([0xff, 0xff, 0xff, 0xff])), '');
});

test('knownHostsName follows put_host_port', () => {
  assert.is(knownHostsName('Db1.Example.com', 22), 'db1.example.com');
  assert.is(knownHostsName('10.0.0.1', 2222), '[10.0.0.1]:2222');
  assert.is(knownHostsName('::1', 2222), '[::1]:2222');
  assert.is(knownHostsName('::1', 22), '::1');
});

maybe('preferredHostKeyAlgorithms puts known key types first', () => {
  const e = parseKnownHosts(fill('[db1]:2222 {rsa}\ndb1 {ec}\nother {ed}'));
  assert.equal(preferredHostKeyAlgorithms(e, 'db1', 2222, ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']), [
    'ecdsa-sha2-nistp256',
    'rsa-sha2-512',
    'rsa-sha2-256',
    'ssh-rsa',
    'ssh-ed25519',
  ]);
  assert.equal(preferredHostKeyAlgorithms([], 'db1', 22, ['a', 'b']), ['a', 'b']);
});

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

test('hostKeyMessage: unknown says how to add the key', () => {
  const m = hostKeyMessage({ status: 'unknown', keyType: 'ssh-ed25519' }, '10.0.0.1', 2222, '/home/u/.ssh/known_hosts', 'SHA256:abc');
  assert.match(m, 'ssh-ed25519 host key for [10.0.0.1]:2222 is not in /home/u/.ssh/known_hosts (SHA256:abc)');
  assert.match(m, 'ssh-keyscan -t ed25519 -p 2222 10.0.0.1 >> /home/u/.ssh/known_hosts');
  assert.match(m, '--known-hosts FILE');
  const m22 = hostKeyMessage({ status: 'unknown' }, 'db1', 22, '/tmp/my hosts', 'SHA256:abc');
  assert.match(m22, "ssh-keyscan db1 >> '/tmp/my hosts'");
  const bare = hostKeyMessage({ status: 'unknown', keyType: 'ssh-ed25519', bareHostKey: { line: 4, keyType: 'ssh-rsa' } }, 'db1', 2222, 'kh', 'SHA256:abc');
  assert.match(bare, 'kh:4 has a different ssh-rsa key for db1 (port 22)');
});

test('hostKeyMessage: changed warns about MITM, names the line, says how to fix', () => {
  const m = hostKeyMessage({ status: 'changed', line: 7, knownKeyType: 'ssh-ed25519', keyType: 'ssh-ed25519' }, '10.0.0.1', 2222, 'kh', 'SHA256:new');
  assert.match(m, 'REMOTE HOST IDENTIFICATION HAS CHANGED for [10.0.0.1]:2222');
  assert.match(m, 'man-in-the-middle');
  assert.match(m, 'Offending ssh-ed25519 key in kh:7');
  assert.match(m, "ssh-keygen -R '[10.0.0.1]:2222' -f kh");
  assert.match(m, 'SHA256:new');
  const other = hostKeyMessage({ status: 'changed', line: 2, knownKeyType: 'ssh-rsa', keyType: 'ssh-ed25519' }, 'db1', 22, 'kh', 'SHA256:new');
  assert.match(other, 'kh:2 holds a ssh-rsa key for this host and no ssh-ed25519 key');
  assert.match(other, 'ssh-keyscan -t ed25519 db1 >> kh');
});

test('hostKeyMessage: revoked and match', () => {
  const m = hostKeyMessage({ status: 'revoked', line: 3 }, 'db1', 22, 'kh', 'SHA256:x');
  assert.match(m, 'REVOKED HOST KEY');
  assert.match(m, 'kh:3');
  assert.match(hostKeyMessage({ status: 'match' }, 'db1', 22, 'kh', 'SHA256:x'), 'matches');
  assert.match(hostKeyMessage({ status: 'unknown' }, 'db1', 22, '', 'SHA256:x'), '~/.ssh/known_hosts');
});

// ---------------------------------------------------------------------------
// Against a live server: ssh2's hostVerifier blob, and the real ssh client
// ---------------------------------------------------------------------------

async function withServer<T>(key: KeyName, fn: (port: number) => Promise<T>): Promise<T> {
  const server = new Server({ hostKeys: [readFileSync(KEYS[key].privFile)] }, (conn) => {
    conn.on('error', () => {});
    conn.on('authentication', (ctx) => ctx.reject());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await fn((server.address() as AddressInfo).port);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function blobSeenBySsh2(port: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    let seen: Buffer | undefined;
    c.on('error', () => (seen ? resolve(seen) : reject(new Error('no host key seen'))));
    c.connect({
      host: '127.0.0.1',
      port,
      username: 'x',
      readyTimeout: 5000,
      hostVerifier: (key: Buffer) => {
        seen = key;
        c.end();
        resolve(key);
        return false;
      },
    });
  });
}

maybe('ssh2 hostVerifier receives the .pub blob (ed25519, rsa, ecdsa)', async () => {
  for (const name of ['ed', 'rsa', 'ec'] as const) {
    const blob = await withServer(name, blobSeenBySsh2);
    assert.ok(blob.equals(KEYS[name].blob), name);
    assert.is(keyTypeOfBlob(blob), KEYS[name].type);
    const v = checkHostKey(parseKnownHosts(fill(`127.0.0.1 {${name}}`)), '127.0.0.1', 22, keyTypeOfBlob(blob), blob);
    assert.is(v.status, 'match');
  }
});

/** Runs the real ssh client with StrictHostKeyChecking=yes and classifies its verdict. */
async function sshVerdict(port: number, knownFile: string): Promise<{ status: string; line?: number }> {
  // Asynchronous: the ssh2 server runs in this process's event loop.
  const out = await new Promise<string>((resolve) => {
    execFile(
    'ssh',
    [
      '-F', '/dev/null',
      '-o', 'BatchMode=yes',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', `UserKnownHostsFile=${knownFile}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'UpdateHostKeys=no',
      '-o', 'CheckHostIP=no',
      '-o', 'ConnectTimeout=5',
      '-o', 'PubkeyAuthentication=no',
      '-o', 'PasswordAuthentication=no',
      '-o', 'KbdInteractiveAuthentication=no',
      '-p', String(port),
      'x@127.0.0.1',
      'true',
    ],
    { encoding: 'utf8', timeout: 15000 },
    (_err, stdout, stderr) => resolve(`${stdout}${stderr}`),
    );
  });
  const offending = /Offending \S+ key in .*:(\d+)/.exec(out);
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED/.test(out)) return { status: 'changed', line: Number(offending?.[1]) };
  if (/REVOKED HOST KEY/.test(out)) return { status: 'revoked' };
  if (/No \S+ host key is known/.test(out)) return { status: 'unknown' };
  if (/Permission denied/.test(out)) return { status: 'match' };
  return { status: `unclassified: ${out}` };
}

((HAVE_KEYGEN && HAVE_SSH) || CI ? test : test.skip)('verdicts agree with the real ssh client (viaSsh cases)', async () => {
  const cases = verdictCases.filter((c) => c.viaSsh);
  assert.ok(cases.length >= 10);
  const seen = new Set<string>();
  for (const c of cases) {
    await withServer(c.key, async (port) => {
      // The cases are written for port 2222; the server listens on an ephemeral port.
      const lines = c.known.map((l) => l.replace(/2222/g, String(port)).replace(/22\?\?/g, String(port)));
      const file = writeKnown(lines);
      const real = await sshVerdict(port, file);
      const entries = parseKnownHosts(readFileSync(file, 'utf8'));
      const k = KEYS[c.key];
      const mine = checkHostKey(entries, '127.0.0.1', port, keyTypeOfBlob(k.blob), k.blob);
      assert.is(mine.status, real.status, `${c.name}: ssh says ${JSON.stringify(real)}, we say ${JSON.stringify(mine)}`);
      assert.is(real.status, c.expect, `${c.name}: table expectation vs ssh`);
      seen.add(real.status);
      if (real.status === 'changed' && c.known.length === 1) assert.is((mine as { line: number }).line, real.line, c.name);
    });
  }
  assert.equal([...seen].sort(), ['changed', 'match', 'revoked', 'unknown']);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
