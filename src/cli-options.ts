import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadVaultPasswords, type VaultKeyring } from './config/vault.js';
import { ConfigError, errorMessage, type ConfigIssue } from './lib/errors.js';
import { commandEcho } from './remote/ssh.js';
import { checkOutputPath } from './lib/private-file.js';

/** Options every command that talks to a fleet shares (`run`, `status`), with Ansible's letters. */
export const FLEET_OPTIONS = {
  inventory: { type: 'string', short: 'i' },
  'extra-vars': { type: 'string', short: 'e', multiple: true },
  forks: { type: 'string', short: 'f' },
  limit: { type: 'string', short: 'l' },
  'known-hosts': { type: 'string' },
  'insecure-skip-host-key-check': { type: 'boolean' },
  'vault-password-file': { type: 'string', multiple: true },
  'vault-id': { type: 'string', multiple: true },
  verbose: { type: 'boolean', short: 'v', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** Help text of the options above that run and status share besides -i/-e/-l/-f. */
export const VAULT_USAGE = `      --vault-password-file FILE   password for ansible-vault files and !vault values (repeatable;
                               an executable FILE is run and prints it); default $ANSIBLE_VAULT_PASSWORD_FILE
      --vault-id [LABEL@]FILE      the same, for a labelled vault id (format 1.2)
  -v, -vv                  print every remote command line (as PGTLS_COMMAND_LOG writes it); -vv adds exit status and time`;

export interface FleetValues {
  inventory?: string;
  'extra-vars'?: string[];
  forks?: string;
  limit?: string;
  'known-hosts'?: string;
  'insecure-skip-host-key-check'?: boolean;
  'vault-password-file'?: string[];
  'vault-id'?: string[];
  verbose?: boolean[];
}

/** The vault passwords the command line (or ANSIBLE_VAULT_PASSWORD_FILE) names. */
export function vaultKeyring(v: FleetValues): VaultKeyring {
  return loadVaultPasswords({ passwordFiles: v['vault-password-file'], vaultIds: v['vault-id'] });
}

/** -v/-vv: echo remote commands on stderr (they never contain a secret: those go on stdin). */
export function applyVerbosity(v: FleetValues): void {
  commandEcho.verbosity = v.verbose?.length ?? 0;
  commandEcho.write = (line) => process.stderr.write(`${line}\n`);
}

/** node:util parseArgs, with its errors turned into bad input (exit 2). */
export function parseCommandLine<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options });
  } catch (e) {
    throw new ConfigError([{ file: 'command line', message: errorMessage(e) }]);
  }
}

/** Checks the shared options; returns what the runner needs from them. */
export function fleetSettings(v: FleetValues, problems: ConfigIssue[]): { forks: number; knownHosts: string | null | undefined } {
  if (!v.inventory) problems.push({ file: 'command line', field: '--inventory', message: 'is required' });
  const forks = v.forks === undefined ? 50 : Number(v.forks);
  if (!Number.isInteger(forks) || forks < 1) problems.push({ file: 'command line', field: '--forks', message: 'must be a positive integer' });
  if (v['known-hosts'] && v['insecure-skip-host-key-check'])
    problems.push({ file: 'command line', message: '--known-hosts and --insecure-skip-host-key-check exclude each other' });
  for (const file of [(v as { json?: unknown }).json, (v as { junit?: unknown }).junit, process.env.PGTLS_COMMAND_LOG])
    if (typeof file === 'string' && file !== '') {
      try {
        checkOutputPath(file);
      } catch (e) {
        problems.push({ file: 'command line', message: errorMessage(e) });
      }
    }
  if (v['insecure-skip-host-key-check'] && problems.length === 0) process.stderr.write(INSECURE_BANNER);
  return { forks, knownHosts: v['insecure-skip-host-key-check'] ? null : v['known-hosts'] };
}

/** Said loudly, once, before any connection; each accepted key's fingerprint follows (ssh.ts). */
const INSECURE_BANNER = [
  '',
  '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
  '!! WARNING: --insecure-skip-host-key-check: host keys are NOT verified.                        !!',
  '!! Anyone on the network path can pose as a host, receive the passwords and keys pgtls sends,  !!',
  '!! and run as root there. Check the fingerprints accepted below against the hosts.            !!',
  '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
  '',
].join('\n');

/**
 * SIGINT/SIGTERM: the first aborts the run (running tasks finish, no new one starts: exit 4),
 * a second one quits at once. Returns the function that removes the handlers.
 */
export function abortOnSignals(abort: AbortController, note?: string): () => void {
  const onSignal = () => {
    if (abort.signal.aborted) process.exit(4);
    if (note) process.stderr.write(note);
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}
