#!/usr/bin/env node
// Signals first, before the (slow to load) program: Ctrl-C or SIGTERM while pgtls starts, or after
// the run's own handler is gone, exits 4 (interrupted) with nothing half-done, never killed mid-print.
// While a run listens for them itself (cli-options.ts abortOnSignals), this fallback stays quiet.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (process.listenerCount(sig) === 1) process.exit(4);
  });
}
const { main } = await import('../dist/src/cli.js');
main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
