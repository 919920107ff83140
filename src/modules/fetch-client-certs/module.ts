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
 * The local write is a controller-side (local) action that the exec reading the files returns: it
 * runs only in a real run and only after that read succeeded. Files this run has yet to write (a
 * certificate gencert issues in the same run) make the change conditional: read when applied.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import * as z from 'zod';
import { TaskError } from '../../lib/errors.js';
import { defineLocalOp, defineModule, localWith, type Action, type Change, type PlanContext } from '../../lib/plan-types.js';
import { Secret } from '../../lib/secret.js';
import { inspectCert } from '../../crypto/x509.js';
import { sh } from '../../lib/sh.js';
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

/** Each file as "<size>\\n<bytes>", in order. */
const CAT = `cd / || exit 1
for f; do [ -r "$f" ] || { echo "cannot read $f as $(id -un): were client certificates issued (gencert client: true)?" >&2; exit 1; }; done
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

/** The three files on the controller, journaled (put back if the host rolls back); the key travels as a Secret. */
const writeClientCerts = defineLocalOp('fetch_client_certs.write', async (target, p: { dir: string; files: Secret[] }, simulate) => {
  if (simulate) return;
  await mkdir(p.dir, { recursive: true, mode: 0o700 });
  await chmod(p.dir, 0o700);
  for (const [i, f] of FILES.entries()) await target.writeFile(join(p.dir, f.name), Buffer.from(p.files[i]!.reveal(), 'utf8'), f.mode);
  return null;
});

/** Names what the read of the three files printed (ExecAction.output), for the planning round after it. */
const READ_OUTPUT = 'fetch_client_certs.files';

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
  localOps: [writeClientCerts],
  async plan(ctx, a): Promise<Change[]> {
    if (ctx.host.includes('/') || ctx.host.startsWith('.')) throw new TaskError(`host name '${ctx.host}' cannot be a directory name`);
    const dir = join(a.dest, ctx.host);
    const remote = FILES.map((f) => posix.join(a.keys_dir, 'client', f.name));
    const diff = { kind: 'redacted', path: dir, note: 'client certificate, key (0600) and CA certificate (not shown)' } as const;
    // sums as the files' owner reads them; the executor answers for files this run planned and did not write yet
    const st = await ctx.stat(remote, { user: a.owner, sha256: true });
    const sums = remote.map((p) => st.get(p)?.sha256);
    const read = ctx.output(READ_OUTPUT);
    if (read) {
      // planned again after the read: the files as their owner read them go to the controller
      const files = splitFramed(read, FILES.length);
      // read twice (sums, then content): make sure the files did not change in between
      if (files.some((f, i) => sha256(f) !== sums[i])) throw new TaskError('the client certificate files changed while they were read; run again');
      const cn = checkCn(ctx, files[0]!.toString('utf8'), a.cert_auth_users ?? []);
      const contents = files.map((f) => new Secret(f.toString('utf8')));
      return [{ summary: fetchSummary(dir, cn), diff, actions: [localWith(writeClientCerts, { dir, files: contents }, { description: `write the client certificate files to ${dir}/` })] }];
    }
    if (sums.some((x) => !x) || remote.some((p) => st.get(p)?.pending)) {
      // Not (all) on the host yet: an earlier task of this run writes them (--check), or they were never
      // issued. What is there is known when the files are read, at apply time.
      return [{ summary: fetchSummary(dir, null), conditional: true, replan: true, diff, actions: [readAction(a)] }];
    }
    const cert = await ctx.readFile(remote[0]!, { user: a.owner }); // a certificate is public; its CN is checked
    const cn = checkCn(ctx, cert?.content.toString('utf8') ?? '', a.cert_auth_users ?? []);

    const local = await localState(dir);
    if (local.modesOk && local.sums.every((s, i) => s === sums[i])) return [];
    return [{ summary: fetchSummary(dir, cn), replan: true, diff, actions: [readAction(a)] }];
  },
});

const fetchSummary = (dir: string, cn: string | null) => `fetch client.crt${cn ? ` (CN=${cn})` : ''}, client.key, root.crt to ${dir}/`;

type Args = z.infer<typeof args>;

/** Reads the three files as their owner (fails naming what it cannot read); the task is planned again with what it printed. */
function readAction(a: Args): Action {
  return {
    kind: 'exec',
    description: `read the client certificate files as ${a.owner}`,
    cmd: sh`sh -c ${CAT} pgtls-cat ${FILES.map((f) => posix.join(a.keys_dir, 'client', f.name))}`,
    user: a.owner,
    output: READ_OUTPUT,
  };
}
