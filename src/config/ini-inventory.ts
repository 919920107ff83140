/**
 * Ansible's INI inventory, turned into the same shape as the YAML one (so one loader serves both):
 *
 *   host1 ansible_host=10.0.0.1          hosts before any section are 'ungrouped'
 *   [db]                                 a group and its hosts, with inline host variables
 *   db[1:3] ansible_user=deploy
 *   [db:vars]                            group variables
 *   ansible_port=2222
 *   [cluster:children]                   child groups
 *   db
 *
 * Values are read like Ansible reads them (Python literals): 2222 is a number, True a boolean,
 * "a b" or 'a b' a string, [1, 2] a list; anything else is the text itself.
 */
import { ConfigError, type ConfigIssue } from '../lib/errors.js';
import type { LoadedYaml, YamlPath } from './yaml.js';

interface IniGroup {
  hosts: Record<string, Record<string, unknown> | null>;
  vars: Record<string, unknown>;
  children: Record<string, null>;
}

/** Does this text look like an INI inventory rather than YAML? (a `[section]` header or a bare host list) */
export function looksLikeIni(text: string): boolean {
  const first = text.split(/\r?\n/).map((l) => l.trim()).find((l) => l && !l.startsWith('#') && !l.startsWith(';') && l !== '---');
  if (first === undefined) return false;
  if (/^\[[^\]]+\]$/.test(first)) return !/^\[[^\]]*[,"'{}]/.test(first); // `[a, b]` is a YAML flow list
  return false;
}

export function parseIniInventory(text: string, file: string): LoadedYaml {
  const groups: Record<string, IniGroup> = {};
  const lines = new Map<string, number>();
  const issues: ConfigIssue[] = [];
  const key = (path: YamlPath) => JSON.stringify(path);
  const group = (name: string, line: number): IniGroup => {
    let g = groups[name];
    if (!g) {
      g = { hosts: {}, vars: {}, children: {} };
      groups[name] = g;
      lines.set(key([name]), line);
    }
    return g;
  };
  let section = { name: 'ungrouped', kind: 'hosts' as 'hosts' | 'vars' | 'children' };
  text.split(/\r\n|\r|\n/).forEach((rawLine, i) => {
    const lineNo = i + 1;
    const line = rawLine.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[([^\]]+)\]\s*(?:[#;].*)?$/.exec(line);
    if (header) {
      const [name = '', kind = 'hosts'] = header[1]!.trim().split(':');
      if (!['hosts', 'vars', 'children'].includes(kind) || !/^[^\s:]+$/.test(name)) {
        issues.push({ file, line: lineNo, message: `bad section header '${line}' (expected [group], [group:vars] or [group:children])` });
        return;
      }
      section = { name, kind: kind as typeof section.kind };
      group(name, lineNo);
      return;
    }
    if (section.kind === 'vars') {
      // the value is the rest of the line (a Python literal), not shell words
      const vg = group(section.name, lineNo);
      const eq = line.indexOf('=');
      if (eq <= 0) {
        issues.push({ file, line: lineNo, message: `expected key=value in [${section.name}:vars]` });
        return;
      }
      const k = line.slice(0, eq).trim();
      vg.vars[k] = iniValue(stripComment(line.slice(eq + 1)).trim());
      lines.set(key([section.name, 'vars', k]), lineNo);
      return;
    }
    let words: string[];
    try {
      words = shellWords(line);
    } catch (e) {
      issues.push({ file, line: lineNo, message: (e as Error).message });
      return;
    }
    if (words.length === 0) return;
    const g = group(section.name, lineNo);
    if (section.kind === 'children') {
      if (words.length !== 1) issues.push({ file, line: lineNo, message: `a [${section.name}:children] line names one group` });
      else {
        g.children[words[0]!] = null;
        lines.set(key([section.name, 'children', words[0]!]), lineNo);
        group(words[0]!, lineNo);
      }
      return;
    }
    const [host, ...assignments] = words;
    const vars: Record<string, unknown> = { ...(g.hosts[host!] ?? {}) };
    for (const a of assignments) {
      const eq = a.indexOf('=');
      if (eq <= 0) {
        issues.push({ file, line: lineNo, field: host, message: `expected key=value after the host name, got '${a}'` });
        continue;
      }
      const k = a.slice(0, eq);
      vars[k] = iniValue(a.slice(eq + 1));
      lines.set(key([section.name, 'hosts', host!, k]), lineNo);
    }
    g.hosts[host!] = Object.keys(vars).length ? vars : null;
    if (!lines.has(key([section.name, 'hosts', host!]))) lines.set(key([section.name, 'hosts', host!]), lineNo);
  });
  if (issues.length) throw new ConfigError(issues);
  const data: Record<string, unknown> = {};
  for (const [name, g] of Object.entries(groups)) {
    const out: Record<string, unknown> = {};
    if (Object.keys(g.hosts).length) out.hosts = g.hosts;
    if (Object.keys(g.vars).length) out.vars = g.vars;
    if (Object.keys(g.children).length) out.children = g.children;
    data[name] = out;
  }
  const lineOf = (path: YamlPath): number => {
    for (let n = path.length; n > 0; n--) {
      const l = lines.get(key(path.slice(0, n).map(String)));
      if (l !== undefined) return l;
    }
    return 1;
  };
  return { file, data, lineOf };
}

/** Splits a line like a POSIX shell (quotes, backslashes), dropping a trailing `# comment`. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'" || c === '"') {
      const end = line.indexOf(c, i + 1);
      if (end < 0) throw new Error(`unterminated ${c === '"' ? 'double' : 'single'} quote`);
      // Like shlex (which Ansible uses): quotes group words and are removed; the value is then
      // read as a Python literal, so x="2222" is the number 2222 and x="'2222'" the string.
      cur += line.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else if (c === '#' && !inWord) {
      break;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

function stripComment(value: string): string {
  // In [group:vars] a value runs to the end of the line; ` #` starts a comment outside quotes.
  let quote: string | null = null;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if ((c === '#' || c === ';') && (i === 0 || /\s/.test(value[i - 1]!))) return value.slice(0, i);
  }
  return value;
}

/** A Python literal as ast.literal_eval reads it (what Ansible does with INI values), else the text. */
export function iniValue(text: string): unknown {
  const t = text.trim();
  if (/^[-+]?\d+$/.test(t)) return Number(t);
  if (/^[-+]?(\d+\.\d*|\.\d+|\d+\.?\d*[eE][-+]?\d+)$/.test(t)) return Number(t);
  if (t === 'True') return true;
  if (t === 'False') return false;
  if (t === 'None') return null;
  if (/^'(?:[^'\\]|\\.)*'$/.test(t) || /^"(?:[^"\\]|\\.)*"$/.test(t)) return t.slice(1, -1).replace(/\\(.)/g, '$1');
  if ((t.startsWith('[') && t.endsWith(']')) || (t.startsWith('{') && t.endsWith('}'))) {
    const json = pythonToJson(t);
    if (json !== undefined) return json;
  }
  return text;
}

function pythonToJson(t: string): unknown {
  // Python literals: single-quoted strings, True/False/None outside strings.
  let out = '';
  for (let i = 0; i < t.length; i++) {
    const c = t[i]!;
    if (c === "'" || c === '"') {
      let j = i + 1;
      let s = '';
      while (j < t.length && t[j] !== c) {
        if (t[j] === '\\') j++;
        s += t[j] ?? '';
        j++;
      }
      if (j >= t.length) return undefined;
      out += JSON.stringify(s);
      i = j;
    } else if (t.startsWith('True', i)) {
      out += 'true';
      i += 3;
    } else if (t.startsWith('False', i)) {
      out += 'false';
      i += 4;
    } else if (t.startsWith('None', i)) {
      out += 'null';
      i += 3;
    } else out += c;
  }
  try {
    return JSON.parse(out.replace(/,\s*([\]}])/g, '$1'));
  } catch {
    return undefined;
  }
}
