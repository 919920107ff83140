/**
 * libpq connection strings (primary_conninfo), parsed the way libpq's conninfo_parse /
 * conninfo_uri_parse do, and edited without touching what we do not change: an edit
 * replaces only the `key=value` text of the keywords it sets and appends the missing
 * ones, so every other keyword (passfile, application_name, an inline password…) keeps
 * its exact bytes. Pure: no I/O, table-tested in test/unit/conninfo.test.ts.
 *
 * Keyword/value form: `key = value` pairs separated by whitespace; a value is either
 * bare (up to the next whitespace, `\` escapes the next character) or single-quoted
 * (`\'` and `\\` inside). URI form: postgresql://[user[:password]@][host[:port][,…]][/dbname][?k=v&…],
 * percent-encoded; edited in its query string.
 */

export interface ConninfoParam {
  key: string;
  value: string;
  /** Where `key=value` is in the string: [start, end). */
  start: number;
  end: number;
}

export interface ParsedConninfo {
  form: 'keyword' | 'uri';
  params: ConninfoParam[];
  /** URI form: hosts and ports from the authority, user/password from the userinfo. */
  uri?: { hosts: string[]; ports: string[]; user?: string; password?: { start: number; end: number; value: string }; queryStart: number };
}

export class ConninfoError extends Error {}

/** libpq's keywords (PQconndefaults): the only words of a connection string an error message may name. */
const KEYWORDS = new Set(
  ('host hostaddr port dbname user password passfile channel_binding connect_timeout client_encoding options application_name ' +
    'fallback_application_name keepalives keepalives_idle keepalives_interval keepalives_count tcp_user_timeout replication ' +
    'gssencmode sslmode requiressl sslcompression sslcert sslkey sslpassword sslcertmode sslrootcert sslcrl sslcrldir sslsni ' +
    'requirepeer require_auth ssl_min_protocol_version ssl_max_protocol_version krbsrvname gsslib gssdelegation service ' +
    'target_session_attrs load_balance_hosts sslnegotiation').split(' '),
);

const URI_PREFIX = /^postgres(?:ql)?:\/\//;

export function parseConninfo(s: string): ParsedConninfo {
  return URI_PREFIX.test(s) ? parseUri(s) : parseKeywords(s);
}

const isSpace = (c: string | undefined) => c !== undefined && /\s/.test(c);

function parseKeywords(s: string): ParsedConninfo {
  const params: ConninfoParam[] = [];
  let i = 0;
  for (;;) {
    while (isSpace(s[i])) i++;
    if (i >= s.length) break;
    const start = i;
    while (i < s.length && s[i] !== '=' && !isSpace(s[i])) i++;
    const key = s.slice(start, i);
    while (isSpace(s[i])) i++;
    // no text of the string in a message: a misquoted password would be printed (a keyword is safe to name)
    if (s[i] !== '=') throw new ConninfoError(`missing "=" after ${KEYWORDS.has(key) ? `"${key}"` : `the word at character ${start + 1}`} in the connection string`);
    i++;
    while (isSpace(s[i])) i++;
    let value = '';
    if (s[i] === "'") {
      i++;
      for (;;) {
        if (i >= s.length) throw new ConninfoError(`unterminated quoted string in the connection string (value of ${KEYWORDS.has(key) ? `"${key}"` : `the word at character ${start + 1}`})`);
        const c = s[i]!;
        if (c === '\\' && i + 1 < s.length) {
          value += s[i + 1];
          i += 2;
        } else if (c === "'") {
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
    } else {
      while (i < s.length && !isSpace(s[i])) {
        if (s[i] === '\\' && i + 1 < s.length) {
          value += s[i + 1];
          i += 2;
        } else value += s[i++];
      }
    }
    params.push({ key, value, start, end: i });
  }
  return { form: 'keyword', params };
}

function pctDecode(s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ConninfoError(`invalid percent-encoding in the connection URI's ${what}`);
  }
}

function parseUri(s: string): ParsedConninfo {
  const prefix = URI_PREFIX.exec(s)![0];
  let i = prefix.length;
  const qAt = s.indexOf('?', i);
  const end = qAt < 0 ? s.length : qAt;
  const slash = s.indexOf('/', i);
  const authEnd = slash >= 0 && slash < end ? slash : end;
  let auth = s.slice(i, authEnd);
  const uri: NonNullable<ParsedConninfo['uri']> = { hosts: [], ports: [], queryStart: end };
  const at = auth.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = auth.slice(0, at);
    const colon = userinfo.indexOf(':');
    if (colon >= 0) {
      uri.user = pctDecode(userinfo.slice(0, colon), 'user');
      uri.password = { start: i + colon + 1, end: i + at, value: pctDecode(userinfo.slice(colon + 1), 'password') };
    } else uri.user = pctDecode(userinfo, 'user');
    i += at + 1;
    auth = auth.slice(at + 1);
  }
  for (const hp of auth.split(',')) {
    if (hp === '') continue;
    let host = hp;
    let port = '';
    const m = /^\[([^\]]*)\](?::(.*))?$/.exec(hp);
    if (m) {
      host = m[1]!;
      port = m[2] ?? '';
    } else if (hp.includes(':')) {
      host = hp.slice(0, hp.lastIndexOf(':'));
      port = hp.slice(hp.lastIndexOf(':') + 1);
    }
    uri.hosts.push(pctDecode(host, 'host'));
    uri.ports.push(port);
  }
  const params: ConninfoParam[] = [];
  if (qAt >= 0) {
    let p = qAt + 1;
    while (p <= s.length) {
      const amp = s.indexOf('&', p);
      const stop = amp < 0 ? s.length : amp;
      const pair = s.slice(p, stop);
      if (pair !== '') {
        const eq = pair.indexOf('=');
        if (eq < 0) throw new ConninfoError(`missing "=" in the connection URI's parameter at character ${p + 1}`);
        params.push({ key: pctDecode(pair.slice(0, eq), 'parameter'), value: pctDecode(pair.slice(eq + 1), 'parameter'), start: p, end: stop });
      }
      if (amp < 0) break;
      p = amp + 1;
    }
  }
  return { form: 'uri', params, uri };
}

/** The value libpq uses for `key`: the last occurrence wins. */
export function conninfoValue(c: ParsedConninfo, key: string): string | undefined {
  let v: string | undefined;
  for (const p of c.params) if (p.key === key) v = p.value;
  if (c.form === 'uri') {
    if (key === 'host' && v === undefined && c.uri!.hosts.length) v = c.uri!.hosts.join(',');
    if (key === 'port' && v === undefined && c.uri!.ports.some(Boolean)) v = c.uri!.ports.join(',');
    if (key === 'password' && v === undefined && c.uri!.password) v = c.uri!.password.value;
  }
  return v;
}

/** A keyword value as libpq reads it back: bare when it can be, else single-quoted with \ and ' escaped. */
export function quoteConninfoValue(v: string): string {
  if (v !== '' && !/[\s'\\]/.test(v)) return v;
  return `'${v.replace(/[\\']/g, '\\$&')}'`;
}

/** A keyword/value connection string from parameters (undefined ones left out), each value quoted as libpq reads it back. */
export function conninfoString(params: Record<string, string | number | undefined>): string {
  return Object.entries(params)
    .filter((e): e is [string, string | number] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${quoteConninfoValue(String(v))}`)
    .join(' ');
}

/** One replacement of [start, end) by text, on the connection string. */
export interface ConninfoEdit {
  start: number;
  end: number;
  text: string;
}

/**
 * The edits that set each keyword of `set` (every occurrence replaced, a missing one appended),
 * and the resulting string. Everything outside those edits stays byte for byte.
 */
export function setConninfoParams(s: string, set: Record<string, string>): { edits: ConninfoEdit[]; result: string } {
  const c = parseConninfo(s);
  const edits: ConninfoEdit[] = [];
  const render = (k: string, v: string) =>
    c.form === 'uri' ? `${encodeURIComponent(k)}=${encodeURIComponent(v)}` : `${k}=${quoteConninfoValue(v)}`;
  let append = '';
  for (const [k, v] of Object.entries(set)) {
    const found = c.params.filter((p) => p.key === k);
    for (const p of found) if (s.slice(p.start, p.end) !== render(k, v)) edits.push({ start: p.start, end: p.end, text: render(k, v) });
    if (found.length === 0) {
      if (c.form === 'uri') append += `${append || c.params.length || s.includes('?') ? '&' : '?'}${render(k, v)}`;
      else append += `${append || /\S/.test(s) ? ' ' : ''}${render(k, v)}`;
    }
  }
  if (append) {
    // keyword form: right after the last pair (trailing blanks stay at the end); URI: at the very end
    const at = c.form === 'uri' ? s.length : (c.params.at(-1)?.end ?? s.length);
    if (c.form === 'uri' && s.endsWith('?') && append.startsWith('&')) append = append.slice(1);
    edits.push({ start: at, end: at, text: append });
  }
  return { edits, result: applyEdits(s, edits) };
}

export function applyEdits(s: string, edits: ConninfoEdit[]): string {
  let out = s;
  for (const e of [...edits].sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  return out;
}

const MASK = '********';

/** The connection string with every password replaced by ********: what a diff, log or summary may show. */
export function maskConninfoPassword(s: string): string {
  let c: ParsedConninfo;
  try {
    c = parseConninfo(s);
  } catch {
    // cannot tell where a password would be: show nothing of it after "password"
    return /password/i.test(s) ? s.replace(/(password)[\s\S]*$/i, `$1${MASK}`) : s;
  }
  const edits: ConninfoEdit[] = c.params.filter((p) => p.key === 'password').map((p) => ({ start: p.start, end: p.end, text: `password=${MASK}` }));
  if (c.uri?.password) edits.push({ start: c.uri.password.start, end: c.uri.password.end, text: MASK });
  return applyEdits(s, edits);
}
