// The drift harness (issue 11): every module of the registry is planned against the same fake host by the
// real executor in both modes (HostSession with --check and without) and the plans are compared; planning
// twice against the same host gives the same plan; planning writes nothing. Table-driven: module-cases.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { modules } from '../../src/modules/index.js';
import type { Change } from '../../src/lib/plan-types.js';
import { fakeSession, planData, shellWords } from './fake-host.js';
import { moduleCases, PG, type ModuleCase } from './module-cases.js';
import type { PgServer } from '../../src/facts/postgres.js';

async function planCase(c: ModuleCase, check: boolean): Promise<{ changes: Change[]; log: string[]; warnings: string[] }> {
  const mod = modules.get(c.module);
  if (!mod) throw new Error(`no module ${c.module}`);
  const parsed = mod.args.safeParse(c.args);
  if (!parsed.success) throw new Error(`${c.name}: ${parsed.error.message}`);
  const f = fakeSession(c.host, { check, vars: c.vars, memos: c.memos });
  if (c.before) await f.session.apply(c.before, f.ctx);
  const from = f.transport.log.length;
  const changes = await mod.plan(f.ctx, parsed.data);
  return { changes, log: f.transport.log.slice(from).map((l) => l.cmd), warnings: f.warnings };
}

const cases = moduleCases();

test('every module of the registry has a case', () => {
  const covered = new Set(cases.map((c) => c.module));
  const missing = [...modules.keys()].filter((m) => !covered.has(m));
  assert.equal(missing, [], `modules without a drift case: ${missing.join(', ')}`);
});

for (const c of cases) {
  test(`drift: ${c.name}`, async () => {
    const real = await planCase(c, false);
    const dry = await planCase(c, true);
    assert.equal(planData(dry.changes), planData(real.changes), '--check plans what a real run plans');
    // the same questions of the host; after earlier tasks' writes (c.before) a real run may have committed
    // them by then and asks the host what --check answers from its overlay: only the plans must agree
    if (!c.before) assert.equal(dry.log, real.log, 'and asks the host the same questions');
    assert.equal(dry.warnings, real.warnings);
    const again = await planCase(c, false);
    assert.equal(planData(again.changes), planData(real.changes), 'planning twice gives the same plan');
    // a host script is `sh -c SCRIPT NAME ARGS…`: none of the write path's may run while planning
    const scripts = real.log.map((cmd) => shellWords(cmd)).filter((w) => w[0] === 'sh' && w[1] === '-c').map((w) => w[3] ?? '');
    for (const name of scripts) assert.not.match(name, /^pgtls-(write|remove|lock|unlock|prepare|record|rollback|sign|keygen)$/, `planning ran ${name}`);
  });
}

// ModuleDef.sql is only a hint, but a stale one costs a round trip per task on every re-run: the SQL a
// module's plan asks its server (psql's -c) is what it declares, but where the module says otherwise.
const ASKED_ONLY_WHEN_NEEDED = [/pg_hba_file_rules where error is null/]; // plaintext_sessions: only once sessions without TLS are found
test('declared SQL (ModuleDef.sql): every SQL a plan asks its server is declared, with the same text', async () => {
  let checked = 0;
  for (const c of cases) {
    const mod = modules.get(c.module)!;
    if (!mod.sql) continue;
    const server = ((c.memos?.['pgtls:pg-server'] as PgServer | undefined) ?? PG);
    const declared = mod.sql(mod.args.parse(c.args), server);
    const { log } = await planCase(c, false);
    const asked = log.map((cmd) => shellWords(cmd)).flatMap((w) => {
      const inner = w[0] === 'runuser' ? shellWords(w[6] ?? '') : w;
      const at = inner.indexOf('-c');
      return inner.some((x) => x.endsWith('/psql')) && at > 0 ? [inner[at + 1]!] : [];
    });
    for (const sql of asked) {
      if (ASKED_ONLY_WHEN_NEEDED.some((re) => re.test(sql))) continue;
      assert.ok(declared.includes(sql), `${c.name}: the plan asks SQL its module does not declare: ${sql.slice(0, 120)}`);
      checked++;
    }
  }
  assert.ok(checked >= 4, `${checked} asked SQL statements checked`);
});

test('drift case of issue 11: restart with postgresql.conf modified after the last reload plans a reload in both modes', async () => {
  const c = cases.find((x) => x.module === 'restart' && /issue 11/.test(x.name))!;
  for (const check of [false, true]) {
    const { changes } = await planCase(c, check);
    assert.is(changes.length, 1, `check=${check}`);
    assert.match(changes[0]!.summary, /^reload PostgreSQL .*postgresql\.conf changed since the last reload/);
    assert.equal(changes[0]!.actions.map((a) => a.kind), ['exec', 'verify']);
  }
});

test.run();
