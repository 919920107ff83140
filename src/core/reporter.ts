import type { TaskResult } from '../lib/plan-types.js';

export interface HostRecap {
  ok: number;
  changed: number;
  unreachable: number;
  failed: number;
  skipped: number;
}

/** How the runner tells the outside world what happens. Rendering lives in src/report/, never in tasks. */
export interface Reporter {
  playStart(play: string, hosts: string[], batch: number, batches: number): void;
  hostStart(host: string): void;
  taskStart(host: string, task: string, index: number, total: number): void;
  taskEnd(host: string, result: TaskResult): void;
  hostEnd(host: string, status: 'ok' | 'failed' | 'unreachable' | 'interrupted', message?: string): void;
  playEnd(): Promise<void>;
}

export const silentReporter: Reporter = {
  playStart() {},
  hostStart() {},
  taskStart() {},
  taskEnd() {},
  hostEnd() {},
  async playEnd() {},
};
