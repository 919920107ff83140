import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadInventory, selectHosts, type Inventory } from '../config/inventory.js';
import { loadPlaybook, type Play, type Playbook, type Task } from '../config/playbook.js';
import { parseExtraVars } from '../config/extra-vars.js';
import type { VaultKeyring } from '../config/vault.js';
import { HostShell } from '../remote/host-shell.js';
import { SshTransport } from '../remote/ssh.js';
import { factProviders } from '../facts/index.js';
import { SecretOnCommandLineError, ShellCommand } from '../lib/sh.js';
import { Secret } from '../lib/secret.js';
import { evaluateCondition, renderValue } from '../template/render.js';
import { TaskError, UnreachableError, errorMessage } from '../lib/errors.js';
import { HostSession, newRunId, runLocalOp } from './host-session.js';
import { replayedProbe, type Probe } from './probe.js';
import { filesNamedBy, missingFacts, provideFacts } from './lazy-facts.js';
import { authChangeBlocked, leaveOutWith, resolveBackends, siblingBackends, splitNodes, strandedNodes, type PgpoolNode } from './pgpool-backends.js';
import { StepBarrier } from './step-barrier.js';
import { pgpoolFacts, pgpoolServer } from '../facts/pgpool.js';
import { declaredSqlProbes } from '../facts/postgres.js';
import { applyPlan } from './apply-plan.js';
import { SharedSteps } from './shared-steps.js';
import { actionRegistry, MapRunState, type ActionRegistry } from './run-state.js';
import { JournaledController } from './controller-target.js';
import { checkLocalFiles } from './local-files.js';
import { firstTrip } from './first-trip.js';
import { lockCommand } from '../remote/lock.js';
import { stateDirOf } from '../lib/state-dir.js';
import { loadReplay, replayDir, replayFile, saveReplay } from './replay-cache.js';
import { playHosts, preflight, taskSelected, type Selection } from './preflight.js';
import type { HostRecap, Reporter } from './reporter.js';
import type { FileState, LocalAction, ModuleDef, PlanContext, TaskResult } from '../lib/plan-types.js';
import { becomeOf, connectionVars, hostVars, templateContext } from './vars.js';

export interface RunOptions {
  playbook: string;
  inventory: string;
  extraVars: string[];
  check: boolean;
  forks: number;
  limit?: string;
  tags: string[];
  skipTags: string[];
  /** --allow-empty: patterns that match no host are warnings, not bad input. */
  allowEmpty?: boolean;
  /** Plays on groups the inventory lacks are skipped with a warning (status's built-in playbook). */
  optionalPlayHosts?: boolean;
  /** --known-hosts FILE; null when host key checking was explicitly turned off. */
  knownHosts?: string | null;
  reporter: Reporter;
  signal?: AbortSignal;
  /** The modules a playbook may use (the CLI passes src/modules/index.ts): the engine knows none itself. */
  modules: ReadonlyMap<string, ModuleDef>;
  /** Vault passwords for encrypted files and `!vault` values. */
  vault?: VaultKeyring;
  /**
   * What a host whose facts cannot be read does to the run (facts are read on every host before any
   * host is changed): 'all-or-nothing' (default) changes no host at all; 'keep-going' (--keep-going)
   * leaves that host out, with its Pgpool-II node and the node's other backends; 'each-host' (status,
   * read only) judges every host on its own.
   */
  factsPolicy?: 'all-or-nothing' | 'keep-going' | 'each-host';
}

export interface HostReport {
  recap: HostRecap;
  status: 'ok' | 'failed' | 'unreachable' | 'interrupted';
  message?: string;
  tasks: TaskResult[];
}

export interface RunReport {
  playbook: string;
  inventory: string;
  check: boolean;
  startedAt: string;
  durationMs: number;
  interrupted: boolean;
  /** Run-wide warnings (e.g. a play whose hosts pattern matched nothing). */
  warnings: string[];
  /** Why no host was changed (facts of a host could not be read), when that happened. */
  stoppedBeforeChanges?: string;
  /** The run was refused after reading facts (a --limit that would split a Pgpool-II node's backends): exit 2. */
  refused?: string[];
  hosts: Record<string, HostReport>;
}

/** Loads and validates everything; throws ConfigError before any connection is opened. */
export function prepare(opts: RunOptions): {
  inv: Inventory;
  book: Playbook;
  extra: Record<string, unknown>;
  modules: ReadonlyMap<string, ModuleDef>;
  warnings: string[];
} {
  const modules = opts.modules;
  const inv = loadInventory(opts.inventory, { vault: opts.vault, playbookDir: dirname(opts.playbook) });
  const book = loadPlaybook(opts.playbook, modules, 0, opts.vault);
  const extra = parseExtraVars(opts.extraVars, opts.vault);
  const warnings = [...inv.warnings, ...preflight(inv, book, modules, extra, selection(opts), opts.check)];
  return { inv, book, extra, modules, warnings };
}

function selection(opts: RunOptions): Selection {
  return { limit: opts.limit, tags: opts.tags, skipTags: opts.skipTags, allowEmpty: opts.allowEmpty, optionalPlayHosts: opts.optionalPlayHosts };
}

export async function runPlaybook(opts: RunOptions): Promise<RunReport> {
  const { inv, book, extra, modules, warnings } = prepare(opts);
  checkLocalFiles(inv, book, extra, selection(opts), opts.check, opts.knownHosts);
  const report = await new Runner(opts, inv, book, extra, modules).run();
  report.warnings.unshift(...warnings);
  return report;
}

class Runner {
  private readonly sessions = new Map<string, HostSession>();
  /** Where each host's replay record is kept (src/core/replay-cache.ts). */
  private readonly replayFiles = new Map<string, string>();
  private readonly reports = new Map<string, HostReport>();
  private readonly started = Date.now();
  /** One id for the whole run: it names the run's lock and rollback copies on every host. */
  private readonly runId = newRunId();
  private readonly warnings: string[] = [];
  private readonly shared = new SharedSteps();
  /** The run's state (the CA cache, a --check run's simulated rotation): shared by its hosts, never by another run. */
  private readonly runState = new MapRunState();
  private readonly registry: ActionRegistry;
  private stoppedBeforeChanges: string | undefined;
  private refused: string[] = [];
  /** The Pgpool-II nodes and their backends, when the run changes authentication (read in factsFirst). */
  private nodes: PgpoolNode[] = [];

  constructor(
    private readonly opts: RunOptions,
    private readonly inv: Inventory,
    private readonly book: Playbook,
    private readonly extra: Record<string, unknown>,
    private readonly modules: ReadonlyMap<string, ModuleDef>,
  ) {
    this.registry = actionRegistry(modules.values());
  }

  private get interrupted(): boolean {
    return this.opts.signal?.aborted ?? false;
  }

  async run(): Promise<RunReport> {
    try {
      // Plays run one after another: install.yaml's ordering constraints (README "Ordering
      // constraints") are play boundaries. "TLS served before hostssl" and "Pgpool-II restarted
      // before PostgreSQL requires TLS" rely on every host having finished the earlier play
      // (PostgreSQL serves TLS; install-pgpool.yaml, serial: 1) before any host starts the pg_hba
      // play, and a host that failed a play takes no part in later ones. The one overlap, which
      // none of them can see: runAhead.
      if (await this.factsFirst())
        for (const [i, play] of this.book.plays.entries()) {
          if (this.interrupted) break;
          const next = this.book.plays[i + 1];
          if (next) this.runAhead(next, play);
          await this.runPlay(play);
        }
    } finally {
      await this.endAheadRuns();
      for (const [host, file] of this.replayFiles) {
        const s = this.sessions.get(host);
        if (s) saveReplay(file, s.replayRecord());
      }
      await Promise.all([...this.sessions.values()].map((s) => s.finish().catch(() => undefined)));
    }
    return {
      playbook: this.book.file,
      inventory: this.inv.file,
      check: this.opts.check,
      startedAt: new Date(this.started).toISOString(),
      durationMs: Date.now() - this.started,
      interrupted: this.interrupted,
      warnings: this.warnings,
      ...(this.stoppedBeforeChanges ? { stoppedBeforeChanges: this.stoppedBeforeChanges } : {}),
      ...(this.refused.length ? { refused: this.refused } : {}),
      hosts: Object.fromEntries(this.reports),
    };
  }

  /**
   * Facts first: every host the run will touch is connected and the facts its tasks need are read
   * (servers, paths, the SQL login) before any host is changed; the Pgpool-II nodes of the inventory
   * too (read only), for their backends. Returns whether the plays may run.
   */
  private async factsFirst(): Promise<boolean> {
    const sel = selection(this.opts);
    const plan = new Map<string, { play: Play; tasks: Task[] }[]>();
    for (const play of this.book.plays) {
      const tasks = [...play.tasks.filter((t) => taskSelected(t, play, sel)), ...play.handlers];
      for (const h of playHosts(this.inv, play, sel)) {
        let list = plan.get(h);
        if (!list) plan.set(h, (list = []));
        list.push({ play, tasks });
      }
    }
    const hosts = [...plan.keys()];
    if (hosts.length === 0) return true;
    const policy = this.opts.factsPolicy ?? 'all-or-nothing';
    const reporter = this.opts.reporter;
    reporter.playStart('Gathering facts (every host, before any change)', hosts, 1, 1);
    await forEachLimited(hosts, this.opts.forks, async (host) => {
      const rep = this.report(host);
      reporter.hostStart(host);
      try {
        if (!this.opts.check) this.warmUp(host, plan.get(host)!);
        const session = await this.session(host, this.factProbes(host, plan.get(host)!));
        for (const { play, tasks } of plan.get(host)!) {
          for (const task of tasks) {
            if (this.interrupted) return;
            const vars = hostVars(this.inv, host, play, task, this.extra, session.facts, this.opts.check);
            session.useBecome(task.become ?? play.become ?? becomeOf(vars));
            const ctx = session.context(vars, (m) => this.warn(`${host}: ${m}`));
            const facts = await provideFacts(task, vars, ctx);
            // the files these facts name and the task declares are read with the lock, in one round trip
            const declared = await this.declared(task, { ...vars, ...facts }, ctx, session);
            session.expectReads([...filesNamedBy(facts), ...declared.reads]);
            session.expectQueries(declared.probes);
            this.declaredQueries(host).set(task, declared.probes);
          }
        }
      } catch (e) {
        const unreachable = e instanceof UnreachableError || !this.sessions.has(host);
        rep.status = unreachable ? 'unreachable' : 'failed';
        rep.message = unreachable ? errorMessage(e) : `its facts could not be read: ${errorMessage(e)}`;
        if (unreachable) rep.recap.unreachable = 1;
        else rep.recap.failed = 1;
      }
      if (rep.status === 'ok' && !this.opts.check && !this.interrupted) {
        try {
          await this.lockHost(host, plan.get(host)!);
        } catch (e) {
          rep.status = e instanceof UnreachableError ? 'unreachable' : 'failed';
          rep.message = errorMessage(e);
          if (rep.status === 'unreachable') rep.recap.unreachable = 1;
          else rep.recap.failed = 1;
        }
      }
      reporter.hostEnd(host, rep.status === 'interrupted' ? 'interrupted' : rep.status, rep.message);
    });
    await reporter.playEnd();
    if (this.interrupted || policy === 'each-host') return !this.interrupted;

    const inRun = new Set(hosts);
    // Only changes of authentication split a Pgpool-II node's backends (re-issuing a certificate
    // on one backend does not): hosts that run a task of such a module.
    const changingAuth = new Set(hosts.filter((h) => plan.get(h)!.some(({ tasks }) => tasks.some((t) => this.modules.get(t.module)?.changesAuthentication))));
    const anyBad = hosts.some((h) => this.report(h).status !== 'ok');
    const nodes = changingAuth.size > 0 || (anyBad && policy === 'keep-going') ? await this.pgpoolNodes(inRun) : [];
    this.nodes = nodes;
    const split = splitNodes(nodes, changingAuth);
    if (split.length) {
      this.refused = split.map(
        (s) =>
          `${this.opts.limit ? `--limit ${this.opts.limit}` : 'this run'} would change ${s.included.join(', ')} but not ${s.missing.join(', ')}: ` +
          `backends of Pgpool-II node ${s.node}, which refuses every login while its backends disagree on authentication; ` +
          `add ${s.missing.join(', ')}${inRun.has(s.node) ? '' : ` and ${s.node}`} to --limit, or leave ${s.included.join(', ')} out`,
      );
      return false;
    }
    // "Pgpool-II restarted before PostgreSQL requires TLS" when the run leaves the node out (--limit):
    // refused here, before any change, if it would change every backend of a node not speaking TLS.
    const stranded = strandedNodes(nodes, changingAuth).filter((n) => !inRun.has(n.host));
    if (stranded.length) {
      this.refused = stranded.map(
        (n) =>
          `${this.opts.limit ? `--limit ${this.opts.limit}` : 'this run'} would change ${n.backends.join(', ')}, every backend of Pgpool-II node ${n.host}, ` +
          `which does not speak TLS yet (ssl is not on in its pgpool.conf) and could not log in once they require TLS; add ${n.host} to --limit`,
      );
      return false;
    }
    const bad = hosts.filter((h) => this.report(h).status !== 'ok');
    if (bad.length === 0) return true;
    if (policy === 'all-or-nothing') {
      this.stoppedBeforeChanges =
        `no host was changed: ${bad.map((h) => `${h} (${this.report(h).status})`).join(', ')} could not be read before the first change ` +
        `(see FAILURES); fix ${bad.length > 1 ? 'them' : 'it'}, or run with --keep-going to leave ${bad.length > 1 ? 'them' : 'it'} out`;
      return false;
    }
    for (const [h, why] of leaveOutWith(nodes, new Set(bad), inRun)) {
      const rep = this.report(h);
      rep.status = 'failed';
      rep.message = why;
      rep.recap.failed = 1;
    }
    return true;
  }

  /** The discovery commands of the facts a host's tasks need (FactProvider.probe), sent with the connection's first command. */
  private factProbes(host: string, plays: { play: Play; tasks: Task[] }[]): ShellCommand[] {
    const probes = new Map<string, ShellCommand>();
    for (const { play, tasks } of plays)
      for (const task of tasks) {
        const vars = hostVars(this.inv, host, play, task, this.extra, undefined, this.opts.check);
        for (const n of missingFacts(task, vars)) {
          const p = factProviders[n]?.probe?.(vars);
          if (p) probes.set(p.text, p);
        }
      }
    return [...probes.values()];
  }

  /**
   * Controller-side work the host's tasks will need, started before it is connected (ModuleDef.warm:
   * a CA's key). From the arguments as they render without facts; a task whose do not is left out.
   */
  private warmUp(host: string, plays: { play: Play; tasks: Task[] }[]): void {
    for (const { play, tasks } of plays)
      for (const task of tasks) {
        const mod = this.modules.get(task.module);
        if (!mod?.warm) continue;
        try {
          const vars = hostVars(this.inv, host, play, task, this.extra, undefined, this.opts.check);
          const args = argsAhead(task, mod, vars);
          if (args !== undefined) mod.warm(args, { vars, runState: this.runState, host });
        } catch {
          // (only a head start: the task does the work itself when it is needed)
        }
      }
  }

  /**
   * The files and probes a task's module says its plan reads and runs (ModuleDef.reads/probes), from
   * its arguments; none when they do not render yet (a later task's result) or the task is skipped.
   */
  private async declared(task: Task, vars: Record<string, unknown>, ctx: PlanContext, session: HostSession): Promise<{ reads: { path: string }[]; probes: Probe[] }> {
    const none = { reads: [], probes: [] };
    const mod = this.modules.get(task.module);
    if (!mod?.reads && !mod?.probes && !mod?.sql && !mod?.logins) return none;
    const args = argsAhead(task, mod, vars);
    if (args === undefined) return none;
    const sql = mod.sql ? await declaredSqlProbes(ctx, (server) => mod.sql!(args, server)).catch(() => []) : [];
    const logins = mod.logins ? await mod.logins(args, (path) => session.cachedFile(path)).catch(() => []) : [];
    return {
      reads: (mod.reads?.(args) ?? []).filter((p) => p.startsWith('/')).map((path) => ({ path })),
      probes: [
        ...(mod.probes?.(args) ?? []).map((cmd) => ({ cmd, scope: 'host' as const })),
        ...sql,
        ...logins.map((l) => ({ cmd: l.cmd, stdin: l.password, ...(l.timeoutMs === undefined ? {} : { timeoutMs: l.timeoutMs }) })),
      ],
    };
  }

  /** Each task's declared queries on each host, as the facts found them (HostSession.askAhead asks them ahead). */
  private readonly declaredByHost = new Map<string, Map<Task, Probe[]>>();

  private declaredQueries(host: string): Map<Task, Probe[]> {
    let m = this.declaredByHost.get(host);
    if (!m) this.declaredByHost.set(host, (m = new Map()));
    return m;
  }

  /**
   * The host's run lock, before any task plans (one run at a time; a dead run's leftovers cleaned even
   * when this run changes nothing there), with the privileges its tasks will have.
   */
  private async lockHost(host: string, plays: { play: Play; tasks: Task[] }[]): Promise<void> {
    const session = await this.session(host);
    const vars = hostVars(this.inv, host, undefined, undefined, this.extra, session.facts, this.opts.check);
    const become = becomeOf(vars) || plays.some(({ play, tasks }) => play.become || tasks.some((t) => t.become));
    session.useBecome(become);
    await session.begin(vars, (m) => this.warn(`${host}: ${m}`));
  }

  /** Pgpool-II nodes of the inventory (hosts of plays that use Pgpool-II facts) with their backends as inventory hosts. */
  private async pgpoolNodes(inRun: ReadonlySet<string>): Promise<PgpoolNode[]> {
    const poolHosts = new Set<string>();
    for (const play of this.book.plays) {
      const usesPgpool = [...play.tasks, ...play.handlers].some((t) => missingFacts(t, {}).some((n) => n in pgpoolFacts));
      if (usesPgpool) for (const h of selectHosts(this.inv, play.hosts)) poolHosts.add(h);
    }
    if (poolHosts.size === 0) return [];
    const names = new Map<string, string[]>();
    for (const host of this.inv.groups.get('all') ?? []) {
      const vars = hostVars(this.inv, host, undefined, undefined, this.extra, undefined, this.opts.check);
      const c = connectionVars(vars, host);
      const f = this.sessions.get(host)?.facts;
      names.set(host, [host, ...(c.success ? [c.data.ansible_host] : []), ...(f ? [f.hostname, f.fqdn, ...f.addresses] : [])].filter(Boolean));
    }
    const nodes: PgpoolNode[] = [];
    await forEachLimited([...poolHosts], this.opts.forks, async (host) => {
      if (inRun.has(host) && this.report(host).status !== 'ok') return;
      try {
        const session = await this.session(host);
        const vars = hostVars(this.inv, host, undefined, undefined, this.extra, session.facts, this.opts.check);
        session.useBecome(becomeOf(vars));
        const pool = await pgpoolServer(session.context(vars, (m) => this.warn(`${host}: ${m}`)));
        nodes.push({ host, backends: resolveBackends(pool.backends, names), tls: pool.ssl });
      } catch (e) {
        this.warn(`${host}: cannot read which backends its Pgpool-II uses (${errorMessage(e)}): a --limit that splits them is not detected`);
      }
    });
    return nodes;
  }

  private warn(message: string): void {
    if (!this.warnings.includes(message)) this.warnings.push(message);
  }

  private report(host: string): HostReport {
    let r = this.reports.get(host);
    if (!r) {
      r = { recap: { ok: 0, changed: 0, unreachable: 0, failed: 0, skipped: 0 }, status: 'ok', tasks: [] };
      this.reports.set(host, r);
    }
    return r;
  }

  private async runPlay(play: Play): Promise<void> {
    // Hosts that failed or were unreachable in an earlier play take no part in later ones (Ansible).
    const hosts = playHosts(this.inv, play, selection(this.opts)).filter(
      (h) => (this.reports.get(h)?.status ?? 'ok') === 'ok',
    );
    for (const h of hosts) this.report(h);
    const batches = splitBatches(hosts, play.serial);
    for (const [i, batch] of batches.entries()) {
      if (this.interrupted) break;
      this.opts.reporter.playStart(play.name, batch, i + 1, batches.length);
      const together = new StepBarrier((h) => siblingBackends(this.nodes, h).map((s) => s.backend).filter((b) => batch.includes(b)));
      // each host's progress through the play's tasks: what ctx.peersDone waits on
      const progress = new StepBarrier((h) => batch.filter((b) => b !== h));
      await forEachLimited(batch, this.opts.forks, async (host) => {
        try {
          await this.runHost(play, host, together, progress);
        } finally {
          together.done(host);
          progress.done(host);
        }
      });
      await this.opts.reporter.playEnd();
      // A rolling batch that failed stops the rollout: the next batch would only spread the failure.
      if (play.serial !== undefined && batch.some((h) => this.report(h).status !== 'ok')) break;
    }
    // run-level steps change the controller for the whole fleet: not journaled per host (nothing to roll back to)
    const target = new JournaledController(this.runState);
    const run = (a: LocalAction) => runLocalOp(this.registry, target, a, this.opts.check);
    for (const m of await this.shared.runAll((h) => this.report(h).status, run)) this.warn(m);
  }

  /** Tasks of a later play a host ran while the play before it still ran elsewhere (runAhead), by play and host. */
  private readonly ahead = new Map<Play, Map<string, Promise<TaskResult[]>>>();

  /**
   * A host that takes no part in the running play starts the next play's leading tasks that depend on
   * nothing but itself (ModuleDef.hostLocal: a Pgpool-II node's certificate, its config edits, its
   * pool_passwd while its backends' play runs), and stops before the first task that may depend on
   * other hosts (Pgpool-II's restart, which needs its backends to serve TLS). Their results are
   * reported when that play begins, and the play goes on from there. Never beside a play that changes
   * what other hosts' tasks read on the controller (ModuleDef.changesFleetState: a CA rotation), and
   * only for the first batch of a rolling play.
   */
  private runAhead(next: Play, current: Play): void {
    const sel = selection(this.opts);
    if (current.tasks.some((t) => this.modules.get(t.module)?.changesFleetState) || current.handlers.some((t) => this.modules.get(t.module)?.changesFleetState)) return;
    const busy = new Set(playHosts(this.inv, current, sel));
    const tasks = next.tasks.filter((t) => taskSelected(t, next, sel));
    const lead = tasks.findIndex((t) => !this.modules.get(t.module)?.hostLocal);
    const leading = tasks.slice(0, lead < 0 ? tasks.length : lead);
    if (leading.length === 0) return;
    const ok = (h: string) => (this.reports.get(h)?.status ?? 'ok') === 'ok';
    const first = splitBatches(playHosts(this.inv, next, sel).filter(ok), next.serial)[0] ?? [];
    const free = first.filter((h) => !busy.has(h) && this.sessions.has(h));
    // (within the run's parallelism: the running play's hosts first)
    const room = Math.max(0, this.opts.forks - busy.size);
    const runs = new Map<string, Promise<TaskResult[]>>();
    for (const host of free.slice(0, room)) {
      const session = this.sessions.get(host)!;
      runs.set(
        host,
        (async () => {
          const results: TaskResult[] = [];
          for (const task of leading) {
            if (this.interrupted) break;
            const r = { ...(await this.runTask(session, next, task, false)), ranAhead: true };
            results.push(r);
            if (r.status === 'failed' || r.status === 'unreachable') break;
          }
          return results;
        })(),
      );
    }
    if (runs.size) this.ahead.set(next, runs);
  }

  /** What runAhead ran for this host of this play (taken once). */
  private async takeAhead(play: Play, host: string): Promise<TaskResult[]> {
    const run = this.ahead.get(play)?.get(host);
    this.ahead.get(play)?.delete(host);
    return run ?? [];
  }

  /** Runs ahead whose play never began (interrupted): recorded, and their hosts put back to their last proven state. */
  private async endAheadRuns(): Promise<void> {
    for (const [play, runs] of this.ahead)
      for (const host of [...runs.keys()]) {
        const results = await this.takeAhead(play, host);
        for (const r of results) this.record(host, r);
        const rep = this.report(host);
        if (rep.status === 'ok') rep.status = 'interrupted';
        const what = await this.sessions.get(host)?.abandon().catch((e: unknown) => errorMessage(e));
        if (what) rep.message = rep.message ? `${rep.message}; ${what}` : what;
      }
    this.ahead.clear();
  }

  private async runHost(play: Play, host: string, together: StepBarrier, progress: StepBarrier): Promise<void> {
    const rep = this.report(host);
    const reporter = this.opts.reporter;
    reporter.hostStart(host);
    let session: HostSession;
    try {
      session = await this.session(host);
    } catch (e) {
      rep.status = 'unreachable';
      rep.message = errorMessage(e);
      rep.recap.unreachable = 1;
      reporter.hostEnd(host, 'unreachable', rep.message);
      return;
    }
    // A host's tasks run in the playbook's order and the first failure stops it: "certificates before
    // settings" and "passwords SCRAM before rules demand SCRAM" are task order within a play
    // (gencert before the ssl_* lines; reset_password before pg_hba), so a host whose certificates
    // or password re-hash failed never gets the settings or rules that would need them.
    const tasks = play.tasks.filter((t) => taskSelected(t, play, selection(this.opts)));
    const notified = new Set<string>();
    const ranAhead = await this.takeAhead(play, host);
    // (a host no Pgpool-II node stands in front of, nor one itself, has no one to end an authentication
    // task with: its files are written at the next point that depends on them, the reload's first question riding)
    const alone = !this.nodes.some((n) => n.host === host || n.backends.includes(host));
    for (const [i, task] of tasks.entries()) {
      const early = ranAhead[i];
      if (early) {
        reporter.taskStart(host, task.name, i + 1, tasks.length);
        progress.reach(host, i + 0.25);
        this.record(host, early);
        if (early.changed) for (const n of task.notify) notified.add(n);
        if (early.status === 'failed' || early.status === 'unreachable') break;
        continue;
      }
      if (this.interrupted) {
        rep.status = 'interrupted';
        break;
      }
      const changesAuth = Boolean(this.modules.get(task.module)?.changesAuthentication);
      const statusOf = (h: string) => this.reports.get(h)?.status;
      if (changesAuth) {
        // Every backend of a Pgpool-II node changes authentication or none does: they start the task
        // together, and none starts it once another has failed.
        await together.arrive(host, i);
        const blocked = authChangeBlocked(this.nodes, host, statusOf);
        if (blocked) {
          this.record(host, failedTask(play, task.name, task.module, blocked));
          break;
        }
      }
      reporter.taskStart(host, task.name, i + 1, tasks.length);
      // (the next two: a check whose query another task's plan left out, say without Pgpool-II hosts)
      session.askAhead(tasks.slice(i + 1, i + 1 + LOOK_AHEAD).flatMap((t) => this.declaredQueries(host).get(t) ?? []));
      // (task i is finished at step i + 0.25; a host waiting in ctx.peersDone stands there too, so two
      // standbys never wait for each other)
      let result = await this.runTask(session, play, task, false, () => progress.arrive(host, i + 0.25));
      progress.reach(host, i + 0.25);
      if (changesAuth && !alone && result.status !== 'failed' && result.status !== 'unreachable' && !this.opts.check) {
        // ... and end it together: its files are written now, and when another backend failed on the
        // way (a full disk, a refused write), this one puts its changes back instead of disagreeing.
        const wrote = await session.commit().then(() => null, (e: unknown) => errorMessage(e));
        if (wrote) result = { ...result, status: 'failed', changed: false, error: wrote };
        await together.arrive(host, i + 0.5);
        const blocked = wrote ? null : authChangeBlocked(this.nodes, host, statusOf);
        if (blocked) {
          const undone = await session.abandon();
          result = { ...result, status: 'failed', changed: false, error: `${blocked}; ${undone}` };
        }
      } else if (changesAuth) await together.arrive(host, i + 0.5);
      this.record(host, result);
      if (result.changed) for (const n of task.notify) notified.add(n);
      if (result.status === 'failed' || result.status === 'unreachable') break;
    }
    if (rep.status === 'ok' && notified.size > 0) {
      // Handlers run once, at the end of the play, in the order they are defined (Ansible).
      const handlers = play.handlers.filter((h) => notified.has(h.name) || h.listen.some((l) => notified.has(l)));
      for (const [i, h] of handlers.entries()) {
        if (this.interrupted) break;
        reporter.taskStart(host, `handler: ${h.name}`, i + 1, handlers.length);
        const result = await this.runTask(session, play, h, true);
        this.record(host, result);
        if (result.status === 'failed' || result.status === 'unreachable') break;
      }
    }
    if (this.interrupted) {
      // Stopped between tasks: the host goes back to its last proven state rather than keep half a play.
      if (rep.status === 'ok') rep.status = 'interrupted';
      const what = await session.abandon();
      rep.message = rep.message ? `${rep.message}; ${what}` : what;
    } else if (rep.status !== 'unreachable') {
      // the end of the play depends on every change it planned
      try {
        await session.commit();
      } catch (e) {
        this.record(host, failedTask(play, 'write the changes planned in this play', 'pgtls', errorMessage(e)));
      }
    }
    reporter.hostEnd(host, rep.status, rep.message);
  }

  private record(host: string, result: TaskResult): void {
    const rep = this.report(host);
    rep.tasks.push(result);
    if (result.status === 'changed') {
      rep.recap.changed++;
      rep.recap.ok++;
    } else if (result.status === 'ok') rep.recap.ok++;
    else if (result.status === 'skipped') rep.recap.skipped++;
    else if (result.status === 'failed') {
      rep.recap.failed++;
      rep.status = 'failed';
      rep.message = result.error;
    } else if (result.status === 'unreachable') {
      rep.recap.unreachable++;
      rep.status = 'unreachable';
      rep.message = result.error;
    }
    this.opts.reporter.taskEnd(host, result);
  }

  private async runTask(session: HostSession, play: Play, task: Task, handler: boolean, peersDone?: () => Promise<void>): Promise<TaskResult> {
    const started = Date.now();
    const base = { task: task.name, module: task.module, handler, play: play.name, summaries: [] as string[], diffs: [], warnings: [] as string[] };
    const done = (status: TaskResult['status'], extra: Partial<TaskResult> = {}): TaskResult => ({
      ...base,
      status,
      changed: status === 'changed',
      durationMs: Date.now() - started,
      ...extra,
    });
    const vars = hostVars(this.inv, session.name, play, task, this.extra, session.facts, this.opts.check);
    const tctx = templateContext(vars);
    try {
      session.useBecome(task.become ?? play.become ?? becomeOf(vars), task.becomeUser ?? play.becomeUser);
      const ctx: PlanContext = { ...session.context(vars, (m) => base.warnings.push(m)), ...(peersDone ? { peersDone } : {}) };
      Object.assign(vars, await provideFacts(task, vars, ctx));
      for (const w of task.when) if (!evaluateCondition(w, tctx)) return done('skipped', { summaries: ['condition false'] });
      const mod = this.modules.get(task.module)!;
      const parsed = mod.args.safeParse(renderValue(task.args, tctx));
      if (!parsed.success) throw new TaskError(`invalid arguments: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      // the logins it declares, from the files as its plan read them (pending writes included: the
      // cache is gone once they are committed): for the next run's record, even when this run does
      // not make them (an install restarts Pgpool-II instead of asking its backends)
      const read = new Map<string, FileState | null>();
      const planCtx: PlanContext = mod.logins ? { ...ctx, readFile: async (p, o) => { const f = await ctx.readFile(p, o); if (!o?.user) read.set(p, f); return f; } } : ctx;
      let rounds = 0;
      const plan = async () => {
        session.planRound(rounds++ > 0);
        const changes = await mod.plan(planCtx, parsed.data);
        if (mod.logins && !this.opts.check) session.recordLogins(await mod.logins(parsed.data, (p) => (read.has(p) ? Promise.resolve(read.get(p)!) : session.cachedFile(p))).catch(() => []));
        return changes;
      };
      const applied = await applyPlan(plan, (actions, c) => session.apply(actions, c), ctx, this.opts.check);
      return done(applied.changed ? 'changed' : 'ok', {
        summaries: applied.summaries,
        diffs: applied.diffs,
        planned: applied.planned,
        warnings: base.warnings,
      });
    } catch (e) {
      const status = e instanceof UnreachableError ? 'unreachable' : 'failed';
      const message = e instanceof SecretOnCommandLineError ? `task '${task.name}': ${e.message}` : errorMessage(e);
      if (status === 'failed' && task.ignoreErrors) return done('ok', { error: `ignored: ${message}`, warnings: base.warnings });
      return done(status, { error: message, warnings: base.warnings });
    }
  }

  private async session(host: string, probes: readonly ShellCommand[] = []): Promise<HostSession> {
    const existing = this.sessions.get(host);
    if (existing) return existing;
    const vars = hostVars(this.inv, host, undefined, undefined, this.extra, undefined, this.opts.check);
    const c = connectionVarsOf(vars, host);
    const knownHosts =
      this.opts.knownHosts === null ? null : (this.opts.knownHosts ?? c.pgtls_known_hosts ?? join(homedir(), '.ssh', 'known_hosts'));
    const transport = await SshTransport.connect({
      name: host,
      host: c.ansible_host,
      port: c.ansible_port,
      user: c.ansible_user,
      privateKeyFile: c.ansible_ssh_private_key_file,
      knownHostsFile: knownHosts,
      connectTimeoutMs: (c.ansible_connect_timeout ?? 10) * 1000,
      jumps: c.jumps,
    });
    // what the last run here read and asked (src/core/replay-cache.ts): asked again with the lock
    const dir = replayDir();
    const file = dir ? replayFile(dir, { host, address: c.ansible_host, port: c.ansible_port, user: c.ansible_user, becomeUser: c.ansible_become_user }) : undefined;
    const last = file ? loadReplay(file) : { reads: [], probes: [] };
    if (file) this.replayFiles.set(host, file);
    const first = new HostShell(transport, c.ansible_user, false);
    // Logged in as root, a real run takes its lock in the connection's first round trip, and the
    // replay comes with it; else the lock comes after the facts (begin), through the become shell.
    const stateDir = stateDirOf(vars);
    const lockFirst = !this.opts.check && c.ansible_user === 'root' && (c.ansible_become_user ?? 'root') === 'root' && !String(vars.pgtls_state_dir ?? '').includes('{{');
    // (a first round trip that fails leaves no session to close at the end: its connection is closed
    // here, or the process would not exit)
    // a replayed login names the host variable its password is: the variable's value now, or nothing
    const secret = (name: string) => (vars[name] instanceof Secret ? (vars[name] as Secret) : undefined);
    const trip = await firstTrip(first, c.ansible_user, probes, lockFirst ? { lock: lockCommand(stateDir, this.runId), replay: last, secret } : undefined).catch(async (e: unknown) => {
      await transport.close().catch(() => undefined);
      throw e;
    });
    const become = { user: c.ansible_become_user, ...(c.ansible_become_password ? { password: c.ansible_become_password } : {}) };
    const session = new HostSession(host, transport, c.ansible_user, trip.facts, this.opts.check, this.runId, become);
    session.shareStep = (key, action) => this.shared.add(key, host, action);
    session.registry = this.registry;
    session.runState = this.runState;
    session.keepAnswers(trip.answers, first.effectiveUser);
    session.keepFirstTrip(trip, first, stateDir);
    session.secretVarOf = (password) => Object.keys(vars).find((k) => vars[k] instanceof Secret && (vars[k] as Secret).reveal() === password.reveal());
    if (!lockFirst) {
      session.expectReads(last.reads);
      session.expectQueries(last.probes.flatMap((p) => replayedProbe(p, secret) ?? []));
    }
    this.sessions.set(host, session);
    return session;
  }
}

/**
 * A task's arguments as they render before it runs (for what it declares or warms ahead): undefined
 * when it is skipped, or they do not render or parse yet (a later task's result, a fact not known).
 */
function argsAhead(task: Task, mod: ModuleDef, vars: Record<string, unknown>): unknown {
  try {
    const tctx = templateContext(vars);
    if (!task.when.every((w) => evaluateCondition(w, tctx))) return undefined;
    const parsed = mod.args.safeParse(renderValue(task.args, tctx));
    return parsed.success ? (parsed.data as unknown) : undefined;
  } catch {
    return undefined;
  }
}

/** How many of the next tasks' declared queries ride a task's round trip (HostSession.askAhead). */
const LOOK_AHEAD = 2;

/** A step of the runner's own that failed (a task it refused, the play's last commit). */
function failedTask(play: Play, task: string, module: string, error: string): TaskResult {
  return { task, module, status: 'failed', changed: false, summaries: [], diffs: [], warnings: [], error, durationMs: 0, play: play.name };
}

function connectionVarsOf(vars: Record<string, unknown>, host: string) {
  const c = connectionVars(vars, host);
  if (!c.success) throw new TaskError(`invalid connection variables: ${c.error.message}`); // preflight makes this unreachable
  return c.data;
}

export function splitBatches(hosts: string[], serial: number | string | undefined): string[][] {
  if (serial === undefined || hosts.length === 0) return [hosts];
  const size =
    typeof serial === 'number' ? serial : Math.max(1, Math.floor((hosts.length * Number(serial.slice(0, -1))) / 100));
  const out: string[][] = [];
  for (let i = 0; i < hosts.length; i += size) out.push(hosts.slice(i, i + size));
  return out;
}

async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
