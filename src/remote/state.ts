import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { HostShell } from './host-shell.js';
import { sh } from './sh.js';

/**
 * What pgtls keeps on a host so that a later uninstall can put every file back
 * as it was before pgtls first touched it. For each path (named by a hash of it):
 *   H.path       the path itself
 *   H.orig       its content before pgtls first changed it (or H.absent: it did not exist)
 *   H.installed  its content after pgtls last wrote it (for files that existed before),
 *                so an uninstall can tell whether someone changed it since, and then
 *                revert only pgtls's own lines; H.installed.sha256 for files pgtls created
 *                (a key pgtls generated is never copied: its hash tells whether it is still ours;
 *                a key that existed before pgtls is kept as H.orig, on the same host, 0600).
 * The directory is 0700 and every file 0600, owned by the database's OS user.
 */
export interface StateStore {
  dir: string;
  /** Owner of the state files; empty: 'postgres' when that user exists, else the current user. */
  owner: string;
}

/** The record files kept for one path. */
export const RECORD_SUFFIXES = ['.path', '.orig', '.absent', '.installed', '.installed.sha256', '.installed.absent'] as const;

/** The records' base name for a path: the first 40 hex digits of the sha256 of the path. */
export function recordBase(stateDir: string, path: string): string {
  return posix.join(stateDir, createHash('sha256').update(path).digest('hex').slice(0, 40));
}

/** The record base to hand to the shell functions ('' when originals are not tracked). */
export function recordOf(store: StateStore | null | undefined, path: string): string {
  return store ? recordBase(store.dir, path) : '';
}

/** Shell functions shared by the write script and the standalone prepare/record commands. */
export const STATE_FUNCTIONS = `
pgtls_state_init() {
  [ -n "$state" ] || return 0
  if [ -z "$sowner" ]; then if id -u postgres >/dev/null 2>&1; then sowner=postgres; else sowner=$(id -un); fi; fi
  if [ ! -d "$state" ]; then (umask 077; mkdir -p -- "$state"); chown -- "$sowner" "$state"; fi
}
pgtls_own() { chown -- "$sowner" "$1" 2>/dev/null || true; chmod 600 -- "$1"; }
# pgtls_keep SRC DST: a private copy (0600, owned by sowner), complete before it gets its name
pgtls_keep() { install -m 600 -o "$sowner" -- "$1" "$2.tmp" 2>/dev/null || { cp -- "$1" "$2.tmp"; pgtls_own "$2.tmp"; }; mv -f -- "$2.tmp" "$2"; }
# pgtls_prepare PATH ROLLBACK RECORD: copy for a rollback in this run, and the original, once ever
# (RECORD: the records' base name, recordBase() computed by the controller: no hashing here)
pgtls_prepare() {
  p=$1 rb=$2 n=$3
  if [ -n "$rb" ] && [ ! -e "$rb" ] && [ ! -e "$rb.absent" ]; then
    if [ -e "$p" ]; then cp -p -- "$p" "$rb"; else : > "$rb.absent"; fi
  fi
  [ -n "$state" ] || return 0
  case "$p" in "$state"/*) return 0 ;; esac   # the records themselves are never recorded
  pgtls_state_init
  if [ ! -e "$n.orig" ] && [ ! -e "$n.absent" ]; then
    printf '%s' "$p" > "$n.path.tmp"; pgtls_own "$n.path.tmp"; mv -f -- "$n.path.tmp" "$n.path"
    if [ -e "$p" ]; then pgtls_keep "$p" "$n.orig"
    else : > "$n.absent"; pgtls_own "$n.absent"; fi
  fi
}
# pgtls_record PATH RECORD: what pgtls left there
pgtls_record() {
  [ -n "$state" ] || return 0
  p=$1 n=$2
  case "$p" in "$state"/*) return 0 ;; esac
  rm -f -- "$n.installed" "$n.installed.sha256" "$n.installed.absent"
  if [ ! -e "$p" ]; then : > "$n.installed.absent"; pgtls_own "$n.installed.absent"
  elif [ -e "$n.orig" ]; then pgtls_keep "$p" "$n.installed"
  else sha256sum < "$p" | cut -d' ' -f1 > "$n.installed.sha256"; pgtls_own "$n.installed.sha256"; fi
}
`;

/** Before an exec that changes `paths`: rollback copies and originals, in one round trip. */
export async function preparePaths(shell: HostShell, store: StateStore | null, items: { path: string; rollback: string }[]): Promise<void> {
  if (items.length === 0) return;
  const script = `set -eu\nstate=$1 sowner=$2\nshift 2\n${STATE_FUNCTIONS}\nwhile [ $# -gt 0 ]; do pgtls_prepare "$1" "$2" "$3"; shift 3; done\n`;
  const args = items.flatMap((i) => [i.path, i.rollback, recordOf(store, i.path)]);
  await shell.exec(sh`sh -c ${script} pgtls-prepare ${store?.dir ?? ''} ${store?.owner ?? ''} ${args}`);
}

/** After an exec that changed `paths`: remember what pgtls left there. */
export async function recordPaths(shell: HostShell, store: StateStore | null, paths: string[]): Promise<void> {
  if (!store || paths.length === 0) return;
  const script = `set -eu\nstate=$1 sowner=$2\nshift 2\n${STATE_FUNCTIONS}\nwhile [ $# -gt 0 ]; do pgtls_record "$1" "$2"; shift 2; done\n`;
  await shell.exec(sh`sh -c ${script} pgtls-record ${store.dir} ${store.owner} ${paths.flatMap((p) => [p, recordOf(store, p)])}`);
}
