/**
 * Read-only look at a host's Pgpool-II: the TLS handshake on its port, the TLS versions it
 * accepts (it has no minimum-version setting), pool_hba (and whether it is enabled at all),
 * and pool_passwd read as pgpool's OS user and checked against the pgpool key.
 */
import { errorMessage } from '../lib/errors.js';
import type { PlanContext } from '../lib/plan-types.js';
import { poolKeyFromFile } from '../crypto/pool-passwd.js';
import { pgpoolServer, pgpoolSetting, poolPasswdPath } from '../facts/pgpool.js';
import { userVar } from '../facts/postgres.js';
import { servedCert } from '../tls/served-cert.js';
import { certView } from './cert.js';
import { plainRules } from './hba.js';
import type { ServiceStatus } from './model.js';
import { checkPoolPasswd, expectedPoolUsers } from './pool-passwd.js';
import { acceptedTlsVersions } from './tls-versions.js';

const on = (v: string | undefined) => /^(on|true|yes|1)$/i.test(v ?? '');

/** A file as pgpool's OS user sees it; a string saying why when it cannot be read. */
async function readAs(ctx: PlanContext, path: string, user: string): Promise<Buffer | string> {
  try {
    const f = await ctx.readFile(path, { user });
    return f ? f.content : `${path} does not exist`;
  } catch (e) {
    return `${path} cannot be read by ${user}: ${errorMessage(e).split('\n')[0]}`;
  }
}

export async function pgpoolStatus(ctx: PlanContext): Promise<ServiceStatus> {
  const p = await pgpoolServer(ctx);
  const conf = (await ctx.readFile(p.confFile))?.content.toString('utf8') ?? '';
  const host = String(userVar(ctx, 'ansible_host') ?? ctx.host);
  const notes: string[] = [];
  if (p.pid === null) notes.push('Pgpool-II is not running');

  const [served, versions] = await Promise.all([servedCert(ctx, host, p.port, host), acceptedTlsVersions(ctx, host, p.port, host)]);
  const old = versions.filter((v) => v === 'TLSv1' || v === 'TLSv1.1');
  if (old.length) notes.push(`accepts deprecated ${old.join(', ')}`);

  // Without pool_hba every client is let through to the backends' own rules, TLS or not.
  let plain: string[];
  let open: string[] = [];
  if (!on(pgpoolSetting(conf, 'enable_pool_hba'))) plain = ['enable_pool_hba is off (pool_hba.conf is not used)'];
  else {
    const hba = await readAs(ctx, p.hbaFile, p.osUser);
    if (typeof hba === 'string') plain = [hba];
    else {
      const rules = plainRules(hba.toString('utf8'));
      plain = rules.password.map((r) => `${p.hbaFile} ${r}`);
      open = rules.open.map((r) => `${p.hbaFile} ${r}`);
      notes.push(...rules.other.map((r) => `${p.hbaFile} ${r} lets loopback clients in without TLS (no password; not in transit)`));
    }
  }

  const ppPath = poolPasswdPath(p.confFile, conf);
  const [pp, keyFile] = await Promise.all([readAs(ctx, ppPath, p.osUser), readAs(ctx, p.keyFile, p.osUser)]);
  let key: string | null = null;
  if (typeof keyFile === 'string') notes.push(keyFile);
  else {
    try {
      key = poolKeyFromFile(keyFile);
    } catch (e) {
      notes.push(`${p.keyFile}: ${errorMessage(e)}`);
    }
  }
  if (typeof pp === 'string') notes.push(pp);
  const poolPasswd = { file: ppPath, ...checkPoolPasswd(typeof pp === 'string' ? '' : pp.toString('utf8'), key, expectedPoolUsers(ctx.vars)) };

  return {
    service: 'pgpool',
    endpoint: `${host}:${p.port}`,
    tls: served.pem !== null,
    ...(served.pem ? { cert: certView(served.pem) } : { tlsDetail: served.detail || (on(pgpoolSetting(conf, 'ssl')) ? 'ssl = on but no handshake' : 'ssl = off') }),
    tlsVersions: served.pem ? versions : [],
    plainPasswordRules: plain,
    openRules: open,
    poolPasswd,
    notes,
  };
}
