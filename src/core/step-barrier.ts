/**
 * Not one of install.yaml's ordering constraints (those are play and task order: README "Ordering
 * constraints"), but the rule that sits beside them: the backends of a Pgpool-II node change
 * authentication together, since the node refuses every login while they disagree.
 *
 * Hosts that must take a step together (the backends of one Pgpool-II node before a task that changes
 * how they authenticate): each waits at the step until every peer has reached it or has finished its
 * play (done, failed or interrupted), so that none changes authentication while a peer may still fail
 * before it (which would leave the node's backends disagreeing). Peers are only hosts of the same
 * batch: a later `serial` batch is not waited for.
 */
export class StepBarrier {
  private readonly reached = new Map<string, number>();
  private waiters: (() => void)[] = [];

  constructor(private readonly peersOf: (host: string) => readonly string[]) {}

  /** `host` is at step `step`; resolves once every peer is at it or further. */
  async arrive(host: string, step: number): Promise<void> {
    this.set(host, step);
    while (!this.peersOf(host).every((p) => (this.reached.get(p) ?? -1) >= step)) await new Promise<void>((r) => this.waiters.push(r));
  }

  /** `host` is at step `step` (waits for nobody). */
  reach(host: string, step: number): void {
    this.set(host, step);
  }

  /** `host` takes no further step in this play. */
  done(host: string): void {
    this.set(host, Number.POSITIVE_INFINITY);
  }

  private set(host: string, step: number): void {
    this.reached.set(host, step);
    const w = this.waiters;
    this.waiters = [];
    for (const wake of w) wake();
  }
}
