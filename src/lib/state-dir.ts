/** pgtls's directory on a host (the run lock, journals, originals): one rule for the executor and every module. */
export const DEFAULT_STATE_DIR = '/var/lib/pgtls/state';

/** A module's own `state_dir` argument, else pgtls_state_dir, else the default. */
export function stateDirOf(vars: Readonly<Record<string, unknown>>, override?: string): string {
  if (override) return override;
  return typeof vars.pgtls_state_dir === 'string' && vars.pgtls_state_dir ? vars.pgtls_state_dir : DEFAULT_STATE_DIR;
}
