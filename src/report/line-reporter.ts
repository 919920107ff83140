import type { Reporter } from '../core/reporter.js';
import type { TaskResult } from '../lib/plan-types.js';
import { safeText } from './sanitize.js';
import { makeStyle } from './style.js';

/** Host-derived text, one line, sanitized before pgtls adds its own colours. */
const t = (text: string) => safeText(text, { oneLine: true });

/**
 * One line per event, for CI logs and pipes (no cursor movement, no spinners).
 * Lines of different hosts interleave, so each starts with the host name.
 */
export class LineReporter implements Reporter {
  private readonly style;
  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {
    this.style = makeStyle(out);
  }

  private line(s: string) {
    this.out.write(s + '\n');
  }
  playStart(play: string, hosts: string[], batch: number, batches: number): void {
    const b = batches > 1 ? ` (batch ${batch}/${batches}: ${hosts.join(', ')})` : '';
    this.line(this.style.bold(t(`PLAY [${play}]${b}`)));
  }
  hostStart(): void {}
  taskStart(): void {}
  taskEnd(host: string, r: TaskResult): void {
    const s = this.style;
    const status =
      r.status === 'changed' ? s.yellow('changed') : r.status === 'ok' ? s.green('ok') : r.status === 'skipped' ? s.cyan('skipped') : s.red(r.status);
    const detail = t(r.error ?? r.summaries.join('; '));
    this.line(`${t(host)} | ${t(r.task)} | ${status}${detail ? ` | ${detail}` : ''} ${s.dim(`(${r.durationMs} ms)`)}`);
    for (const w of r.warnings) this.line(`${t(host)} | ${s.yellow('WARNING')} | ${t(w)}`);
  }
  hostEnd(host: string, status: string, message?: string): void {
    if (status === 'unreachable') this.line(`${t(host)} | ${this.style.red('UNREACHABLE')} | ${t(message ?? '')}`);
  }
  async playEnd(): Promise<void> {}
}
