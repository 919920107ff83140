/**
 * replication_tls (YAML name): a standby verifies its upstream.
 *
 * state: verified (install) — on a standby (pg_is_in_recovery, primary_conninfo set in a file),
 * rewrites only two keywords of primary_conninfo, where the server reads it (the file and line
 * pg_file_settings names: postgresql.auto.conf as `pg_basebackup -R` writes it, postgresql.conf,
 * an included file; recovery.conf before PostgreSQL 12):
 *   sslmode     → verify-full (verify-ca where the conninfo names its upstream by a name the
 *                 upstream's certificate cannot carry, warned; see upstream.ts),
 *   sslrootcert → root_cert (the node's copy of the fleet CA),
 * keeping every other keyword byte for byte (passfile, application_name, an inline password,
 * the slot is primary_slot_name and stays untouched). Then reload (13+; the server restarts the
 * walreceiver itself) or restart (12 and older) and PROVE it streams again with the new conninfo
 * and catches up (verify.ts); otherwise the file goes back, the server reloads again, the host fails.
 * A cascading standby is the same: its upstream is a standby whose walsender serves it.
 *
 * state: original (uninstall) — puts the primary_conninfo line back as it was before pgtls first
 * changed that file (from the original the executor recorded), reloads and proves streaming, so
 * the standby leaves verify-full while its upstream still serves TLS. The file's records are left
 * for restore_originals, which then finds the rest of the file to restore (or nothing).
 *
 * The file's content (it may hold a password) travels on stdin through the executor's write path;
 * diffs and summaries show the conninfo with its password masked.
 */
import { join } from 'node:path';
import * as z from 'zod';
import { TaskError } from '../../lib/errors.js';
import { stateDirOf } from '../../lib/state-dir.js';
import { defineModule, defineVerifier, verifyWith, type Action, type Change, type Diff, type ExecAction, type PlanContext } from '../../lib/plan-types.js';
import { pgServer, type PgServer } from '../../facts/postgres.js';
import { conninfoPolicy, standbyFacts, standbySql } from '../../facts/replication.js';
import { ConninfoError, conninfoValue, maskConninfoPassword, parseConninfo, setConninfoParams } from '../../pgconf/conninfo.js';
import { editGucValue, findGucAssignment, GucFileError, maskConninfoPasswords, replaceGucLine } from '../../pgconf/guc-file.js';
import { recordBase } from '../../remote/state.js';
import { sh } from '../../lib/sh.js';
import { renderValue } from '../../template/render.js';
import { absolutePath } from '../common.js';
import { serviceCommand } from '../../postgres/service.js';
import { decideUpstream, targets, type FleetHost } from './upstream.js';
import { standbyStreams, upstreamServesFleetTls, type StreamExpectation } from './verify.js';

const args = z
  .object({
    state: z.enum(['verified', 'original']).default('verified'),
    /** The fleet CA on this node (gencert's server/root.crt). */
    root_cert: absolutePath.optional(),
    /** The fleet's CA mode (gencert's `ca`): with per-node CAs a standby's root.crt is not its upstream's CA. */
    ca: z.enum(['shared', 'per_node']).default('shared'),
    /** Bounded wait for the walreceiver to stream again and replay to catch up. */
    wait_seconds: z.coerce.number().positive().default(60),
    /** state: original — where the install kept the originals (default pgtls_state_dir). */
    state_dir: absolutePath.optional(),
  })
  .strict()
  .refine((a) => a.state === 'original' || a.root_cert !== undefined, { message: 'root_cert is required with state: verified', path: ['root_cert'] });

type Args = z.infer<typeof args>;

const mask = (text: string) => maskConninfoPasswords(text, maskConninfoPassword);

/** The fleet as the inventory describes it: each host with the names gencert puts in its certificate. */
function fleetFromInventory(ctx: PlanContext): FleetHost[] {
  const hv = (ctx.vars.hostvars ?? {}) as Record<string, Record<string, unknown>>;
  return Object.entries(hv).map(([name, vars]) => {
    const render = (v: unknown): unknown => {
      try {
        return renderValue(v, { vars, env: process.env });
      } catch {
        return undefined; // a template that needs facts of that host: not a name we can know here
      }
    };
    const host = render(vars.ansible_host);
    const sans = render(vars.pgtls_cert_sans);
    const sanList = Array.isArray(sans) ? sans.map(String) : typeof sans === 'string' ? sans.split(',') : [];
    const certNames = [name, ...(typeof host === 'string' && host ? [host] : []), ...sanList.map((x) => x.trim()).filter(Boolean)];
    return { name, certNames, ...(typeof host === 'string' && host ? { address: host } : {}) };
  });
}

/** Addresses of the names the conninfo uses, as the standby itself resolves them. */
async function resolveOnHost(ctx: PlanContext, names: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const n of names) {
    const res = await ctx.query(sh`getent ahosts ${n} || true`, { independentOfFiles: true });
    out.set(n, [...new Set(res.stdout.toString('utf8').split('\n').map((l) => l.split(/\s+/)[0] ?? '').filter(Boolean))]);
  }
  return out;
}

function applyAction(ctx: PlanContext, s: PgServer): { exec: ExecAction; recover: ExecAction; text: string; how: string } {
  const policy = conninfoPolicy(s.versionNum);
  const svc = serviceCommand(ctx, s, policy.apply);
  const timeoutMs = 180_000;
  return {
    // (a reload keeps the postmaster: what discovery found about it still holds; no file the run read changes)
    exec: { kind: 'exec', description: svc.text, cmd: svc.cmd, user: svc.user, timeoutMs, leavesAlone: policy.apply === 'reload' ? ['files', 'server'] : ['files'] },
    recover: { kind: 'exec', description: `${svc.text} (with the previous primary_conninfo)`, cmd: svc.cmd, user: svc.user, timeoutMs },
    text: svc.text,
    how: policy.apply === 'reload' ? `reload: PostgreSQL ${s.version} restarts the walreceiver` : `restart: PostgreSQL ${s.version} reads primary_conninfo only at start`,
  };
}

function fileDiff(path: string, before: string, after: string): Diff {
  return { kind: 'file', path, before: mask(before), after: mask(after) };
}

/** Before the change: each upstream passes the TLS check the new conninfo will demand, seen from this standby. */
const upstreamPasses = defineVerifier(
  'replication_tls.upstream',
  (ctx, p: { server: PgServer; targets: Parameters<typeof upstreamServesFleetTls>[2]; mode: 'verify-full' | 'verify-ca'; rootCert: string }) =>
    upstreamServesFleetTls(ctx, p.server, p.targets, p.mode, p.rootCert),
);

/** After the change: a new walreceiver streams with the conninfo just written. */
const streamsWith = defineVerifier('replication_tls.streams', (ctx, p: StreamExpectation & { server: PgServer }) => standbyStreams(ctx, p.server, p));

export const replicationTls = defineModule({
  name: 'replication_tls',
  description: "a standby's primary_conninfo verifies its upstream (sslmode=verify-full, the fleet CA), proven streaming",
  args,
  verifiers: [upstreamPasses, streamsWith],
  sql: (_a, server) => (server.inRecovery ? [standbySql(server.versionNum)] : []),
  async plan(ctx, a): Promise<Change[]> {
    const s = await pgServer(ctx);
    if (!s.inRecovery) return [];
    // where `pg_basebackup -R` (and ALTER SYSTEM) put primary_conninfo, read in the same round trip as
    // the question that says where it is: used only when that is the answer
    const usual = join(s.dataDirectory, 'postgresql.auto.conf');
    const usualRead = ctx.readFile(usual, { user: s.osUser });
    usualRead.catch(() => undefined); // (awaited only when it is the file)
    const f = await standbyFacts(ctx, s);
    if (!f.conninfoSource) {
      if (f.conninfo) ctx.warn(`primary_conninfo is set outside any configuration file (${f.conninfoOrigin}): left as it is`);
      return [];
    }
    const path = f.conninfoSource.file;
    const file = await (path === usual ? usualRead : ctx.readFile(path, { user: s.osUser }));
    if (!file) throw new TaskError(`${path} (where the server reads primary_conninfo) cannot be read`);
    const text = file.content.toString('utf8');
    let assign;
    try {
      assign = findGucAssignment(text, 'primary_conninfo');
    } catch (e) {
      if (e instanceof GucFileError) throw new TaskError(`${path} ${e.message}`);
      throw e;
    }
    const where: Where = { s, path, text, assign, oldPid: f.walReceiver?.pid ?? null };
    return a.state === 'original' ? planOriginal(ctx, a, where) : planVerified(ctx, a, where);
  },
});

/** Where the standby's primary_conninfo is: the file, its text, the line, and the walreceiver streaming now. */
interface Where {
  s: PgServer;
  path: string;
  text: string;
  assign: ReturnType<typeof findGucAssignment>;
  /** the walreceiver before the change (a new one must take over); null: none was running */
  oldPid: number | null;
}

async function planVerified(ctx: PlanContext, a: Args, { s, path, text, assign, oldPid }: Where): Promise<Change[]> {
  if (!assign) throw new TaskError(`the server reads primary_conninfo from ${path}, but no such line is there`);
  if (a.ca === 'per_node') {
    ctx.warn(`primary_conninfo (${path}) left as it is: with pgtls_ca=per_node this standby's root.crt is its own CA, not its upstream's, so it cannot verify it`);
    return [];
  }
  let parsed;
  try {
    parsed = parseConninfo(assign.value);
  } catch (e) {
    // never the value itself in the message: it may hold a password
    if (e instanceof ConninfoError) throw new TaskError(`primary_conninfo in ${path} line ${assign.line}: ${e.message}`);
    throw e;
  }
  const ts = targets(conninfoValue(parsed, 'host'), conninfoValue(parsed, 'hostaddr'), conninfoValue(parsed, 'port'));
  const names = ts.map((t) => t.host).filter((h) => h && !h.startsWith('/') && !/^[0-9.:]+$/.test(h));
  const decision = decideUpstream(ts, fleetFromInventory(ctx), await resolveOnHost(ctx, names));
  if (decision.mode === null) {
    ctx.warn(`primary_conninfo (${path} line ${assign.line}) left as it is: ${decision.reason}`);
    return [];
  }
  for (const n of decision.notes) ctx.warn(`sslmode=verify-ca, not verify-full: ${n}`);
  const mode = decision.mode;
  const rootCert = a.root_cert!;
  const { edits, result } = setConninfoParams(assign.value, { sslmode: mode, sslrootcert: rootCert });
  if (edits.length === 0) return [];
  const after = editGucValue(text, assign, edits, result);
  const before = conninfoValue(parsed, 'sslmode') ?? 'unset (prefer)';
  const ap = applyAction(ctx, s);
  const actions: Action[] = [
    // before the write: proves nothing about this run's files, so their rollback copies stay
    verifyWith(upstreamPasses, { server: s, targets: ts, mode, rootCert }, { description: `upstream ${decision.upstreams.join(', ')} serves TLS that passes ${mode}`, keepRollback: true }),
    { kind: 'write', path, content: Buffer.from(after, 'utf8') },
    ap.exec,
    verifyWith(streamsWith, { server: s, oldPid, want: { sslmode: mode, sslrootcert: rootCert }, waitSeconds: a.wait_seconds }, { description: `standby streams with sslmode=${mode}`, recover: ap.recover }),
  ];
  return [
    {
      summary: `set primary_conninfo (${path} line ${assign.line}, upstream ${decision.upstreams.join(', ')}): sslmode ${before} → ${mode}, sslrootcert → ${rootCert}; ${ap.how} (${ap.text})`,
      diff: fileDiff(path, text, after),
      actions,
    },
  ];
}

async function planOriginal(ctx: PlanContext, a: Args, { s, path, text, assign, oldPid }: Where): Promise<Change[]> {
  const dir = stateDirOf(ctx.vars, a.state_dir);
  const orig = await ctx.readFile(`${recordBase(dir, path)}.orig`);
  if (!orig) return []; // pgtls never changed this file
  const origText = orig.content.toString('utf8');
  const was = findGucAssignment(origText, 'primary_conninfo');
  if (!was || !assign) {
    if (assign && !was) ctx.warn(`${path}: primary_conninfo was not in this file before the install; left as it is`);
    return [];
  }
  const origLine = origText.slice(was.lineStart, was.lineEnd);
  if (text.slice(assign.lineStart, assign.lineEnd) === origLine) return [];
  const after = replaceGucLine(text, assign, origLine);
  let sslmode: string | undefined;
  try {
    sslmode = conninfoValue(parseConninfo(was.value), 'sslmode');
  } catch {
    sslmode = undefined;
  }
  const ap = applyAction(ctx, s);
  return [
    {
      summary: `put primary_conninfo back as before the install (${path} line ${assign.line}); ${ap.how} (${ap.text})`,
      diff: fileDiff(path, text, after),
      actions: [
        { kind: 'write', path, content: Buffer.from(after, 'utf8') },
        ap.exec,
        verifyWith(streamsWith, { server: s, oldPid, want: sslmode ? { sslmode } : {}, waitSeconds: a.wait_seconds }, { description: 'standby streams with its original primary_conninfo', recover: ap.recover }),
      ],
    },
  ];
}
