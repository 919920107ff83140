/**
 * The two shell scripts gencert runs on a host, and the parsers for what they print.
 * Both get every value as a positional argument (quoted by sh``), never spliced into the script.
 */
import { TaskError } from '../../lib/errors.js';
import { diropScript, hostScript } from '../../remote/scripts.js';
import { sh, type ShellCommand } from '../../lib/sh.js';

export interface PathState {
  exists: boolean;
  mode: string;
  owner: string;
  group: string;
}

export interface ProbeResult {
  paths: Map<string, PathState>;
  openssl: boolean;
  /** key path -> its public key PEM (`openssl pkey -pubout`); absent when missing or unreadable. */
  publicKeys: Map<string, string>;
}

/**
 * Read-only (gencert-probe.sh): metadata of the directories and key files, never through a link
 * another user owns (refused, naming it), and the PUBLIC half of each key. The private key is read
 * by openssl on the host; only the public key comes back.
 */
export function probeCommand(keys: string[], others: string[]): ShellCommand {
  return sh`sh -c ${hostScript('gencert-probe')} pgtls-probe ${diropScript()} ${keys.length} ${[...keys, ...others]}`;
}

/** Creates or fixes the key directories, parents first (gencert-dirs.sh): root and `group`, `mode`. */
export function keyDirsCommand(group: string, mode: string, dirs: string[]): ShellCommand {
  return sh`sh -c ${hostScript('gencert-dirs')} pgtls-key-dirs ${diropScript()} ${group} ${mode} ${dirs}`;
}

/** A key's owner and mode, never through a link (gencert-attrs.sh). */
export function keyAttrsCommand(path: string, owner: string, group: string, mode: string): ShellCommand {
  return sh`sh -c ${hostScript('gencert-attrs')} pgtls-key-attrs ${diropScript()} ${path} ${owner} ${group} ${mode}`;
}

export function parseProbe(out: string): ProbeResult {
  const paths = new Map<string, PathState>();
  const publicKeys = new Map<string, string>();
  let openssl = false;
  const lines = out.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    let m: RegExpExecArray | null;
    if ((m = /^stat (\d+) (\S+) (\S+) (.*)$/.exec(l))) paths.set(m[4]!, { exists: true, mode: m[1]!, owner: m[2]!, group: m[3]! });
    else if ((m = /^absent (.*)$/.exec(l))) paths.set(m[1]!, { exists: false, mode: '', owner: '', group: '' });
    else if (l === 'openssl=1') openssl = true;
    else if ((m = /^pub (.*)$/.exec(l))) {
      const end = lines.findIndex((x, j) => j > i && x.startsWith('-----END PUBLIC KEY-----'));
      if (end > i) {
        publicKeys.set(m[1]!, lines.slice(i + 1, end + 1).join('\n') + '\n');
        i = end;
      }
    }
  }
  return { paths, openssl, publicKeys };
}

/**
 * Generates each requested key ON the host (gencert-keygen.sh) next to its final place under a
 * mktemp name, as the user who controls that directory (0600, owner:group), and prints only a CSR
 * for it with the temp file's name.
 */
export function keygenCommand(bits: number, owner: string, group: string, runId: string, stateDir: string, keys: { name: string; keyPath: string }[]): ShellCommand {
  return sh`sh -c ${hostScript('gencert-keygen')} pgtls-keygen ${diropScript()} ${bits} ${owner} ${group} ${runId} ${stateDir} ${keys.flatMap((k) => [k.name, k.keyPath])}`;
}

/** Marks the end of the keygen's CSRs and the start of the probe it runs after them. */
const PROBE_AFTER = 'pgtls-probe-after';
/** The probe's answer is whole (the probe exited 0). */
const PROBE_END = 'pgtls-probe-end';

/**
 * The key directories (when they are to be made), the keygen, then the keys' probe, in one command:
 * the next planning round reads the probe from this command's output instead of asking again. Only
 * the directories and the keygen decide the exit status; a probe that fails prints no end marker
 * (the round after asks the host itself).
 */
export function keygenThenProbe(dirs: ShellCommand | null, keygen: ShellCommand, probe: ShellCommand): ShellCommand {
  const first = dirs ? sh`${dirs} && ${keygen}` : keygen;
  return sh`${first} && { echo ${PROBE_AFTER}; { ${probe} && echo ${PROBE_END}; } || :; }`;
}

/** The probe keygenThenProbe printed, when it is whole; else null (ask the host). */
export function probeAfterKeygen(out: Buffer | undefined): ProbeResult | null {
  if (!out) return null;
  const text = out.toString('utf8');
  const at = text.lastIndexOf(`\n${PROBE_AFTER}\n`);
  if (at < 0 || !text.endsWith(`\n${PROBE_END}\n`)) return null;
  return parseProbe(text.slice(at + PROBE_AFTER.length + 2, text.length - PROBE_END.length - 1));
}

export interface NewKey {
  /** Where the host put the new key until it is installed. */
  tempPath: string;
  csrPem: string;
}

export function parseCsrs(out: string): Map<string, NewKey> {
  const csrs = new Map<string, NewKey>();
  const re = /^new (\S+) (.+)\n(-----BEGIN CERTIFICATE REQUEST-----\n[\s\S]*?-----END CERTIFICATE REQUEST-----)/gm;
  for (const m of out.matchAll(re)) csrs.set(m[1]!, { tempPath: m[2]!, csrPem: `${m[3]!}\n` });
  if (csrs.size === 0) throw new TaskError('key generation on the host printed no certificate request');
  return csrs;
}
