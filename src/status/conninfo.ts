/**
 * libpq connection strings (`primary_conninfo`, pg_stat_wal_receiver.conninfo) read as libpq reads
 * them: `key=value` pairs (values optionally 'single quoted', backslash escapes) or a
 * postgresql:// URI (query parameters). Only what status needs leaves this file: the sslmode and
 * the host, never the whole string (it may hold a password).
 */
export function conninfoParams(s: string): Map<string, string> {
  const out = new Map<string, string>();
  const t = s.trim();
  if (/^postgres(ql)?:\/\//.test(t)) {
    const m = /^postgres(?:ql)?:\/\/(?:[^@/?]*@)?([^/?]*)(?:\/[^?]*)?(?:\?(.*))?$/.exec(t);
    if (m?.[1]) out.set('host', decodeURIComponent(m[1].replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1')));
    for (const kv of (m?.[2] ?? '').split('&')) {
      const eq = kv.indexOf('=');
      if (eq > 0) out.set(decodeURIComponent(kv.slice(0, eq)), decodeURIComponent(kv.slice(eq + 1)));
    }
    return out;
  }
  let i = 0;
  while (i < t.length) {
    while (i < t.length && /\s/.test(t[i]!)) i++;
    const k0 = i;
    while (i < t.length && t[i] !== '=' && !/\s/.test(t[i]!)) i++;
    const key = t.slice(k0, i);
    while (i < t.length && /\s/.test(t[i]!)) i++;
    if (t[i] !== '=') break; // malformed: libpq would refuse it too
    i++;
    while (i < t.length && /\s/.test(t[i]!)) i++;
    let value = '';
    if (t[i] === "'") {
      i++;
      while (i < t.length && t[i] !== "'") {
        if (t[i] === '\\' && i + 1 < t.length) i++;
        value += t[i++];
      }
      i++;
    } else
      while (i < t.length && !/\s/.test(t[i]!)) {
        if (t[i] === '\\' && i + 1 < t.length) i++;
        value += t[i++];
      }
    if (key) out.set(key, value);
  }
  return out;
}

/** The sslmode libpq uses for a conninfo: its own, else libpq's default `prefer`. */
export function effectiveSslmode(conninfo: string): string {
  const p = conninfoParams(conninfo);
  return p.get('sslmode') || (p.get('requiressl') === '1' ? 'require' : 'prefer');
}
