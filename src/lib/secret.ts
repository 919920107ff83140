import { inspect } from 'node:util';

/**
 * A value that must never be printed: passwords, private keys, pgpool keys.
 * It masks itself in every way Node turns a value into text (String(), JSON,
 * util.inspect / console.log), so a secret that slips into a log line, a diff,
 * an error message or the JSON report shows as "********" instead of leaking.
 * Code that really needs the value (SQL on stdin, a key file's content) calls reveal().
 *
 * Every secret's text is also remembered (process-wide) so that redactKnown() can mask it in
 * text pgtls did not build itself (a remote command's stderr, a message from a library): the
 * last line of defence of the report layer and the command log.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string, rememberIt = true) {
    this.#value = value;
    if (rememberIt) remember(value);
  }
  /**
   * Secret parts with text that is not secret around them (a password line then the SQL psql reads,
   * an ALTER ROLE around a verifier): one Secret, of which only the secret parts are remembered for
   * redactKnown. Remembering the whole would mask its ordinary lines wherever they appear on their
   * own (the SQL a read-only query shares with it), and drop those queries from what may be replayed.
   */
  static of(...parts: (string | Secret)[]): Secret {
    return new Secret(parts.map((p) => (p instanceof Secret ? p.reveal() : p)).join(''), false);
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return Secret.MASK;
  }
  toJSON(): string {
    return Secret.MASK;
  }
  [inspect.custom](): string {
    return Secret.MASK;
  }
  static readonly MASK = '********';
}

/**
 * Replaces every occurrence of each secret's text in `text` with the mask.
 * The last line of defence for output we do not build ourselves (stderr of a remote command).
 */
export function redact(text: string, secrets: Iterable<Secret>): string {
  let out = text;
  for (const s of secrets) {
    const v = s.reveal();
    if (v.length >= MIN_REDACTED) out = out.split(v).join(Secret.MASK);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Every secret seen in this process, for redactKnown()

/** Shorter texts would mask ordinary words (a 2-letter password would eat every "pg"). */
const MIN_REDACTED = 4;
const known = new Set<string>();
let sortedKnown: string[] | null = null;

function remember(value: string): void {
  const add = (v: string) => {
    if (v.length >= MIN_REDACTED && !known.has(v)) {
      known.add(v);
      sortedKnown = null;
    }
  };
  add(value);
  // A multi-line secret (a key, an SQL script) may surface one line at a time.
  if (value.includes('\n')) for (const line of value.split('\n')) if (line.trim().length >= 8) add(line);
}

/** Masks the text of every Secret created so far in this process (longest first). */
export function redactKnown(text: string): string {
  if (known.size === 0 || text.length === 0) return text;
  sortedKnown ??= [...known].sort((a, b) => b.length - a.length);
  let out = text;
  for (const v of sortedKnown) if (out.includes(v)) out = out.split(v).join(Secret.MASK);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tainting variables at the source

/**
 * Variable names that hold secrets (Ansible users' habits): *password*, *secret*, *passphrase*,
 * *_key, case-insensitive. Names ending in _file, _path or _dir name a place, not a secret
 * (pgpool_key_file, pgtls_ca_passphrase_file); pgtls_secret_vars is the list of names itself.
 */
export function isSecretName(name: string): boolean {
  if (/_(?:file|path|dir)$/i.test(name) || name === SECRET_VARS) return false;
  return /password|secret|passphrase/i.test(name) || /_key$/i.test(name);
}

/** The variable listing further secret variable names (top level), e.g. [db_conninfo]. */
export const SECRET_VARS = 'pgtls_secret_vars';

/** A value under a secret name: every string (non-empty) or number leaf becomes a Secret. */
export function taintValue(v: unknown): unknown {
  if (v instanceof Secret) return v;
  if (typeof v === 'string') return v === '' ? v : new Secret(v);
  if (typeof v === 'number') return new Secret(String(v));
  if (Array.isArray(v)) return v.map(taintValue);
  if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, taintValue(x)]));
  return v;
}

/**
 * A variable tree as loaded (inventory, -e, play or task vars) with the values of secret-named
 * keys, at any depth (pgtls_users[].password), turned into Secrets. Other values are unchanged.
 * A loader that knows better (a vault, a `!secret` tag) puts Secret objects in the tree itself.
 */
export function taintVars<T>(tree: T, names: ReadonlySet<string> = new Set()): T {
  // Structural sharing: a container without secrets below it is returned as it is (a big inventory
  // is not copied), so only the paths to secret values are new objects.
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) {
      const out = v.map(walk);
      return out.some((x, i) => x !== v[i]) ? out : v;
    }
    if (!isPlainObject(v)) return v;
    let changed = false;
    const entries = Object.entries(v).map(([k, x]) => {
      const y = isSecretName(k) || names.has(k) ? taintValue(x) : walk(x);
      if (y !== x) changed = true;
      return [k, y] as const;
    });
    return changed ? Object.fromEntries(entries) : v;
  };
  return walk(tree) as T;
}

/** The names listed in pgtls_secret_vars (strings only; anything else is ignored here, validated elsewhere). */
export function secretVarNames(vars: Readonly<Record<string, unknown>>): Set<string> {
  const list = vars[SECRET_VARS];
  return new Set(Array.isArray(list) ? list.filter((n): n is string => typeof n === 'string') : []);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
