/**
 * Ansible host ranges: `db[1:3]` -> db1 db2 db3, `db[01:10]` keeps the zero padding,
 * `db[a:c]` letters, `[1:10:2]` a step, several ranges in one name multiply out.
 * Also `host:port` (the port becomes ansible_port), as Ansible's inventory plugins accept.
 */
const RANGE = /\[([0-9a-zA-Z]*):([0-9a-zA-Z]+)(?::([0-9]+))?\]/;

/** Expansion is bounded: a typo like db[1:99999999] must be an error, not a hang. */
export const MAX_RANGE_HOSTS = 100_000;

export function expandHostRange(pattern: string): string[] {
  const m = RANGE.exec(pattern);
  if (!m) return [pattern];
  const head = pattern.slice(0, m.index);
  const tail = pattern.slice(m.index + m[0].length);
  const [, rawStart = '', end = '', rawStep] = m;
  const step = rawStep === undefined ? 1 : Number(rawStep);
  if (!Number.isInteger(step) || step < 1) throw new Error(`host range '${m[0]}': the step must be a positive integer`);
  const items: string[] = [];
  if (/^[0-9]*$/.test(rawStart) && /^[0-9]+$/.test(end)) {
    const start = rawStart === '' ? '0' : rawStart;
    // Ansible pads to the width of the start when it has a leading zero (db[01:10] -> db01..db10).
    const width = start.length > 1 && start.startsWith('0') ? start.length : 0;
    const a = Number(start);
    const b = Number(end);
    if (a > b) throw new Error(`host range '${m[0]}': the start is after the end`);
    if ((b - a) / step + 1 > MAX_RANGE_HOSTS) throw new Error(`host range '${m[0]}' expands to more than ${MAX_RANGE_HOSTS} hosts`);
    for (let i = a; i <= b; i += step) items.push(width ? String(i).padStart(width, '0') : String(i));
  } else if (/^[a-zA-Z]$/.test(rawStart) && /^[a-zA-Z]$/.test(end)) {
    const a = rawStart.charCodeAt(0);
    const b = end.charCodeAt(0);
    if (a > b) throw new Error(`host range '${m[0]}': the start is after the end`);
    for (let c = a; c <= b; c += step) items.push(String.fromCharCode(c));
  } else {
    throw new Error(`host range '${m[0]}': use numbers ([1:3], [01:10]) or single letters ([a:c])`);
  }
  const rest = expandHostRange(tail);
  if (items.length * rest.length > MAX_RANGE_HOSTS) throw new Error(`host pattern '${pattern}' expands to more than ${MAX_RANGE_HOSTS} hosts`);
  return items.flatMap((i) => rest.map((r) => head + i + r));
}

/** `name:port` -> { name, port }; IPv6 addresses (more than one ':') need brackets: `[::1]:2222`. */
export function splitHostPort(entry: string): { name: string; port?: number } {
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(entry);
  if (bracketed) return { name: bracketed[1]!, port: Number(bracketed[2]) };
  const m = /^([^:]+):(\d+)$/.exec(entry);
  if (m) return { name: m[1]!, port: Number(m[2]) };
  return { name: entry };
}

export function hasHostRange(name: string): boolean {
  return RANGE.test(name);
}
