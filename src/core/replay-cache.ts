/**
 * The replay record (HostSession.replayRecord) kept on the controller between runs, one file per
 * host: what the last run read and asked that no task declares, so the next run asks it in the same
 * round trip as its lock instead of one round trip per task (a no-change re-run: the lock, then the
 * unlock). A stale or missing record only costs round trips: an answer counts only for the identical
 * query, under the same rules as a declared one.
 *
 * The commands in it run on the host (as root, or as the user each names), so the file is trusted
 * only as much as the controller's own SSH key: it must be a regular file owned by the user running
 * pgtls, that nobody else can write, in a directory of that user's that nobody else can write. Any
 * other file is ignored (and never followed through a symlink). No secret is ever in it: commands
 * never carry one (src/lib/sh.ts), and a text that names a known secret is left out all the same.
 * A password login is kept with the name of the host variable its password came from (`stdinVar`):
 * the next run sends that variable's value as the inventory has it then, on the batch's stdin; the
 * answer counts only for the identical login with the identical password, as any other.
 *
 * Where: $PGTLS_CACHE_DIR, else $XDG_CACHE_HOME/pgtls, else ~/.cache/pgtls; PGTLS_CACHE_DIR=off
 * keeps no record.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import * as z from 'zod';
import { writeFileAtomic } from '../lib/private-file.js';
import { redactKnown } from '../lib/secret.js';
import type { ReplayRecord } from './probe.js';

/** At most this much of a record is kept (a host's usual record is a few kilobytes). */
const MAX_PROBES = 64;
const MAX_READS = 64;
// (a host script with the library it starts with is ~70 KB: gencert's key probe)
const MAX_COMMAND_BYTES = 128 * 1024;
/** All of a record's commands together (a first round trip carries at most MAX_BATCH_BYTES of them). */
const MAX_RECORD_BYTES = 192 * 1024;

const recordSchema = z.object({
  reads: z.array(z.object({ path: z.string().startsWith('/'), user: z.string().min(1).optional() }).strict()).max(MAX_READS),
  probes: z
    .array(z.object({ cmd: z.string().min(1).max(MAX_COMMAND_BYTES), user: z.string().min(1).optional(), stdinVar: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional() }).strict())
    .max(MAX_PROBES),
});

/** The directory of the records, or null when they are off. */
export function replayDir(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.PGTLS_CACHE_DIR === 'off') return null;
  if (env.PGTLS_CACHE_DIR) return join(env.PGTLS_CACHE_DIR, 'replay');
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'pgtls', 'replay');
}

/** One file per host and way of reaching it (a host reached as another user, or through sudo, is another record). */
export function replayFile(dir: string, who: { host: string; address: string; port: number; user: string; becomeUser?: string }): string {
  const id = createHash('sha256').update(JSON.stringify([who.host, who.address, who.port, who.user, who.becomeUser ?? ''])).digest('hex').slice(0, 32);
  return join(dir, `${id}.json`);
}

const EMPTY: ReplayRecord = { reads: [], probes: [] };

/** The record, if there is one this user alone could have written; else an empty one. */
export function loadReplay(file: string): ReplayRecord {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return EMPTY;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || !ownedAndPrivate(st) || !dirIsPrivate(resolve(file, '..'))) return EMPTY;
    const parsed = recordSchema.safeParse(JSON.parse(readFileSync(fd, 'utf8')));
    return parsed.success ? stripUndefined(parsed.data) : EMPTY;
  } catch {
    return EMPTY;
  } finally {
    closeSync(fd);
  }
}

/** Keeps the record for the next run (0600, atomically); a record that cannot be written is only a slower next run. */
export function saveReplay(file: string, record: ReplayRecord): void {
  // in order (what a no-change run asks comes first), as much as one first round trip could carry anyway
  let room = MAX_RECORD_BYTES;
  const probes = record.probes.filter((p) => {
    const size = Buffer.byteLength(p.cmd);
    return size <= MAX_COMMAND_BYTES && size <= room && redactKnown(p.cmd) === p.cmd && (room -= size) >= 0;
  });
  const kept: ReplayRecord = { reads: record.reads.slice(0, MAX_READS), probes: probes.slice(0, MAX_PROBES) };
  try {
    const dir = resolve(file, '..');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!dirIsPrivate(dir)) return;
    writeFileAtomic(file, `${JSON.stringify(kept)}\n`, 0o600);
  } catch {
    // (a read-only home, a full disk: the next run asks task by task, as a first run does)
  }
}

function ownedAndPrivate(st: { uid: number; mode: number }): boolean {
  return st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
}

/** The directory is this user's and nobody else can write it, nor swap it: every parent is this user's or root's, and not writable by others unless sticky. */
function dirIsPrivate(dir: string): boolean {
  try {
    const st = lstatSync(dir);
    if (!st.isDirectory() || !ownedAndPrivate(st)) return false;
    for (let d = resolve(dir, '..'); ; d = resolve(d, '..')) {
      const p = lstatSync(d);
      const sticky = (p.mode & 0o1000) !== 0;
      if (!p.isDirectory() || (p.uid !== 0 && p.uid !== process.getuid?.()) || ((p.mode & 0o022) !== 0 && !sticky)) return false;
      if (d === '/') return true;
    }
  } catch {
    return false;
  }
}

function stripUndefined(r: z.infer<typeof recordSchema>): ReplayRecord {
  return {
    reads: r.reads.map((x) => (x.user === undefined ? { path: x.path } : { path: x.path, user: x.user })),
    probes: r.probes.map((x) => ({ cmd: x.cmd, ...(x.user === undefined ? {} : { user: x.user }), ...(x.stdinVar === undefined ? {} : { stdinVar: x.stdinVar }) })),
  };
}
