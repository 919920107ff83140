#!/usr/bin/env node
// Signals first, before the (slow to load) program: Ctrl-C or SIGTERM while pgtls starts, or after
// the run's own handler is gone, exits 4 (interrupted) with nothing half-done, never killed mid-print.
// While a run listens for them itself (cli-options.ts abortOnSignals), this fallback stays quiet.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (process.listenerCount(sig) === 1) process.exit(4);
  });
}
// Controller memory at fleet scale (issue 12): when every host plans its tasks at once, the garbage
// of all hosts' in-flight tasks outlives the young generation and lands in the old one, which V8
// lets grow up to ~4x its live size before a full collection: the peak RSS of a first run on 200
// hosts was set by that garbage, not by what the run keeps. A fixed growth bound keeps the old
// generation near its live size (full collections are cheap here: the live set is tens of MB).
// Read by V8 at every full collection, so setting it now (before the run allocates) is enough.
const { setFlagsFromString } = await import('node:v8');
setFlagsFromString(`--heap-growing-percent=${process.env.PGTLS_HEAP_GROWING_PERCENT ?? 20}`);
// The one-file bundle (scripts/bundle.ts: half the start-up time) when it was built from the
// compiled tree as it is now; else the tree itself (after a plain `tsc`, the bundle is stale).
const { statSync } = await import('node:fs');
const mtime = (rel) => { try { return statSync(new URL(rel, import.meta.url)).mtimeMs; } catch { return -1; } };
const tree = mtime('../dist/src/cli.js');
const entry = tree > 0 && mtime('../dist/pgtls.mjs') >= tree ? '../dist/pgtls.mjs' : '../dist/src/cli.js';
const { main } = await import(entry);
main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
