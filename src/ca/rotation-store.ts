/**
 * CA rotation, the controller's part: the state lives in pgtls_ca_dir, next to ca.crt/ca.key.
 *
 *   steady     ca.{crt,key}                               no rotation
 *   staged     ca.{crt,key} = old, next/ = new CA         step `ca` begun: hosts trust both CAs
 *   published  ca.{crt,key} = new, previous/ = old CA     step `ca` done: ca.crt is what clients get now
 *   (ca-finish) previous/ -> retired/<time>-<serial>/ without its key: back to steady
 * next/ and previous/ also hold the two cross certificates (cross.crt: new by old, cross-back.crt:
 * old by new), made once: their bytes end up in server.crt, which must not change on every run.
 *
 * Every transition is built in a temp directory and published with one rename(2) of a directory,
 * so a crash or a second pgtls process never sees half a state: rename onto an existing non-empty
 * directory fails, and the loser reads the winner's state. Publishing swaps ca.key/ca.crt one file
 * at a time, but while it does next/ still exists, and readers then take both CAs from next/ and
 * previous/, never from the half-swapped top level.
 *
 * --check never writes here: it works on an in-memory copy (a throwaway new CA), so the dry run
 * plans the same host changes the real run would.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { TaskError } from '../lib/errors.js';
import { certIssuedBy, createCA, crossSign, inspectCert, type CertAndKey } from '../crypto/x509.js';
import { forgetCa, readCaPair } from './ca.js';
import { sealCaKey } from './ca-key.js';
import { writeFileAtomic, writeNewFile } from '../lib/private-file.js';
import type { Rotation } from './rotation.js';
import type { CaRun } from './ca-run.js';

export interface NewCaOptions {
  commonName?: string;
  days: number;
  keyBits: number;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

async function readPair(run: CaRun, dir: string, what: string): Promise<CertAndKey> {
  const ca = await readCaPair(run, dir);
  if (!ca) throw new TaskError(`${what}: no CA in ${dir}`);
  return ca;
}

async function readCross(dir: string): Promise<{ forward: string; back: string }> {
  const [forward, back] = await Promise.all([readFile(join(dir, 'cross.crt'), 'utf8'), readFile(join(dir, 'cross-back.crt'), 'utf8')]);
  return { forward, back };
}

/** A rotation whose files do not link the two CAs would break clients: refuse it loudly. */
function checked(r: Rotation, dir: string): Rotation {
  const keyOf = (pem: string) => inspectCert(pem).publicKeyFingerprint;
  const ok =
    certIssuedBy(r.forward, r.oldCaPem) &&
    keyOf(r.forward) === keyOf(r.next.certPem) &&
    certIssuedBy(r.back, r.next.certPem) &&
    keyOf(r.back) === keyOf(r.oldCaPem);
  if (!ok) throw new TaskError(`CA rotation in ${dir}: the cross certificates do not link the old and the new CA; restore ${dir} from a backup`);
  return r;
}

/** The rotation in progress in `dir` (null when none), from disk. */
export async function readRotation(run: CaRun, caDir: string): Promise<Rotation | null> {
  const dir = resolve(caDir);
  const next = join(dir, 'next');
  const previous = join(dir, 'previous');
  const [hasNext, hasPrevious] = await Promise.all([exists(next), exists(previous)]);
  if (hasNext) {
    // staged, or a publish that stopped half-way (then previous/ already holds the old CA)
    const [old, nextCa, cross] = await Promise.all([readPair(run, hasPrevious ? previous : dir, 'old CA'), readPair(run, next, 'new CA'), readCross(next)]);
    return checked({ oldCaPem: old.certPem, next: nextCa, ...cross, published: false }, dir);
  }
  if (hasPrevious) {
    const [old, current, cross] = await Promise.all([readPair(run, previous, 'old CA'), readPair(run, dir, 'CA'), readCross(previous)]);
    return checked({ oldCaPem: old.certPem, next: current, ...cross, published: true }, dir);
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------
// --check: the controller as this run would have left it, in memory only

// (CaRun.simulated: the run's own, so one --check run's simulation is never seen by another run in this process)

/**
 * readRotation, or the state earlier steps of a --check run would have left (only --check simulates steps,
 * so in a real run this is what is on disk).
 */
export async function viewRotation(run: CaRun, caDir: string): Promise<Rotation | null> {
  const dir = resolve(caDir);
  if (run.simulated.has(dir)) return run.simulated.get(dir) ?? null;
  return readRotation(run, dir);
}

// ---------------------------------------------------------------------------------------------------------
// Transitions. Hosts run them concurrently: one in-flight promise per directory and step; a caller that
// comes later reads the new state and finds nothing to do (so exactly one host reports the change).

function once(run: CaRun, key: string, fn: () => Promise<string | null>): { done: Promise<string | null>; mine: boolean } {
  const p = run.inflight.get(key);
  if (p) return { done: p, mine: false };
  const q = fn().finally(() => run.inflight.delete(key));
  run.inflight.set(key, q);
  return { done: q, mine: true };
}

/** The new CA's name: the old one's, stamped, so the two never share a subject (chain building goes by names). */
export function nextCommonName(oldCn: string | null, wanted: string | undefined, now = new Date()): string {
  const stamp = now.toISOString().slice(0, 19).replace('T', ' ');
  const base = (wanted ?? oldCn ?? 'pgtls CA').replace(/ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/, '');
  return `${base.slice(0, 64 - stamp.length - 1)} ${stamp}`;
}

async function makeRotationFiles(current: CertAndKey, o: NewCaOptions): Promise<{ next: CertAndKey; forward: string; back: string }> {
  const next = await createCA({ commonName: nextCommonName(inspectCert(current.certPem).subjectCN, o.commonName), days: o.days, keyBits: o.keyBits });
  return { next, forward: crossSign({ certPem: next.certPem, by: current }), back: crossSign({ certPem: current.certPem, by: next }) };
}

/** Writes files into a fresh temp dir next to `target`, then renames it to `target`; false if `target` exists. */
async function publishDir(target: string, files: Record<string, { text: string; mode: number }>): Promise<boolean> {
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await mkdir(tmp, { mode: 0o700 });
  try {
    await chmod(tmp, 0o700);
    for (const [name, f] of Object.entries(files)) writeNewFile(join(tmp, name), f.text, f.mode);
    try {
      await rename(tmp, target);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') return false; // another process got there first
      throw e;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

const caFiles = (run: CaRun, ca: CertAndKey, cross: { forward: string; back: string }) => ({
  'ca.crt': { text: ca.certPem, mode: 0o644 },
  'ca.key': { text: sealCaKey(ca.keyPem, run.passphraseFile), mode: 0o600 },
  'cross.crt': { text: cross.forward, mode: 0o644 },
  'cross-back.crt': { text: cross.back, mode: 0o644 },
});

/**
 * Step 1: a new CA in next/ (with both cross certificates), unless a rotation is already in
 * progress (then that one continues: re-running `ca` after a failure must not start another).
 * Returns what was done, or null when nothing was.
 */
export function beginRotation(run: CaRun, caDir: string, o: NewCaOptions & { simulate: boolean }): { done: Promise<string | null>; mine: boolean } {
  const dir = resolve(caDir);
  return once(run, `begin\0${dir}\0${o.simulate}`, async () => {
    if (await viewRotation(run, dir)) return null;
    const current = await readCaPair(run, dir);
    if (!current) {
      if (o.simulate) return `would create a CA in ${dir}, then rotate it`; // install not run yet: nothing to plan further
      throw new TaskError(`no CA in ${dir} to rotate: run install.yaml first`);
    }
    const made = await makeRotationFiles(current, o);
    const what = `new CA "${inspectCert(made.next.certPem).subjectCN}" in ${join(dir, 'next')}, cross-signed both ways with "${inspectCert(current.certPem).subjectCN}"`;
    if (o.simulate) {
      run.simulated.set(dir, { oldCaPem: current.certPem, ...made, published: false });
      return `would create a ${what}`;
    }
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (!(await publishDir(join(dir, 'next'), caFiles(run, made.next, made)))) return null;
    return `created a ${what}`;
  });
}

/**
 * The end of step `ca`: the new CA becomes ca.crt/ca.key (what clients are given from now on),
 * the old one moves to previous/. Resumes a publish that stopped half-way.
 */
export function publishRotation(run: CaRun, caDir: string, simulate: boolean): { done: Promise<string | null>; mine: boolean } {
  const dir = resolve(caDir);
  return once(run, `publish\0${dir}\0${simulate}`, async () => {
    const r = await viewRotation(run, dir);
    if (!r) {
      if (simulate) return null; // begin reported what it would do
      throw new TaskError(`no CA rotation in progress in ${dir}: nothing to publish`);
    }
    if (r.published) return null;
    const what = `the new CA "${inspectCert(r.next.certPem).subjectCN}" as ${join(dir, 'ca.crt')} (the old one kept in ${join(dir, 'previous')} until ca-finish)`;
    if (simulate) {
      run.simulated.set(dir, { ...r, published: true });
      return `would publish ${what}`;
    }
    const next = join(dir, 'next');
    const previous = join(dir, 'previous');
    if (!(await exists(previous))) {
      const old = await readPair(run, dir, 'old CA');
      await publishDir(previous, caFiles(run, old, r));
    }
    // key first: a reader that finds next/ gone sees a consistent pair (readers use next/ while it exists)
    writeFileAtomic(join(dir, 'ca.key'), sealCaKey(r.next.keyPem, run.passphraseFile), 0o600);
    writeFileAtomic(join(dir, 'ca.crt'), r.next.certPem, 0o644);
    await rm(next, { recursive: true, force: true });
    forgetCa(run, dir);
    return `published ${what}`;
  });
}

/**
 * ca-finish: the old CA is retired: previous/ moves to retired/<time>-<serial>/ and its KEY is
 * deleted (a retired CA must never sign again; its certificate stays for the record).
 */
export function finishRotation(run: CaRun, caDir: string, simulate: boolean): { done: Promise<string | null>; mine: boolean } {
  const dir = resolve(caDir);
  return once(run, `finish\0${dir}\0${simulate}`, async () => {
    const r = await viewRotation(run, dir);
    if (!r) return null;
    if (!r.published) throw new TaskError(`the CA rotation in ${dir} was not completed (the new CA is not published yet): run reissue=ca again before ca-finish`);
    const info = inspectCert(r.oldCaPem);
    const target = join(dir, 'retired', `${new Date().toISOString().replace(/[:.]/g, '-')}-${info.serialHex.slice(0, 8)}`);
    if (simulate) {
      run.simulated.set(dir, null);
      return `would retire the old CA "${info.subjectCN}" to ${target} (certificate only)`;
    }
    await mkdir(join(dir, 'retired'), { recursive: true, mode: 0o700 });
    try {
      await rename(join(dir, 'previous'), target);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null; // another process retired it
      throw e;
    }
    await unlink(join(target, 'ca.key'));
    return `retired the old CA "${info.subjectCN}" to ${target} (its key deleted)`;
  });
}
