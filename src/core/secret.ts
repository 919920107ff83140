import { inspect } from 'node:util';

/**
 * A value that must never be printed: passwords, private keys, pgpool keys.
 * It masks itself in every way Node turns a value into text (String(), JSON,
 * util.inspect / console.log), so a secret that slips into a log line, a diff,
 * an error message or the JSON report shows as "********" instead of leaking.
 * Code that really needs the value (SQL on stdin, a key file's content) calls reveal().
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
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
    if (v.length >= 3) out = out.split(v).join(Secret.MASK);
  }
  return out;
}
