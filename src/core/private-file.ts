// Moved to src/lib/private-file.ts (the one controller-side file writer); kept for branches in flight.
export * from '../lib/private-file.js';
