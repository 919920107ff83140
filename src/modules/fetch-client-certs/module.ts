/**
 * fetch_client_certs: copies a node's client certificate, its key and the CA certificate
 * (gencert's client/client.crt, client/client.key, client/root.crt) to DEST/<host>/ on the
 * controller, for clients that log in with a certificate (pg_hba `cert` rules).
 *
 * The files are read AS THEIR OWNER (the database OS user) with `cat` over the SSH channel:
 * key bytes travel only on that channel's stdout, never on a command line. Planning compares
 * only SHA-256 sums computed on the host, so a second run with nothing new reports no change
 * and moves no key. Locally: DEST/<host> 0700, client.key 0600, certificates 0644, each file
 * written to a temp file and renamed (a reader never sees half a key).
 *
 * The executor has no controller-side action; the local write is the `then` of the exec that
 * reads the files, which runs only in a real run and only after that read succeeded.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { z } from 'zod';
import { TaskError } from '../../core/errors.js';
import { defineModule, type Change, type PlanContext } from '../../core/types.js';
import { inspectCert } from '../../crypto/x509.js';
import { sh } from '../../remote/sh.js';
import { absolutePath } from '../common.js';

const args = z
  .object({
    /** Directory on the controller (relative: to the current directory). */
    dest: z.string().min(1),
    keys_dir: absolutePath.default('/var/lib/jelastic/keys/SSL-TLS'),
    /** The files' owner (pg_os_user): they are read as this user. */
    owner: z.string().min(1),
    /** The roles with `cert` rules: the certificate's CN should be one of them. */
    cert_auth_users: z.array(z.string().min(1)).nullable().default([]),
  })
  .strict();

const FILES = [
  { name: 'client.crt', mode: 0o644 },
  { name: 'client.key', mode: 0o600 },
  { name: 'root.crt', mode: 0o644 },
] as const;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** sha256 of each file as its owner reads it; 'missing' when it cannot be read. */
const SUMS = `cd / || exit 1
for f; do if [ -r "$f" ]; then sha256sum < "$f" | cut -c1-64; else echo missing; fi; done`;
/** Each file as "<size>\\n<bytes>", in order. */
const CAT = `cd / || exit 1
for f; do wc -c < "$f" | tr -d ' '; cat -- "$f"; done`;

/** Splits CAT's output back into the files. */
export function splitFramed(out: Buffer, count: number): Buffer[] {
  const files: Buffer[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const nl = out.indexOf(0x0a, at);
    const size = Number(out.subarray(at, nl).toString('ascii'));
    if (nl < 0 || !Number.isInteger(size)) throw new TaskError('unexpected output while reading the client certificate files');
    files.push(out.subarray(nl + 1, nl + 1 + size));
    at = nl + 1 + size;
  }
  return files;
}

async function localState(dir: string): Promise<{ sums: string[]; modesOk: boolean }> {
  const sums: string[] = [];
  let modesOk = true;
  for (const f of FILES) {
    try {
      const p = join(dir, f.name);
      sums.push(sha256(await readFile(p)));
      if (((await stat(p)).mode & 0o777) !== f.mode) modesOk = false;
    } catch {
      sums.push('missing');
    }
  }
  try {
    if (((await stat(dir)).mode & 0o777) !== 0o700) modesOk = false;
  } catch {
    modesOk = false;
  }
  return { sums, modesOk };
}

async function writeLocal(dir: string, contents: Buffer[]): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  for (const [i, f] of FILES.entries()) {
    const tmp = join(dir, `.${f.name}.pgtls-tmp-${process.pid}`);
    await writeFile(tmp, contents[i]!, { mode: f.mode });
    await chmod(tmp, f.mode); // whatever the umask
    await rename(tmp, join(dir, f.name));
  }
}

function checkCn(ctx: PlanContext, certPem: string, users: string[]): string {
  let cn = '?';
  try {
    cn = inspectCert(certPem).subjectCN ?? '?';
  } catch {
    throw new TaskError('client/client.crt is not a readable certificate');
  }
  if (users.length && !users.includes(cn))
    ctx.warn(`client.crt has CN=${cn}, which is not in pgtls_cert_auth_users (${users.join(', ')}): it cannot log in with the certificate alone`);
  const others = users.filter((u) => u !== cn);
  if (others.length && users.includes(cn))
    ctx.warn(`one client certificate per node (CN=${cn}): ${others.join(', ')} need certificates of their own (CN = role name)`);
  return cn;
}

export const fetchClientCerts = defineModule({
  name: 'fetch_client_certs',
  description: "copy each node's client certificate, key and CA certificate to the controller",
  args,
  async plan(ctx, a): Promise<Change[]> {
    if (ctx.host.includes('/') || ctx.host.startsWith('.')) throw new TaskError(`host name '${ctx.host}' cannot be a directory name`);
    const dir = join(a.dest, ctx.host);
    const remote = FILES.map((f) => posix.join(a.keys_dir, 'client', f.name));
    const sums = (await ctx.query(sh`sh -c ${SUMS} pgtls-sums ${remote}`, { user: a.owner })).stdout.toString('utf8').trim().split('\n');
    const missing = remote.filter((_, i) => sums[i] !== undefined && !/^[0-9a-f]{64}$/.test(sums[i]!));
    // --check on a node whose certificates this very run would issue: they are not there yet
    if (ctx.check && (missing.length || sums.length !== remote.length))
      return [{ summary: `would fetch client.crt, client.key, root.crt to ${dir}/ (once issued)`, actions: [] }];
    if (missing.length || sums.length !== remote.length)
      throw new TaskError(`cannot read ${missing.join(', ') || 'the client certificate files'} as ${a.owner}: were client certificates issued (gencert client: true)?`);
    const cert = await ctx.readFile(remote[0]!, { user: a.owner }); // a certificate is public; its CN is checked
    const cn = checkCn(ctx, cert?.content.toString('utf8') ?? '', a.cert_auth_users ?? []);

    const local = await localState(dir);
    if (local.modesOk && local.sums.every((s, i) => s === sums[i])) return [];
    const summary = `${ctx.check ? 'would fetch' : 'fetch'} client.crt (CN=${cn}), client.key, root.crt to ${dir}/`;
    return [
      {
        summary,
        diff: { kind: 'redacted', path: dir, note: 'client certificate, key (0600) and CA certificate (not shown)' },
        actions: [
          {
            kind: 'exec',
            description: `read the client certificate files as ${a.owner}`,
            cmd: sh`sh -c ${CAT} pgtls-cat ${remote}`,
            user: a.owner,
            then: async (stdout) => {
              const files = splitFramed(stdout, FILES.length);
              // read twice (sums, then content): make sure the files did not change in between
              if (files.some((f, i) => sha256(f) !== sums[i])) throw new TaskError('the client certificate files changed while they were read; run again');
              await writeLocal(dir, files);
              return [];
            },
          },
        ],
      },
    ];
  },
});
