/**
 * The one retry-until-deadline loop: a server coming up, a standby replaying, a walsender reconnecting.
 * Bounded by a deadline (load on the host only makes each attempt slower, never the wait endless), with a
 * pause between attempts; an attempt may say its answer is final (a refused password will not change).
 */
export type Attempt<T> = { done: true } | { done: false; value: T; final?: boolean };

/** A pause of `ms` (between attempts). */
export const sleep = (ms: number): Promise<unknown> => new Promise((r) => setTimeout(r, ms));

/** Runs `attempt` until it is done, final, or `waitMs` has passed; resolves with the last unfinished value (undefined when done). */
export async function retryUntil<T>(waitMs: number, attempt: () => Promise<Attempt<T>>, intervalMs = 500): Promise<T | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const r = await attempt();
    if (r.done) return undefined;
    if (r.final || Date.now() >= deadline) return r.value;
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}
