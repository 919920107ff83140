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

/** The records' base name for a path: the first 40 hex digits of its sha256 (as pgtls_state_name). */
export function recordBase(stateDir: string, path: string): string {
  return posix.join(stateDir, createHash('sha256').update(path).digest('hex').slice(0, 40));
}

/** Shell functions shared by the write script and the standalone prepare/record commands. */
export const STATE_FUNCTIONS = `
pgtls_state_init() {
  [ -n "$state" ] || return 0
  if [ -z "$sowner" ]; then if id -u postgres >/dev/null 2>&1; then sowner=postgres; else sowner=$(id -un); fi; fi
  if [ ! -d "$state" ]; then (umask 077; mkdir -p -- "$state"); chown -- "$sowner" "$state"; fi
}
pgtls_state_name() { printf '%s/%s' "$state" "$(printf %s "$1" | sha256sum | cut -c1-40)"; }
pgtls_own() { chown -- "$sowner" "$1" 2>/dev/null || true; chmod 600 -- "$1"; }
# pgtls_prepare PATH ROLLBACK: copy for a rollback in this run, and the original, once ever
pgtls_prepare() {
  p=$1 rb=$2
  if [ -n "$rb" ] && [ ! -e "$rb" ] && [ ! -e "$rb.absent" ]; then
    if [ -e "$p" ]; then cp -p -- "$p" "$rb"; else : > "$rb.absent"; fi
  fi
  [ -n "$state" ] || return 0
  case "$p" in "$state"/*) return 0 ;; esac   # the records themselves are never recorded
  pgtls_state_init
  n=$(pgtls_state_name "$p")
  if [ ! -e "$n.orig" ] && [ ! -e "$n.absent" ]; then
    printf '%s' "$p" > "$n.path.tmp"; pgtls_own "$n.path.tmp"; mv -f -- "$n.path.tmp" "$n.path"
    if [ -e "$p" ]; then cp -- "$p" "$n.orig.tmp"; pgtls_own "$n.orig.tmp"; mv -f -- "$n.orig.tmp" "$n.orig"
    else : > "$n.absent"; pgtls_own "$n.absent"; fi
  fi
}
# pgtls_record PATH: what pgtls left there
pgtls_record() {
  [ -n "$state" ] || return 0
  p=$1
  case "$p" in "$state"/*) return 0 ;; esac
  n=$(pgtls_state_name "$p")
  rm -f -- "$n.installed" "$n.installed.sha256" "$n.installed.absent"
  if [ ! -e "$p" ]; then : > "$n.installed.absent"; pgtls_own "$n.installed.absent"
  elif [ -e "$n.orig" ]; then cp -- "$p" "$n.installed.tmp"; pgtls_own "$n.installed.tmp"; mv -f -- "$n.installed.tmp" "$n.installed"
  else sha256sum < "$p" | cut -d' ' -f1 > "$n.installed.sha256"; pgtls_own "$n.installed.sha256"; fi
}
`;

/** Before an exec that changes `paths`: rollback copies and originals, in one round trip. */
export async function preparePaths(shell: HostShell, store: StateStore | null, items: { path: string; rollback: string }[]): Promise<void> {
  if (items.length === 0) return;
  const script = `set -eu\nstate=$1 sowner=$2\nshift 2\n${STATE_FUNCTIONS}\nwhile [ $# -gt 0 ]; do pgtls_prepare "$1" "$2"; shift 2; done\n`;
  await shell.exec(sh`sh -c ${script} pgtls-prepare ${store?.dir ?? ''} ${store?.owner ?? ''} ${items.flatMap((i) => [i.path, i.rollback])}`);
}

/** After an exec that changed `paths`: remember what pgtls left there. */
export async function recordPaths(shell: HostShell, store: StateStore | null, paths: string[]): Promise<void> {
  if (!store || paths.length === 0) return;
  const script = `set -eu\nstate=$1 sowner=$2\nshift 2\n${STATE_FUNCTIONS}\nfor p in "$@"; do pgtls_record "$p"; done\n`;
  await shell.exec(sh`sh -c ${script} pgtls-record ${store.dir} ${store.owner} ${paths}`);
}
