import { Secret } from './secret.js';

/**
 * The only way pgtls builds a remote command line. Every interpolated value is
 * quoted for POSIX sh, so a path with spaces or a name with a quote cannot break
 * out of its argument. A Secret cannot be interpolated at all: secrets travel on
 * stdin, never in argv (where `ps` on the host would show them).
 */
export class ShellCommand {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** Marks text as already-safe shell syntax (a nested ShellCommand, an operator). */
export class RawShell {
  constructor(readonly text: string) {}
}

export function raw(text: string): RawShell {
  return new RawShell(text);
}

export function quote(value: string): string {
  if (value === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

type Interpolation = string | number | ShellCommand | RawShell | readonly (string | number)[];

/** A Secret was interpolated into a command line. The message never holds the value; the runner adds the task. */
export class SecretOnCommandLineError extends Error {
  constructor() {
    super('refusing to put a secret on a command line (ps on the host would show it): send it on stdin');
    this.name = 'SecretOnCommandLineError';
  }
}

function render(value: Interpolation | Secret): string {
  if (value instanceof Secret) throw new SecretOnCommandLineError();
  if (value instanceof ShellCommand || value instanceof RawShell) return value.text;
  if (Array.isArray(value)) return value.map((v) => quote(String(v))).join(' ');
  return quote(String(value));
}

export function sh(strings: TemplateStringsArray, ...values: Interpolation[]): ShellCommand {
  let text = strings[0] ?? '';
  values.forEach((v, i) => {
    text += render(v) + (strings[i + 1] ?? '');
  });
  return new ShellCommand(text);
}

/** Wraps a command to run as another OS user (`postgres`) via sudo (non-root login) or runuser (root login). */
export function asUser(cmd: ShellCommand, user: string, viaSudo: boolean): ShellCommand {
  return viaSudo
    ? sh`sudo -n -H -u ${user} -- sh -c ${cmd.text}`
    : sh`runuser -u ${user} -- sh -c ${cmd.text}`;
}

/** Wraps a command to run as root with non-interactive sudo (ansible_become). */
export function asRoot(cmd: ShellCommand): ShellCommand {
  return sh`sudo -n -H -- sh -c ${cmd.text}`;
}

/**
 * Runs a command as `user` through sudo with a password (ansible_become_password). The password
 * is the FIRST LINE OF STDIN, never argv: `sudo -S` reads it (byte by byte, so the rest of stdin
 * reaches the command). When sudo needs no password (NOPASSWD, cached credentials) the line is
 * consumed by `read` instead, so it never leaks into the command's input.
 */
export function asUserWithPassword(cmd: ShellCommand, user: string): ShellCommand {
  const script =
    'if sudo -n -u "$1" true 2>/dev/null; then IFS= read -r _; exec sudo -n -H -u "$1" -- sh -c "$2"; ' +
    'else exec sudo -S -k -p "" -H -u "$1" -- sh -c "$2"; fi';
  return sh`sh -c ${script} pgtls-become ${user} ${cmd.text}`;
}
