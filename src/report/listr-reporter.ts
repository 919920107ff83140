import { Listr, type ListrTaskWrapper } from 'listr2';
import type { Reporter } from '../core/reporter.js';
import type { TaskResult } from '../lib/plan-types.js';
import { safeText } from './sanitize.js';

interface HostState {
  task?: { title: string; output: string };
  done: Promise<void>;
  finish: (error?: Error) => void;
  counts: { ok: number; changed: number; failed: number; skipped: number };
  warnings: string[];
}

/**
 * Live progress on a terminal: one listr2 row per host showing the task it is
 * on. The runner drives the work; listr2 only displays it (doing and showing stay apart).
 */
export class ListrReporter implements Reporter {
  private hosts = new Map<string, HostState>();
  private running: Promise<unknown> | null = null;

  playStart(play: string, hosts: string[], batch: number, batches: number): void {
    this.hosts = new Map(hosts.map((h) => [h, this.state()]));
    const title = batches > 1 ? `${play} (batch ${batch}/${batches})` : play;
    const list = new Listr(
      [
        {
          title,
          task: (_ctx, task) =>
            task.newListr(
              hosts.map((h) => ({
                title: h,
                task: async (_c: unknown, t: ListrTaskWrapper<unknown, never, never>) => {
                  const st = this.hosts.get(h)!;
                  st.task = t as unknown as HostState['task'];
                  await st.done;
                },
              })),
              { concurrent: true, exitOnError: false },
            ),
        },
      ],
      { exitOnError: false, rendererOptions: { collapseSubtasks: false, collapseErrors: false } },
    );
    this.running = list.run().catch(() => undefined);
  }

  private state(): HostState {
    let finish!: (error?: Error) => void;
    const done = new Promise<void>((resolve, reject) => {
      finish = (e) => (e ? reject(e) : resolve());
    });
    done.catch(() => undefined);
    return { done, finish, counts: { ok: 0, changed: 0, failed: 0, skipped: 0 }, warnings: [] };
  }

  hostStart(): void {}

  taskStart(host: string, task: string, index: number, total: number): void {
    const st = this.hosts.get(host);
    if (st?.task) st.task.title = safeText(`${host}  [${index}/${total}] ${task}`, { oneLine: true });
  }

  taskEnd(host: string, r: TaskResult): void {
    const st = this.hosts.get(host);
    if (!st) return;
    if (r.status === 'changed') st.counts.changed++;
    if (r.status === 'ok' || r.status === 'changed') st.counts.ok++;
    if (r.status === 'skipped') st.counts.skipped++;
    if (r.status === 'failed') st.counts.failed++;
    st.warnings.push(...r.warnings);
  }

  hostEnd(host: string, status: string, message?: string): void {
    const st = this.hosts.get(host);
    if (!st) return;
    const c = st.counts;
    if (st.task) {
      st.task.title = `${host}  ok=${c.ok} changed=${c.changed} skipped=${c.skipped}${c.failed ? ` failed=${c.failed}` : ''}`;
      if (st.warnings.length) st.task.output = st.warnings.map((w) => safeText(`warning: ${w}`, { oneLine: true })).join('\n');
    }
    st.finish(status === 'ok' ? undefined : new Error(safeText(`${host}: ${status}${message ? `: ${message}` : ''}`, { oneLine: true })));
  }

  async playEnd(): Promise<void> {
    await this.running;
  }
}
