/**
 * The one retry-until-deadline loop: a server coming up, a standby replaying, a walsender reconnecting.
 * Bounded by a deadline (load on the host only makes each attempt slower, never the wait endless), with a
 * pause between attempts; an attempt may say its answer is final (a refused password will not change).
 */
export type Attempt<T> = { done: true } | { done: false; value: T; final?: boolean };

/** A pause of `ms` (between attempts). */
export const sleep = (ms: number): Promise<unknown> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `attempt` until it is done, final, or `waitMs` has passed; resolves with the last unfinished value
 * (undefined when done). `intervalMs`: the pause between attempts, or a first pause that doubles up to a
 * longest one (what is usually a moment away, such as a standby replaying a change its primary is making
 * right now, is seen a moment later, and a long wait still asks only now and then).
 */
export async function retryUntil<T>(waitMs: number, attempt: () => Promise<Attempt<T>>, intervalMs: number | { first: number; max: number } = 500): Promise<T | undefined> {
  const deadline = Date.now() + waitMs;
  let pause = typeof intervalMs === 'number' ? intervalMs : intervalMs.first;
  for (;;) {
    const r = await attempt();
    if (r.done) return undefined;
    if (r.final || Date.now() >= deadline) return r.value;
    await sleep(Math.min(pause, Math.max(0, deadline - Date.now())));
    if (typeof intervalMs !== 'number') pause = Math.min(intervalMs.max, pause * 2);
  }
}
