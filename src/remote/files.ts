import { createHash } from 'node:crypto';
import { TaskError } from '../lib/errors.js';
import type { HostShell } from './host-shell.js';
import { diropScript, hostScript } from './scripts.js';
import { sh, type ShellCommand } from '../lib/sh.js';
import { installedMac, READ_CAP, recordOf, signedExec, type CommandRunner, type StateStore } from './state.js';

import type { FileState } from '../lib/plan-types.js';
export type { FileState };

/**
 * Reads a file with its metadata in one round trip; null when it does not exist. It is read as the
 * user who controls its directory (read.sh), never through a link another user owns, and never more
 * than `cap` bytes: a pg_hba.conf that is a link to /dev/zero fails with a clear error.
 */
export async function readRemoteFile(shell: HostShell, path: string, user?: string, cap = READ_CAP): Promise<FileState | null> {
  const res = await shell.exec(sh`sh -c ${hostScript('read')} pgtls-read ${diropScript()} ${path} ${cap}`, { okCodes: [0, 3], user });
  if (res.exitCode === 3) return null;
  const nl = res.stdout.indexOf(0x0a);
  const [mode = '', owner = '', group = ''] = res.stdout.subarray(0, nl).toString('utf8').split(' ');
  const content = res.stdout.subarray(nl + 1);
  if (content.length > cap) throw new TaskError(`${path} is larger than ${cap} bytes, the limit for files pgtls reads`);
  return { content, mode, owner, group };
}

/**
 * Several files in one round trip (read-many.sh: each read exactly as readRemoteFile reads it, as the
 * user who controls its directory), for the executor's read cache. A file that could not be read
 * this way (a refusal, above the cap) is left out of the result: the caller reads it again on its
 * own, for readRemoteFile's own error. Absent files are null.
 */
export async function readRemoteFiles(shell: HostShell, paths: readonly string[], user?: string, cap = READ_CAP): Promise<Map<string, FileState | null>> {
  const res = await shell.exec(readManyCommand(paths, cap), { user });
  return parseReadMany(res.stdout, paths, cap);
}

/** read-many.sh's command line (also sent in a batch with the run lock: HostSession.begin). */
export function readManyCommand(paths: readonly string[], cap = READ_CAP): ShellCommand {
  return sh`sh -c ${hostScript('read-many')} pgtls-read-many ${diropScript()} ${cap} ${[...paths]}`;
}

/** read-many.sh's framed output: "pgtls-file RC OUTLEN ERRLEN\n", OUTLEN bytes of read.sh's output, ERRLEN of its stderr. */
export function parseReadMany(out: Buffer, paths: readonly string[], cap = READ_CAP): Map<string, FileState | null> {
  const files = new Map<string, FileState | null>();
  let at = 0;
  for (const path of paths) {
    const nl = out.indexOf(0x0a, at);
    if (nl < 0) break;
    const m = /^pgtls-file (\d+) (\d+) (\d+)$/.exec(out.subarray(at, nl).toString('latin1'));
    if (!m) break; // not what the script prints: nothing after this point is trusted
    const [rc, outLen, errLen] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const body = out.subarray(nl + 1, nl + 1 + outLen);
    if (body.length !== outLen) break;
    at = nl + 1 + outLen + errLen;
    if (rc === 3) files.set(path, null);
    if (rc !== 0) continue;
    const eol = body.indexOf(0x0a);
    if (eol < 0) continue;
    const [mode = '', owner = '', group = ''] = body.subarray(0, eol).toString('utf8').split(' ');
    const content = Buffer.from(body.subarray(eol + 1));
    if (content.length > cap) continue;
    files.set(path, { content, mode, owner, group });
  }
  return files;
}

export interface WriteOptions {
  mode?: string;
  owner?: string;
  group?: string;
  /** A command with %s for the temp file (Ansible's validate); the file is installed only when it exits 0. */
  validate?: string;
  /** Keep a timestamped copy of the previous content next to the file (Ansible's backup). */
  backup?: boolean;
  /** The run this write belongs to: its rollback copies carry this id ('' = no rollback copy). */
  runId?: string;
  /** pgtls_state_dir: where the content is received and checked, and originals are kept. */
  state: StateStore;
}

export function sha256Hex(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

/** One change of a file on a host, as the executor commits it (commit.sh). */
export type FileChange =
  | ({ op: 'write'; path: string; content: Buffer } & Omit<WriteOptions, 'runId' | 'state'>)
  | { op: 'remove'; path: string }
  /** `from`, a temp file this run made in the same directory (a key generated on the host), becomes `path`. */
  | { op: 'rename'; path: string; from: string };

/**
 * Commits changes of several files in one round trip, in order, so that they cannot be lost,
 * half-written or half-made (commit.sh, dirop.sh): every content goes on stdin with its length and
 * sha256 in argv (they are not secret); the host receives all of it where only root can see it and
 * checks it before anything changes, so a cut connection (whose stdin looks like an ordinary end of
 * file) installs nothing. Then, with the controller no longer needed (a controller killed now does
 * not stop it half-way), for each file, inside its directory and as the user who controls it: this
 * run's rollback copy, the original once ever, a temp file from mktemp, fsync, owner and mode (those
 * of the file it replaces unless told otherwise), optional validate, rename. A reader never sees half
 * a file. Returns the backups made (`backup: true`), by path.
 */
export async function commitChanges(
  shell: HostShell,
  changes: FileChange[],
  runId: string,
  store: StateStore,
  /** Files as the controller last read them (null: absent): their originals are signed in the same round trip. */
  expected: ReadonlyMap<string, FileState | null> = new Map(),
  /** How the commit is sent (default: a round trip of its own). */
  run?: CommandRunner,
): Promise<Map<string, string>> {
  if (changes.length === 0) return new Map();
  const names = new Map<string, string>();
  const contents: Buffer[] = [];
  const args: string[] = [];
  const omacs: string[] = [];
  for (const c of changes) {
    const rec = recordOf(store, c.path);
    names.set(rec, c.path);
    const was = expected.get(c.path);
    if (rec && store.signer && was !== undefined) {
      // the digest lib.sh prints for an original: "SHA256 MODE OWNER GROUP", or "absent"
      const digest = was === null ? 'absent' : `${sha256Hex(was.content)} ${was.mode} ${was.owner} ${was.group}`;
      omacs.push(`${rec} ${store.signer.mac('orig', c.path, digest)} ${digest}`);
    }
    if (c.op === 'write') {
      // The validate command is playbook-author shell (as in Ansible); %s becomes the temp file, passed as $1.
      const validate = c.validate ? c.validate.split('%s').join('"$1"') : '';
      const sha = sha256Hex(c.content);
      contents.push(c.content);
      args.push('write', c.path, '', String(c.content.length), sha, c.mode ?? '', c.owner ?? '', c.group ?? '', c.backup ? '1' : '0', rec, installedMac(store, c.path, sha), validate);
    } else if (c.op === 'remove') {
      args.push('remove', c.path, '', '0', '', '', '', '', '0', rec, installedMac(store, c.path, 'absent'), '');
    } else {
      args.push('rename', c.path, c.from, '0', '', '', '', '', '0', rec, '', '');
    }
  }
  const stdin = Buffer.concat(contents);
  const res = await signedExec(
    shell,
    store,
    names,
    sh`sh -c ${hostScript('commit')} pgtls-commit ${diropScript()} ${runId} ${store.dir} ${READ_CAP} ${stdin.length} ${omacs.join('\n')} ${args}`,
    stdin,
    run,
  );
  const backups = new Map<string, string>();
  for (const m of res.stdout.toString('utf8').matchAll(/^backup=(.*)$/gm)) {
    const path = changes.find((c) => m[1]!.startsWith(`${c.path}.`))?.path;
    if (path) backups.set(path, m[1]!);
  }
  return backups;
}

/** Writes one file (commitChanges with a single change). Prints `backup=PATH` when a backup was made. */
export async function writeRemoteFile(shell: HostShell, path: string, content: Buffer, opts: WriteOptions): Promise<{ backupPath?: string }> {
  const { runId = '', state, ...rest } = opts;
  const backups = await commitChanges(shell, [{ op: 'write', path, content, ...rest }], runId, state);
  const b = backups.get(path);
  return b ? { backupPath: b } : {};
}

/** Removes a file, keeping its content for this run's rollback and its original for an uninstall. */
export async function removeRemoteFile(shell: HostShell, path: string, runId: string, store: StateStore): Promise<void> {
  await commitChanges(shell, [{ op: 'remove', path }], runId, store);
}

/** Puts back what this run's rollback copies hold (paths newest change first), and drops the copies. */
export async function restoreFromRollback(shell: HostShell, paths: string[], runId: string): Promise<void> {
  if (paths.length === 0) return;
  await shell.exec(sh`sh -c ${hostScript('rollback')} pgtls-rollback ${diropScript()} restore ${runId} ${paths}`);
}

/** Removes temp files this run made on the host and will not install (a new key whose certificate never came). */
export async function dropTempFiles(shell: HostShell, paths: string[], runId: string): Promise<void> {
  if (paths.length === 0) return;
  await shell.exec(sh`sh -c ${hostScript('rollback')} pgtls-rollback ${diropScript()} drop-temp ${runId} ${paths}`);
}

/** Forgets this run's rollback copies of these paths (the new state is proven good, or the run ends). */
export async function dropRollback(shell: HostShell, paths: string[], runId: string): Promise<void> {
  if (paths.length === 0) return;
  await shell.exec(dropRollbackCommand(paths, runId));
}

export function dropRollbackCommand(paths: string[], runId: string): ShellCommand {
  return sh`sh -c ${hostScript('rollback')} pgtls-rollback ${diropScript()} drop ${runId} ${paths}`;
}

/** Where a run keeps the previous content of PATH (next to it, named by the run). */
export function rollbackPathFor(path: string, runId: string): string {
  const slash = path.lastIndexOf('/');
  return `${path.slice(0, slash + 1)}.${path.slice(slash + 1)}.pgtls-rb.${runId}`;
}
