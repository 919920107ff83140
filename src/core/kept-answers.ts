/**
 * Answers fetched ahead of the query that wants them (one host's, owned by its HostSession): what
 * the connection's first round trip asked (discovery, the last run's replay record) and what the
 * lock's round trip asked for the probes tasks declare (ModuleDef.probes, .sql, .logins). An answer
 * is given only to the identical query (same command text, same user, same stdin), only while no host of the
 * run has changed anything since it was asked (`stamp`; for a probe of the host's own files, only while
 * this host has not), and to as many queries as declared it; a
 * later identical query (a retry) asks the host again. It also keeps what this run asked, for the
 * next run's replay record.
 */
import type { ShellCommand } from '../lib/sh.js';
import type { ExecOptions, ExecResult } from '../lib/transport.js';
import { probeKey, type Probe, type RecordedProbe } from './probe.js';

/** This host's and the whole run's change counts: an answer asked before either moved is stale. */
export interface ChangeStamp {
  host: number;
  run: number;
}

interface Kept {
  stamp: ChangeStamp;
  /** the user it ran as */
  as: string;
  result: ExecResult;
  askers: number;
  used: number;
  /** Only this host's changes make it stale (Probe.scope 'host'). */
  hostOnly: boolean;
  /** Asked live by this task (keepForLater): only for later tasks (within it, the same query is a retry, which asks the host). */
  forTasksAfter?: number;
}

export class KeptAnswers {
  /** Declared probes, with how many tasks declared each. */
  private readonly declared = new Map<string, { probe: Probe; askers: number }>();
  private readonly answers = new Map<string, Kept>();
  /** Answers this task's planning used up: planned again (ModuleDef `replan`), it may use them again while they hold. */
  private readonly spent = new Map<string, Kept>();
  /**
   * The queries this run asked that a next run can ask again (but the first round trip's discovery):
   * the stdin-free ones, and logins whose password is a host variable's (`stdinVar`); the replay record's;
   * `late`: first asked after a host of the run had changed something (a no-change run may not ask it).
   */
  private readonly asked = new Map<string, { probe: Probe; late: boolean; stdinVar?: string }>();
  private readonly firstTrip = new Set<string>();
  /** How many times each query was asked in this run (kept answer or not): what keepForLater leaves to later tasks. */
  private readonly asks = new Map<string, number>();
  /** The task planning now (planRound(false) counts them). */
  private task = 0;

  constructor(private readonly now: () => ChangeStamp) {}

  /** Probes tasks will run (read-only; as the shell's user unless they name one). */
  expect(probes: readonly Probe[]): void {
    for (const p of probes) {
      const key = probeKey(p.cmd, p.user, p.stdin);
      const known = this.declared.get(key);
      if (known) known.askers++;
      else this.declared.set(key, { probe: p, askers: 1 });
    }
  }

  /** The declared probes nobody has answered yet, that `reachable` says this shell can run. */
  unanswered(reachable: (user?: string) => boolean): { probe: Probe; askers: number }[] {
    return [...this.declared].filter(([key, { probe }]) => reachable(probe.user) && !this.answers.has(key)).map(([, v]) => v);
  }

  /** An answer asked now, as user `as`. `discovery`: the first round trip's facts commands (never recorded for replay). */
  keep(probe: Probe, as: string, result: ExecResult, askers = 1, discovery = false): void {
    const key = probeKey(probe.cmd, probe.user, probe.stdin);
    this.answers.set(key, { stamp: this.now(), as, result, askers, used: 0, hostOnly: probe.scope === 'host' });
    if (discovery) this.firstTrip.add(key);
  }

  /**
   * A task starts planning (`again`: it plans once more after a step of its own, such as a new CA on the
   * controller): an answer its last round used up counts once more for it, if no host has changed
   * anything since it was asked (the step changed nothing there). A new task starts with none spent.
   */
  planRound(again: boolean): void {
    if (!again) this.task++;
    if (again) {
      for (const [key, { forTasksAfter: _, ...kept }] of this.spent) if (!this.answers.has(key)) this.answers.set(key, { ...kept, askers: 1, used: 0 });
    }
    this.spent.clear();
  }

  /**
   * A query is being asked: noted for the replay record when it can be replayed: no stdin, or a
   * password that is the value of host variable `stdinVar` (a login, whose limit the batch keeps).
   */
  noteAsked(cmd: ShellCommand, exec: Pick<ExecOptions, 'user' | 'stdin' | 'timeoutMs'>, stdinVar?: string): void {
    const key = probeKey(cmd, exec.user, exec.stdin);
    const replayable = exec.stdin === undefined ? exec.timeoutMs === undefined : stdinVar !== undefined;
    if (replayable && !this.firstTrip.has(key) && !this.asked.has(key)) {
      const now = this.now();
      const probe: Probe = { cmd, ...(exec.user === undefined ? {} : { user: exec.user }), ...(exec.timeoutMs === undefined ? {} : { timeoutMs: exec.timeoutMs }) };
      this.asked.set(key, { probe, late: now.host > 0 || now.run > 0, ...(stdinVar === undefined ? {} : { stdinVar }) });
    }
  }

  /** This host's and the run's change counts now (what an answer asked now is stamped with). */
  stamp(): ChangeStamp {
    return this.now();
  }

  /**
   * An answer the host just gave (asked at `stamp`, before it was sent): kept for the later tasks that
   * declared the same query, and for this task's next planning round (planRound), under take's rules
   * (while nothing changed since it was asked). Two checks of one play that ask the same question
   * (Pgpool-II's sessions, then the plaintext ones) ask it once; gencert planned again after creating
   * the CA does not probe its keys again. Never one with stdin (it may hold a password).
   */
  keepForLater(cmd: ShellCommand, exec: Pick<ExecOptions, 'user' | 'stdin'>, as: string, result: ExecResult, stamp: ChangeStamp): void {
    if (exec.stdin !== undefined) return;
    const key = probeKey(cmd, exec.user, exec.stdin);
    const declared = this.declared.get(key);
    const asked = this.asks.get(key) ?? 0;
    const hostOnly = declared?.probe.scope === 'host';
    // this task's next planning round may take it too (planRound: after a step that changed no host)
    this.spent.set(key, { stamp, as, result, askers: 1, used: 1, hostOnly });
    if (!declared || declared.askers <= asked) return;
    // (counted as take counts: the askers so far used it up to here)
    this.answers.set(key, { stamp, as, result, askers: declared.askers, used: asked, hostOnly, forTasksAfter: this.task });
  }

  /** Whether a kept answer for this probe still holds (asking it ahead would be wasted). */
  holds(probe: Probe, shellUser: string): boolean {
    const key = probeKey(probe.cmd, probe.user, probe.stdin);
    const kept = this.answers.get(key);
    return kept !== undefined && kept.as === (probe.user ?? shellUser) && this.fresh(key, kept);
  }

  /** Nothing that could change the answer happened since it was asked: this host changed nothing, nor (unless it depends on this host's files alone) any host of the run. */
  private fresh(key: string, kept: Kept): boolean {
    const now = this.now();
    // (a probe a task declares of its host's files is host-scoped, also when the replay record asked it)
    const hostOnly = kept.hostOnly || this.declared.get(key)?.probe.scope === 'host';
    return kept.stamp.host === now.host && (hostOnly || kept.stamp.run === now.run);
  }

  /**
   * An answer asked ahead for the next task (HostSession.askAhead), at `stamp`: kept for the tasks that
   * declared the query, under take's rules; not for the task that was planning when it was asked.
   */
  keepAhead(probe: Probe, as: string, result: ExecResult, stamp: ChangeStamp): void {
    const key = probeKey(probe.cmd, probe.user, probe.stdin);
    const declared = this.declared.get(key);
    if (!declared) return;
    const hostOnly = declared.probe.scope === 'host';
    this.answers.set(key, { stamp, as, result, askers: declared.askers, used: this.asks.get(key) ?? 0, hostOnly, forTasksAfter: this.task });
  }

  /** The kept answer for this query, if it still holds and the query takes its exit code (`shellUser`: who runs a query naming no user). */
  take(cmd: ShellCommand, exec: Pick<ExecOptions, 'user' | 'stdin' | 'okCodes'>, shellUser: string): ExecResult | undefined {
    const key = probeKey(cmd, exec.user, exec.stdin);
    this.asks.set(key, (this.asks.get(key) ?? 0) + 1);
    const kept = this.answers.get(key);
    if (!kept || kept.forTasksAfter === this.task) return undefined;
    // as many as declared it (a replayed answer: also the tasks that declare it in this run)
    if (++kept.used >= Math.max(kept.askers, this.declared.get(key)?.askers ?? 0)) {
      this.answers.delete(key);
      this.spent.set(key, kept);
    }
    if (!this.fresh(key, kept) || kept.as !== (exec.user ?? shellUser)) return undefined;
    return kept.result.exitCode !== null && (exec.okCodes ?? [0]).includes(kept.result.exitCode) ? kept.result : undefined;
  }

  /**
   * What this run asked that the next may ask in its first round trip (command texts: never a secret),
   * what it asked before any change first: that is what a no-change run asks, and the first round trip
   * takes the record in order as far as its size allows.
   */
  recorded(): RecordedProbe[] {
    const all = [...this.asked.values()];
    // (of what came after a change, the small ones first: more of them fit, and the big ones are host
    // scripts a changed state needed, such as a key probe asked again after the keys were made)
    const late = all.filter((a) => a.late).sort((a, b) => a.probe.cmd.text.length - b.probe.cmd.text.length);
    return [...all.filter((a) => !a.late), ...late].map(({ probe: p, stdinVar }) => ({ cmd: p.cmd.text, ...(p.user === undefined ? {} : { user: p.user }), ...(stdinVar === undefined ? {} : { stdinVar }) }));
  }
}
