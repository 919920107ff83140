import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, statSync, writeSync, constants as fsc } from 'node:fs';
import { dirname, posix, resolve } from 'node:path';
import { TaskError } from '../lib/errors.js';
import type { HostShell } from './host-shell.js';
import { diropScript, hostScript } from './scripts.js';
import { RemoteCommandError, type ExecResult } from '../lib/transport.js';
import { sh, type ShellCommand } from '../lib/sh.js';

/**
 * What pgtls keeps on a host (pgtls_state_dir, root-owned 0700, checked with its parents before
 * every use by lib.sh's pgtls_state_ready):
 *   lock/owner            the run that holds the host (one run at a time; see lock.sh)
 *   runs/RUNID.journal    the files a run may have left rollback copies next to (cleaned if it dies)
 * and, so that an uninstall can put every file back as it was before pgtls first touched it, for
 * each path (named by a hash of it):
 *   H.path       the path itself
 *   H.orig       its content before pgtls first changed it (or H.absent: it did not exist)
 *   H.meta       its mode, owner and group then
 *   H.orig.mac   the controller's HMAC of (host, path, sha256 of H.orig, H.meta)
 *   H.installed  its content after pgtls last wrote it (files that existed before; H.installed.absent:
 *                pgtls removed it), H.installed.sha256 its hash, H.installed.mac the controller's HMAC
 * The HMAC key never leaves the controller (pgtls_state_key_file, default next to the CA directory),
 * so a record nobody signed, or one changed since, is refused by the uninstall.
 */
export interface StateStore {
  dir: string;
  /** Keep originals for an uninstall (false: lock and journals only). */
  track: boolean;
  /** Signs records (also those a killed run left unsigned); null in --check (nothing is recorded). */
  signer: RecordSigner | null;
}

/** The record files kept for one path. */
export const RECORD_SUFFIXES = ['.path', '.orig', '.absent', '.meta', '.orig.mac', '.installed', '.installed.sha256', '.installed.absent', '.installed.mac'] as const;

/** The largest file pgtls reads or keeps (a link to /dev/zero must fail, not hang). */
export const READ_CAP = 16 * 1024 * 1024;

/** The records' base name for a path: the first 40 hex digits of the sha256 of the path. */
export function recordBase(stateDir: string, path: string): string {
  return posix.join(stateDir, createHash('sha256').update(path).digest('hex').slice(0, 40));
}

/** The record base to hand to the shell scripts ('' when originals are not tracked). */
export function recordOf(store: StateStore | null | undefined, path: string): string {
  return store?.track ? recordBase(store.dir, path) : '';
}

export type RecordKind = 'orig' | 'installed';

/** HMAC-SHA256 of one record, bound to the host and the path it is about. */
export class RecordSigner {
  constructor(
    readonly host: string,
    private readonly key: Buffer,
  ) {}

  mac(kind: RecordKind, path: string, digest: string): string {
    return createHmac('sha256', this.key).update(['pgtls-record-v1', this.host, kind, path, digest].join('\0')).digest('hex');
  }

  verify(kind: RecordKind, path: string, digest: string, mac: string): boolean {
    const want = Buffer.from(this.mac(kind, path, digest), 'hex');
    const got = Buffer.from(mac.trim(), 'hex');
    return got.length === want.length && timingSafeEqual(got, want);
  }
}

/**
 * Where the controller keeps the key that signs state records: next to the CA directory
 * (<pgtls_ca_dir>.state.key), relative paths next to the inventory like pgtls_ca_dir's.
 */
export function stateKeyFile(vars: Readonly<Record<string, unknown>>): string {
  const base = typeof vars.inventory_dir === 'string' ? vars.inventory_dir : process.cwd();
  if (typeof vars.pgtls_state_key_file === 'string' && vars.pgtls_state_key_file) return resolve(base, vars.pgtls_state_key_file);
  const ca = typeof vars.pgtls_ca_dir === 'string' && vars.pgtls_ca_dir ? vars.pgtls_ca_dir : 'pgtls-ca';
  return `${resolve(base, ca).replace(/\/+$/, '')}.state.key`;
}

/** The signing key (32 random bytes, 0600), created on first use unless `create` is false (then null when missing). */
export function loadStateKey(file: string, create: boolean): Buffer | null {
  try {
    const st = statSync(file);
    if ((st.mode & 0o077) !== 0) throw new TaskError(`${file}: the key that signs pgtls's host records is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
    const key = readFileSync(file);
    if (key.length < 32) throw new TaskError(`${file}: not a pgtls state key (too short)`);
    return key;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    if (!create) return null;
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  try {
    const fd = openSync(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    writeSync(fd, key);
    closeSync(fd);
    chmodSync(file, 0o600);
    return key;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return loadStateKey(file, false); // another host of this run made it
    throw e;
  }
}

/**
 * One key per file for the whole run (hosts run concurrently; `keys` is the run's, never the
 * process's: a later run in the same process reads the file again). Created only by a run that
 * records originals (`create`): a run that only restores them (the uninstall) must find the key
 * that signed them, never a new one (null then).
 */
export function signerFor(vars: Readonly<Record<string, unknown>>, host: string, create: boolean, keys: Map<string, Buffer>): RecordSigner | null {
  const file = stateKeyFile(vars);
  let key = keys.get(file);
  if (!key) {
    const loaded = loadStateKey(file, create);
    if (!loaded) return null;
    key = loaded;
    keys.set(file, key);
  }
  return new RecordSigner(host, key);
}

/**
 * The scripts print what they recorded ("pgtls-orig RECORD SHA MODE OWNER GROUP" or "… absent",
 * "pgtls-installed RECORD SHA"): the controller signs it and stores the MACs next to the records.
 * `paths` maps record bases back to the paths they are about (the controller named them).
 */
export async function signRecords(shell: HostShell, store: StateStore | null, stdout: Buffer, paths: Map<string, string>): Promise<void> {
  if (!store?.signer) return;
  const pairs: string[] = [];
  for (const line of stdout.toString('utf8').split('\n')) {
    const m = /^pgtls-(orig|installed) (\S+) (.*)$/.exec(line);
    if (!m) continue;
    const [, kind, base, digest] = m as unknown as [string, RecordKind, string, string];
    const path = paths.get(base);
    if (path === undefined) continue;
    pairs.push(`${base}.${kind}.mac`, store.signer.mac(kind, path, digest));
  }
  if (pairs.length === 0) return;
  // in the next command's round trip: nothing waits for the signatures, and a run that dies first
  // leaves the records for the next run's lock to list and sign
  shell.beforeNext(sh`sh -c ${hostScript('sign')} pgtls-sign ${store.dir} ${pairs}`, `signing the records of ${pairs.length / 2} original(s)`);
}

/**
 * Records a killed run left unsigned, as lock.sh lists them ("pgtls-path BASE PATH" before each):
 * signed by the next run, once the state directory passed its ownership checks. A base that is not
 * the one the controller would name for that path is ignored (never signed).
 */
export async function signLeftovers(shell: HostShell, store: StateStore, stdout: Buffer): Promise<void> {
  const paths = new Map<string, string>();
  for (const m of stdout.toString('utf8').matchAll(/^pgtls-path (\S+) (.*)$/gm)) {
    if (recordBase(store.dir, m[2]!) === m[1]) paths.set(m[1]!, m[2]!);
  }
  if (paths.size > 0) await signRecords(shell, store, stdout, paths);
}

/** The MAC a write's "installed" record gets, computed before it is sent (the controller knows the bytes). */
export function installedMac(store: StateStore | null | undefined, path: string, sha256: string): string {
  return store?.track && store.signer ? store.signer.mac('installed', path, sha256) : '';
}

/** Before an exec that changes `paths`: this run's rollback copies and the originals, in one round trip. */
export async function preparePaths(shell: HostShell, store: StateStore, runId: string, paths: string[]): Promise<void> {
  if (paths.length === 0) return;
  const names = new Map(paths.map((p) => [recordOf(store, p), p]));
  const args = paths.flatMap((p) => [p, recordOf(store, p)]);
  await signedExec(shell, store, names, sh`sh -c ${hostScript('prepare')} pgtls-prepare ${diropScript()} ${runId} ${store.dir} ${READ_CAP} ${args}`);
}

/** After an exec that changed `paths`: remember (and sign) what pgtls left there. */
export async function recordPaths(shell: HostShell, store: StateStore, paths: string[]): Promise<void> {
  if (!store.track || paths.length === 0) return;
  const names = new Map(paths.map((p) => [recordOf(store, p), p]));
  await signedExec(shell, store, names, sh`sh -c ${hostScript('record')} pgtls-record ${diropScript()} ${store.dir} ${READ_CAP} ${paths.flatMap((p) => [p, recordOf(store, p)])}`);
}

/** How a write-path command is sent: on its own (the default), or at the head of a round trip (HostSession's commit). */
export type CommandRunner = (cmd: ShellCommand, stdin?: Buffer) => Promise<ExecResult>;

/**
 * Runs a script that may record originals, and signs what it recorded, also when it then fails
 * (a refused write has already kept the original: unsigned, the uninstall would refuse it).
 */
export async function signedExec(
  shell: HostShell,
  store: StateStore,
  names: Map<string, string>,
  cmd: ShellCommand,
  stdin?: Buffer,
  run: CommandRunner = (c, i) => shell.exec(c, i === undefined ? {} : { stdin: i }),
): Promise<ExecResult> {
  let res: ExecResult;
  try {
    res = await run(cmd, stdin);
  } catch (e) {
    if (e instanceof RemoteCommandError) await signRecords(shell, store, e.result.stdout, names).catch(() => undefined);
    throw e;
  }
  await signRecords(shell, store, res.stdout, names);
  return res;
}
