/**
 * The controller's CA state for one run: created by the run (PlanContext.runState), never module-level,
 * so two runs in one process (tests, a --check then a real run) never see each other's CA cache or
 * simulated rotation.
 */
import type { RunState } from '../lib/plan-types.js';
import type { CertAndKey } from '../crypto/x509.js';
import type { Rotation } from './rotation.js';
import { resolveFromInventory } from './ca-key.js';

export class CaRun {
  /** One promise per directory (and create flag): hosts planning at once get the same CA. */
  readonly cache = new Map<string, Promise<CertAndKey | null>>();
  /** --check: the rotation state the steps this run simulated would have left, by directory. */
  readonly simulated = new Map<string, Rotation | null>();
  /** Rotation steps in flight, by step and directory: one host does a step, the hosts asking later join it. */
  readonly inflight = new Map<string, Promise<string | null>>();
  /** Key pairs generated ahead for CAs that do not exist yet (ModuleDef.warm), by directory and size: taken once. */
  readonly spareKeys = new Map<string, Promise<string>>();
  /** pgtls_ca_passphrase_file, resolved against the inventory (fleet-wide, like pgtls_ca_dir). */
  passphraseFile?: string;
}

/** The run's CA state, with the passphrase file of these (fleet-wide) vars. */
export function caRunOf(runState: RunState, vars?: Readonly<Record<string, unknown>>): CaRun {
  const run = runState.get('ca', () => new CaRun());
  if (vars) {
    const f = vars.pgtls_ca_passphrase_file;
    run.passphraseFile = typeof f === 'string' && f !== '' ? resolveFromInventory(vars, f) : undefined;
  }
  return run;
}
