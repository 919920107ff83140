import type { Reporter } from '../core/reporter.js';
import type { TaskResult } from '../core/types.js';
import { makeStyle } from './style.js';

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
    this.line(this.style.bold(`PLAY [${play}]${b}`));
  }
  hostStart(): void {}
  taskStart(): void {}
  taskEnd(host: string, r: TaskResult): void {
    const s = this.style;
    const status =
      r.status === 'changed' ? s.yellow('changed') : r.status === 'ok' ? s.green('ok') : r.status === 'skipped' ? s.cyan('skipped') : s.red(r.status);
    const detail = r.error ?? r.summaries.join('; ');
    this.line(`${host} | ${r.task} | ${status}${detail ? ` | ${detail}` : ''} ${s.dim(`(${r.durationMs} ms)`)}`);
    for (const w of r.warnings) this.line(`${host} | ${s.yellow('WARNING')} | ${w}`);
  }
  hostEnd(host: string, status: string, message?: string): void {
    if (status === 'unreachable') this.line(`${host} | ${this.style.red('UNREACHABLE')} | ${message ?? ''}`);
  }
  async playEnd(): Promise<void> {}
}
