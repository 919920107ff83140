import type { HostShell } from './host-shell.js';
import { sh } from './sh.js';
import { recordOf, STATE_FUNCTIONS, type StateStore } from './state.js';

export interface FileState {
  content: Buffer;
  mode: string; // octal, e.g. "600"
  owner: string;
  group: string;
}

/** Reads a file with its metadata in one round trip; null when it does not exist. */
export async function readRemoteFile(shell: HostShell, path: string, user?: string): Promise<FileState | null> {
  const res = await shell.exec(
    sh`if [ ! -e ${path} ]; then exit 3; fi; stat -L -c '%a %U %G' -- ${path} && exec cat -- ${path}`,
    { okCodes: [0, 3], user },
  );
  if (res.exitCode === 3) return null;
  const nl = res.stdout.indexOf(0x0a);
  const [mode = '', owner = '', group = ''] = res.stdout.subarray(0, nl).toString('utf8').split(' ');
  return { content: res.stdout.subarray(nl + 1), mode, owner, group };
}

export interface WriteOptions {
  mode?: string;
  owner?: string;
  group?: string;
  /** A command with %s for the temp file (Ansible's validate); the file is installed only when it exits 0. */
  validate?: string;
  /** Keep a timestamped copy of the previous content next to the file (Ansible's backup). */
  backup?: boolean;
  /** Where to keep the previous content for a rollback during this run ('' = no copy). */
  rollbackPath?: string;
  /** Where pgtls remembers originals for an uninstall (null: not tracked). */
  state?: StateStore | null;
}

/**
 * Writes a file atomically: the content goes on stdin into a temp file in the
 * same directory (so the rename cannot cross file systems), is fsynced, gets its
 * owner and mode (those of the file it replaces unless told otherwise), is
 * validated, and only then renamed over the target. A reader never sees half a file.
 * Prints `backup=PATH` when a backup was made.
 */
const WRITE_SCRIPT = `set -eu
dst=$1 mode=$2 owner=$3 group=$4 backup=$5 rollback=$6 state=$7 sowner=$8 record=$9
${STATE_FUNCTIONS}
dir=$(dirname -- "$dst")
umask 077
tmp=$(mktemp "$dir/.pgtls-tmp.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
sync -- "$tmp" 2>/dev/null || sync
pgtls_prepare "$dst" "$rollback" "$record"
if [ -e "$dst" ]; then
  chown --reference="$dst" -- "$tmp" 2>/dev/null || true
  chmod --reference="$dst" -- "$tmp"
  if [ "$backup" = 1 ]; then b="$dst.$(date +%Y-%m-%d@%H:%M:%S)~"; cp -p -- "$dst" "$b"; echo "backup=$b"; fi
else
  chmod 0644 -- "$tmp"
fi
if [ -n "$owner" ]; then chown -- "$owner" "$tmp"; fi
if [ -n "$group" ]; then chgrp -- "$group" "$tmp"; fi
if [ -n "$mode" ]; then chmod -- "$mode" "$tmp"; fi
`;

export async function writeRemoteFile(
  shell: HostShell,
  path: string,
  content: Buffer,
  opts: WriteOptions = {},
): Promise<{ backupPath?: string }> {
  // The validate command is playbook-author shell (as in Ansible); %s becomes the quoted temp path.
  const validate = opts.validate ? `${opts.validate.split('%s').join('"$tmp"')} >&2\n` : '';
  const script = `${WRITE_SCRIPT}${validate}mv -f -- "$tmp" "$dst"\ntrap - EXIT\nsync -- "$dir" 2>/dev/null || true\npgtls_record "$dst" "$record"\n`;
  const res = await shell.exec(
    sh`sh -c ${script} pgtls-write ${path} ${opts.mode ?? ''} ${opts.owner ?? ''} ${opts.group ?? ''} ${opts.backup ? '1' : '0'} ${opts.rollbackPath ?? ''} ${opts.state?.dir ?? ''} ${opts.state?.owner ?? ''} ${recordOf(opts.state, path)}`,
    { stdin: content },
  );
  const m = /^backup=(.*)$/m.exec(res.stdout.toString('utf8'));
  return m?.[1] ? { backupPath: m[1] } : {};
}

/** Removes a file, keeping its content for a rollback during this run and its original for an uninstall. */
export async function removeRemoteFile(shell: HostShell, path: string, rollbackPath: string, state: StateStore | null): Promise<void> {
  const script = `set -eu\np=$1 rb=$2 state=$3 sowner=$4 n=$5\n${STATE_FUNCTIONS}\n[ -e "$p" ] || exit 0\npgtls_prepare "$p" "$rb" "$n"\nrm -f -- "$p"\npgtls_record "$p" "$n"\n`;
  await shell.exec(sh`sh -c ${script} pgtls-remove ${path} ${rollbackPath} ${state?.dir ?? ''} ${state?.owner ?? ''} ${recordOf(state, path)}`);
}

/** Puts back what the rollback copies hold (newest run only), then drops the copies. */
export async function restoreFromRollback(shell: HostShell, path: string, rollbackPath: string): Promise<void> {
  await shell.exec(
    sh`if [ -e ${rollbackPath}.absent ]; then rm -f -- ${path} ${rollbackPath}.absent; elif [ -e ${rollbackPath} ]; then mv -f -- ${rollbackPath} ${path}; fi`,
  );
}

export async function dropRollback(shell: HostShell, rollbackPaths: string[]): Promise<void> {
  if (rollbackPaths.length === 0) return;
  const all = rollbackPaths.flatMap((p) => [p, `${p}.absent`]);
  await shell.exec(sh`rm -f -- ${all}`);
}

export function rollbackPathFor(path: string): string {
  const slash = path.lastIndexOf('/');
  return `${path.slice(0, slash + 1)}.${path.slice(slash + 1)}.pgtls-rollback`;
}

