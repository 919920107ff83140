import { closeSync, constants, fchmodSync, fstatSync, lstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Files pgtls writes on the controller (the --json report, PGTLS_COMMAND_LOG) name hosts, paths
 * and failures: they are created 0600, and never through a symlink (someone who can write the
 * directory must not make pgtls overwrite or reveal another file). O_NOFOLLOW refuses a symlink at
 * open time, so there is no window between a check and the open.
 */
export class OutputFileError extends Error {
  constructor(file: string, why: string) {
    super(`${file}: ${why}`);
    this.name = 'OutputFileError';
  }
}

/** Refuses a path that is a symlink now (a clear error before any host is contacted). */
export function checkOutputPath(file: string): void {
  try {
    if (lstatSync(file).isSymbolicLink()) throw new OutputFileError(file, 'is a symbolic link; refusing to write through it');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/**
 * The one controller-side file writer (reports, fetched certificates, the CA, the textfile collector's
 * output): a new file created exclusively (O_EXCL, never through a symlink) next to the target, given
 * exactly `mode` whatever the umask, then renamed over it (rename replaces a symlink itself, never its
 * target; an existing symlink is refused anyway). A reader sees the old file or the new one, never half.
 */
export function writeFileAtomic(file: string, content: string | Buffer, mode = 0o600): void {
  checkOutputPath(file);
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  writeNewFile(tmp, content, mode);
  try {
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Creates `file`, which must not exist yet (O_EXCL, never through a symlink), with exactly `mode`; removed again if the write fails. */
export function writeNewFile(file: string, content: string | Buffer, mode = 0o600): void {
  const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    fchmodSync(fd, mode);
    writeSync(fd, typeof content === 'string' ? Buffer.from(content) : content);
  } catch (e) {
    closeSync(fd);
    rmSync(file, { force: true });
    throw e;
  }
  closeSync(fd);
}

/** Whole-file write of a private file (0600): the --json report, JUnit, the command log's kin. */
export function writePrivateFile(file: string, content: string): void {
  writeFileAtomic(file, content, 0o600);
}

/** Opens a file for appending: created 0600 when missing, an existing one made 0600; a symlink is refused. */
export function openPrivateAppend(file: string): number {
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new OutputFileError(file, 'is a symbolic link; refusing to write through it');
    throw e;
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new OutputFileError(file, 'is not a regular file');
  }
  if ((st.mode & 0o077) !== 0) fchmodSync(fd, 0o600);
  return fd;
}
