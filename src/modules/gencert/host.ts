/**
 * The two shell scripts gencert runs on a host, and the parsers for what they print.
 * Both get every value as a positional argument (quoted by sh``), never spliced into the script.
 */
import { TaskError } from '../../core/errors.js';
import { sh, type ShellCommand } from '../../remote/sh.js';

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
 * Read-only: metadata of the directories and key files, and the PUBLIC half of each key.
 * The private key is read by openssl on the host; only the public key comes back.
 * `-passin pass:` makes an encrypted key fail instead of prompting (PostgreSQL could not load it either).
 */
const PROBE = `
nkeys=$1; shift
i=0
for p in "$@"; do
  if [ -e "$p" ]; then printf 'stat %s %s\\n' "$(stat -L -c '%a %U %G' -- "$p")" "$p"; else printf 'absent %s\\n' "$p"; fi
done
if command -v openssl >/dev/null 2>&1; then echo openssl=1; else echo openssl=0; exit 0; fi
for p in "$@"; do
  i=$((i + 1)); [ "$i" -le "$nkeys" ] || break
  if [ -f "$p" ] && pub=$(openssl pkey -in "$p" -pubout -passin pass: 2>/dev/null); then printf 'pub %s\\n%s\\n' "$p" "$pub"; fi
done
`;

/** `keys` first (their public keys are extracted), then any other paths to stat. */
export function probeCommand(keys: string[], others: string[]): ShellCommand {
  return sh`sh -c ${PROBE} pgtls-probe ${keys.length} ${[...keys, ...others]}`;
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
 * Generates each requested key ON the host into a temp file next to its final place (umask 077,
 * then 0600 and the DB user as owner), and prints only a CSR for it. The CSR subject is a constant:
 * the controller sets the real subject and SANs when it signs, so no inventory text reaches openssl's
 * subject parser. A tiny openssl config is written because OpenSSL 1.1 `req` insists on one.
 */
const KEYGEN = `set -eu
umask 077
bits=$1 owner=$2 group=$3; shift 3
# all keys at once (RSA key generation is the slow part), then one CSR each
n=0
for a in "$@"; do
  n=$((n + 1)); [ $((n % 2)) -eq 0 ] || continue
  rm -f -- "$a" "$a.err"
  openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$bits" -out "$a" 2>"$a.err" &
done
wait
fail=0
n=0
for a in "$@"; do
  n=$((n + 1)); [ $((n % 2)) -eq 0 ] || continue
  [ -s "$a" ] || fail=1
  grep -v '^[.+*]*$' "$a.err" >&2 || true
  rm -f -- "$a.err"
done
if [ "$fail" = 1 ]; then
  n=0; for a in "$@"; do n=$((n + 1)); [ $((n % 2)) -eq 0 ] && rm -f -- "$a"; done
  exit 1
fi
while [ $# -ge 2 ]; do
  name=$1 new=$2; shift 2
  chown -- "$owner:$group" "$new"
  chmod 600 -- "$new"
  cnf="$new.cnf"
  printf '[req]\\ndistinguished_name = dn\\nprompt = no\\n[dn]\\nCN = pgtls-csr\\n' > "$cnf"
  echo "csr $name"
  openssl req -new -key "$new" -config "$cnf" -sha256
  rm -f -- "$cnf"
done
`;

export function keygenCommand(bits: number, owner: string, group: string, keys: { name: string; newPath: string }[]): ShellCommand {
  return sh`sh -c ${KEYGEN} pgtls-keygen ${bits} ${owner} ${group} ${keys.flatMap((k) => [k.name, k.newPath])}`;
}

export function parseCsrs(out: string): Map<string, string> {
  const csrs = new Map<string, string>();
  const re = /^csr (\S+)\n(-----BEGIN CERTIFICATE REQUEST-----\n[\s\S]*?-----END CERTIFICATE REQUEST-----)/gm;
  for (const m of out.matchAll(re)) csrs.set(m[1]!, `${m[2]!}\n`);
  if (csrs.size === 0) throw new TaskError('key generation on the host printed no certificate request');
  return csrs;
}
