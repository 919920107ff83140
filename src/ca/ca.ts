/**
 * The CA lives on the controller: `ca.crt` + `ca.key` (0600) in a directory
 * (0700). Its key is never sent to a host (the seed kept it on every node).
 *
 * Several hosts plan at the same time and must all get the SAME CA, and two
 * pgtls processes may run against the same directory. So:
 *  - in the run: one promise per directory (CaRun.cache: the first caller
 *    creates, the others await it);
 *  - across processes: the key is published with link(2), which fails with
 *    EEXIST if the file exists (an atomic "create if absent"); the loser
 *    discards its CA and reads the winner's. The certificate is renamed into
 *    place right after; a reader that sees the key but not yet the
 *    certificate waits a moment for it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { link, mkdir, readFile, rename, unlink } from 'node:fs/promises';
import { writeNewFile } from '../lib/private-file.js';
import { join, resolve } from 'node:path';
import { TaskError } from '../lib/errors.js';
import { certMatchesKey, createCA, generateKeyPair, inspectCert, type CertAndKey } from '../crypto/x509.js';
import { checkCaPermissions, openCaKey, sealCaKey } from './ca-key.js';
import type { CaRun } from './ca-run.js';

export interface CaOptions {
  dir: string;
  commonName: string;
  days: number;
  keyBits: number;
  /** false when planning: a missing CA is reported (null), not created; the executor creates it (create: true). */
  create: boolean;
}

/** The directory of the CA a host's certificates come from (shared, or one per node). */
export function caDirFor(ca: 'shared' | 'per_node', caDir: string, host: string): string {
  return ca === 'per_node' ? join(caDir, 'nodes', host) : caDir;
}

/** The CA in `dir`, created on first use (unless opts.create is false: then null when absent). */
export function loadOrCreateCa(run: CaRun, opts: CaOptions): Promise<CertAndKey | null> {
  const { cache } = run;
  const dir = resolve(opts.dir);
  const key = `${dir}\0${opts.create}`;
  let p = cache.get(key);
  if (!p) {
    p = obtain(run, { ...opts, dir });
    cache.set(key, p);
    // a failure (e.g. permissions) may be fixed before the next call, and an absent CA may be created since
    p.then((ca) => ca === null && cache.delete(key), () => cache.delete(key));
  }
  return p;
}

const MAX_SPARE_KEYS = 2;
/** CaRun.spareKeys' key: the CA's directory and its key size. */
const spareKeyOf = (dir: string, keyBits: number): string => `${resolve(dir)}\0${keyBits}`;

/**
 * Starts generating the key of the CA `dir` will need when it has none yet (off the event loop), for
 * the run's creation of it to take; nothing is written. A CA that exists, or a key already started: nothing.
 */
export function warmCaKey(run: CaRun, dir: string, keyBits: number): void {
  const key = spareKeyOf(dir, keyBits);
  // (a few at most: per-node CAs of a whole fleet at once would hold every threadpool thread, which
  // the hosts' connections need for their file reads, for seconds; the rest are made when created)
  if (run.spareKeys.size >= MAX_SPARE_KEYS || run.spareKeys.has(key) || existsSync(join(dir, 'ca.key')) || existsSync(join(dir, 'ca.crt'))) return;
  const p = generateKeyPair(keyBits).then((k) => k.keyPem);
  p.catch(() => undefined); // (a failure is the creation's to report: it generates its own key then)
  run.spareKeys.set(key, p);
}

/** The key warmCaKey started for this CA, once (undefined: none, or it failed). */
async function takeSpareKey(run: CaRun, dir: string, keyBits: number): Promise<string | undefined> {
  const key = spareKeyOf(dir, keyBits);
  const p = run.spareKeys.get(key);
  if (!p) return undefined;
  run.spareKeys.delete(key);
  return p.catch(() => undefined);
}

/** Drops the cached CA of `dir` (a CA rotation replaced ca.crt/ca.key). */
export function forgetCa(run: CaRun, dir: string): void {
  const d = resolve(dir);
  for (const k of [...run.cache.keys()]) if (k.startsWith(`${d}\0`)) run.cache.delete(k);
}

/** The CA in `dir` as it is on disk now (null when there is none), without creating or caching it. */
export function readCaPair(run: CaRun, dir: string): Promise<CertAndKey | null> {
  return readCa(run, resolve(dir));
}

async function readIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** Reads a complete CA; waits up to ~5 s when another process is half-way through creating it. */
async function readCa(run: CaRun, dir: string): Promise<CertAndKey | null> {
  for (let i = 0; ; i++) {
    checkCaPermissions(dir);
    const [certPem, stored] = await Promise.all([readIfExists(join(dir, 'ca.crt')), readIfExists(join(dir, 'ca.key'))]);
    if (certPem === null && stored === null) return null;
    if (certPem !== null && stored !== null) {
      const keyPem = openCaKey(stored, join(dir, 'ca.key'), run.passphraseFile);
      if (!certMatchesKey(certPem, keyPem)) throw new TaskError(`CA in ${dir}: ca.key does not match ca.crt`);
      if (!inspectCert(certPem).isCA) throw new TaskError(`CA in ${dir}: ca.crt is not a CA certificate`);
      return { certPem, keyPem };
    }
    if (i >= 50) throw new TaskError(`incomplete CA in ${dir}: ${certPem === null ? 'ca.key without ca.crt' : 'ca.crt without ca.key'}; restore or remove it`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function obtain(run: CaRun, opts: CaOptions): Promise<CertAndKey | null> {
  const existing = await readCa(run, opts.dir);
  if (existing || !opts.create) return existing;
  await mkdir(opts.dir, { recursive: true, mode: 0o700 });
  checkCaPermissions(opts.dir);
  const keyPem = await takeSpareKey(run, opts.dir, opts.keyBits);
  const ca = await createCA({ commonName: opts.commonName, days: opts.days, keyBits: opts.keyBits, ...(keyPem ? { keyPem } : {}) });
  const tag = `${process.pid}.${randomBytes(4).toString('hex')}`;
  const tmpKey = join(opts.dir, `.ca.key.${tag}`);
  const tmpCrt = join(opts.dir, `.ca.crt.${tag}`);
  try {
    writeNewFile(tmpKey, sealCaKey(ca.keyPem, run.passphraseFile), 0o600);
    writeNewFile(tmpCrt, ca.certPem, 0o644);
    try {
      await link(tmpKey, join(opts.dir, 'ca.key'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      return await readCa(run, opts.dir); // another process won the race: use its CA
    }
    await rename(tmpCrt, join(opts.dir, 'ca.crt'));
    return ca;
  } finally {
    await unlink(tmpKey).catch(() => undefined);
    await unlink(tmpCrt).catch(() => undefined);
  }
}
