import { ConfigError, errorMessage, type ConfigIssue } from '../lib/errors.js';
import { Secret } from '../lib/secret.js';
import { isVaultText, type VaultKeyring } from './vault.js';
/**
 * YAML loading with source positions.
 *
 * Config, inventory and playbook errors must name the file, the line and the
 * field. js-yaml 5.x (the package we use) has no `listener` option any more
 * (that was 3.x/4.x); instead it exposes its two stages separately:
 * `parseEvents()` produces a flat event stream whose nodes carry zero-based
 * source offsets, and `constructFromEvents()` turns that stream into JS values.
 * We run both stages on the same event array (so the source is parsed once),
 * and walk the events ourselves to build a position tree that maps every
 * mapping key / sequence index path to a 1-based line.
 *
 * Positions (verified against the js-yaml 5.5 source, see test/unit/yaml.test.ts):
 * - mapping / sequence events: `start` = offset of the first key / first `-`
 *   (or `{` / `[` for flow collections);
 * - scalar events: `valueStart` = first content char; for block scalars
 *   (`|`, `>`) it is the start of the line *after* the header, so we use the
 *   header line instead; an empty (null) scalar has no position (-1);
 * - alias events: `anchorStart` = the name after `*`;
 * - tag / anchor properties (`!!str`, `&a`) come first when present.
 * Whenever a node has no usable position, lineOf() falls back to the nearest
 * ancestor that has one — never a guessed line.
 *
 * Why js-yaml and not the `yaml` package (considered for issue 13): the positions
 * above are built and tested, js-yaml 5's defineScalarTag gives us `!vault` and
 * `!secret`, and YAML 1.1 booleans are accepted where Ansible takes a boolean
 * (config/ansible-bool.ts) rather than by switching every file to YAML 1.1, which
 * would also turn `0644` into 420 and `on` in any value into true. Switching parsers
 * would change every error line for no capability we lack.
 */
import { readFileSync, statSync } from 'node:fs';
import {
  CORE_SCHEMA,
  EVENT_ID,
  SCALAR_STYLE,
  YAMLException,
  NOT_RESOLVED,
  constructFromEvents,
  defineScalarTag,
  getScalarValue,
  mergeTag,
  parseEvents,
} from 'js-yaml';
import type { DocumentEvent, Event, ScalarEvent } from 'js-yaml';

export type YamlPath = (string | number)[];

export interface LoadedYaml {
  file: string;
  data: unknown;
  /**
   * 1-based line of the node at `path`. For a path that ends in a mapping key
   * this is the line where the key is written; for a sequence index, the line
   * where the item starts. If the path does not exist (e.g. a missing required
   * field) the line of the nearest existing ancestor is returned (the parent
   * mapping's key line, or the document's first content line for the root).
   */
  lineOf(path: YamlPath): number;
}

/** A YAML parse / construction error, positioned (1-based line and column). */
export class YamlSyntaxError extends Error {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** js-yaml's reason, e.g. "duplicated mapping key" (no code snippet). */
  readonly reason: string;

  constructor(file: string, line: number, column: number, reason: string) {
    super(`${file}:${line}:${column}: ${reason}`);
    this.name = 'YamlSyntaxError';
    this.file = file;
    this.line = line;
    this.column = column;
    this.reason = reason;
  }
}

/**
 * The schema: YAML 1.2 core (js-yaml's default: `yes`/`no`/`on`/`off` stay
 * strings, `0644` is decimal 644) plus merge keys (`<<: *base`), which Ansible
 * users expect, plus `!secret` (the value is a Secret).
 */
const SCHEMA = CORE_SCHEMA.withTags(mergeTag, secretTag(), defineScalarTag<VaultedText>('!vault', {
  resolve: (source) => (isVaultText(source) ? new VaultedText(source) : NOT_RESOLVED),
  identify: () => false,
}));

/** An inline `!vault |` value, still encrypted; loadYamlFile opens it into a Secret. */
export class VaultedText {
  constructor(readonly text: string) {}
}

/** `password: !secret "…"`: a Secret from the moment it is read, whatever the key's name. */
function secretTag() {
  return defineScalarTag<Secret>('!secret', { resolve: (source) => new Secret(source), identify: () => false });
}

/** Plain words that the core schema does not resolve to strings (see keyString's fast path). */
const CORE_NON_STRING_WORDS = new Set(['null', 'Null', 'NULL', 'true', 'True', 'TRUE', 'false', 'False', 'FALSE']);

// ---------------------------------------------------------------------------
// Line index
// ---------------------------------------------------------------------------

/** Offsets of line starts; breaks are \n, \r\n and a lone \r (as js-yaml counts them). */
function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) starts.push(i + 1);
    else if (c === 13) {
      if (text.charCodeAt(i + 1) === 10) i++;
      starts.push(i + 1);
    }
  }
  return starts;
}

/** 1-based line of a zero-based offset. */
function lineAt(starts: number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((starts[mid] ?? 0) <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}

// ---------------------------------------------------------------------------
// Position tree
// ---------------------------------------------------------------------------

interface MapEntry {
  keyLine: number;
  value: PosNode;
}

type PosNode =
  | { kind: 'scalar'; line: number; event: ScalarEvent | null }
  | { kind: 'seq'; line: number; items: PosNode[] }
  | { kind: 'map'; line: number; entries: Map<string, MapEntry>; merges: PosNode[] }
  | { kind: 'alias'; line: number; name: string; target: PosNode | undefined };

const NO_RANGE = -1;

class TreeBuilder {
  private index = 0;
  private readonly anchors = new Map<string, PosNode>();

  constructor(
    private readonly text: string,
    private readonly starts: number[],
    private readonly events: Event[],
    private readonly docEvent: DocumentEvent,
    startIndex: number,
  ) {
    this.index = startIndex;
  }

  /** Line of an event, or 0 when the event has no source position. */
  private lineOfEvent(ev: Event): number {
    let pos = Number.POSITIVE_INFINITY;
    const consider = (p: number): void => {
      if (p !== NO_RANGE && p >= 0 && p < pos) pos = p;
    };
    switch (ev.type) {
      case EVENT_ID.MAPPING:
      case EVENT_ID.SEQUENCE:
        consider(ev.start);
        consider(ev.anchorStart);
        consider(ev.tagStart);
        break;
      case EVENT_ID.SCALAR: {
        consider(ev.anchorStart);
        consider(ev.tagStart);
        if (ev.valueStart !== NO_RANGE) {
          const block = ev.style === SCALAR_STYLE.LITERAL_BLOCK || ev.style === SCALAR_STYLE.FOLDED_BLOCK;
          // A block scalar's content starts on the line after its `|`/`>`
          // header; the char before valueStart is the header's line break.
          consider(block && ev.valueStart > 0 ? ev.valueStart - 1 : ev.valueStart);
        }
        break;
      }
      case EVENT_ID.ALIAS:
        consider(ev.anchorStart);
        break;
      default:
        break;
    }
    return Number.isFinite(pos) ? lineAt(this.starts, pos) : 0;
  }

  private anchorOf(ev: Event): string | undefined {
    if ((ev.type === EVENT_ID.MAPPING || ev.type === EVENT_ID.SEQUENCE || ev.type === EVENT_ID.SCALAR) && ev.anchorStart !== NO_RANGE) {
      return this.text.slice(ev.anchorStart, ev.anchorEnd);
    }
    return undefined;
  }

  private next(): Event {
    const ev = this.events[this.index++];
    if (ev === undefined) throw new Error('internal: YAML event stream ended early');
    return ev;
  }

  /** Reads one node (and its children) starting at the current event. */
  node(): PosNode {
    const ev = this.next();
    const line = this.lineOfEvent(ev);
    switch (ev.type) {
      case EVENT_ID.SCALAR: {
        const n: PosNode = { kind: 'scalar', line, event: ev };
        const a = this.anchorOf(ev);
        if (a !== undefined) this.anchors.set(a, n);
        return n;
      }
      case EVENT_ID.ALIAS: {
        const name = this.text.slice(ev.anchorStart, ev.anchorEnd);
        return { kind: 'alias', line, name, target: this.anchors.get(name) };
      }
      case EVENT_ID.SEQUENCE: {
        const n: PosNode = { kind: 'seq', line, items: [] };
        const a = this.anchorOf(ev);
        if (a !== undefined) this.anchors.set(a, n);
        while (this.peekType() !== EVENT_ID.POP) n.items.push(this.node());
        this.index++;
        return n;
      }
      case EVENT_ID.MAPPING: {
        const n: PosNode = { kind: 'map', line, entries: new Map(), merges: [] };
        const a = this.anchorOf(ev);
        if (a !== undefined) this.anchors.set(a, n);
        while (this.peekType() !== EVENT_ID.POP) {
          const key = this.node();
          const value = this.node();
          if (this.isMergeKey(key)) {
            if (value.kind === 'seq') n.merges.push(...value.items);
            else n.merges.push(value);
            continue;
          }
          const name = this.keyString(key);
          // A later duplicate is a load error anyway; keep the first.
          if (name !== undefined && !n.entries.has(name)) {
            n.entries.set(name, { keyLine: key.line || value.line, value });
          }
        }
        this.index++;
        return n;
      }
      default:
        throw new Error(`internal: unexpected YAML event ${ev.type}`);
    }
  }

  private peekType(): number | undefined {
    return this.events[this.index]?.type;
  }

  private isMergeKey(key: PosNode): boolean {
    if (key.kind !== 'scalar' || key.event === null) return false;
    const ev = key.event;
    if (ev.tagStart !== NO_RANGE) {
      const tag = this.text.slice(ev.tagStart, ev.tagEnd);
      return tag === '!!merge' || tag === '!<tag:yaml.org,2002:merge>';
    }
    return ev.style === SCALAR_STYLE.PLAIN && this.text.slice(ev.valueStart, ev.valueEnd) === '<<';
  }

  /** The property name js-yaml's object-based map uses for this key, if it is a scalar. */
  private keyString(key: PosNode): string | undefined {
    let k: PosNode | undefined = key;
    for (let hops = 0; k?.kind === 'alias' && hops < 100; hops++) k = k.target;
    if (k?.kind !== 'scalar') return undefined; // complex keys are rejected by js-yaml's map
    if (k.event === null) return 'null';
    const ev = k.event;
    if (ev.tagStart === NO_RANGE) {
      const raw = getScalarValue(this.text, ev);
      // Quoted and block scalars are always strings.
      if (ev.style !== SCALAR_STYLE.PLAIN) return raw;
      // Fast path for the common case: in the core schema a plain scalar that
      // starts with a letter or '_' resolves to something other than a string
      // only if it is one of the null/bool words (numbers start with a digit,
      // a sign or '.', and '~' / '<<' with punctuation).
      if (/^[A-Za-z_]/.test(raw) && !CORE_NON_STRING_WORDS.has(raw)) return raw;
    }
    try {
      const docs = constructFromEvents([this.docEvent, k.event, { type: EVENT_ID.POP }], {
        source: this.text,
        schema: SCHEMA,
      });
      return String(docs[0]);
    } catch {
      return undefined;
    }
  }
}

function deref(node: PosNode | undefined): PosNode | undefined {
  let n = node;
  for (let hops = 0; n?.kind === 'alias' && hops < 100; hops++) n = n.target;
  return n;
}

/** Looks a key up in a mapping, then (like js-yaml's merge) in its `<<` sources in order. */
function findEntry(map: PosNode | undefined, key: string, seen: Set<PosNode>): MapEntry | undefined {
  const m = deref(map);
  if (m?.kind !== 'map' || seen.has(m)) return undefined;
  seen.add(m);
  const own = m.entries.get(key);
  if (own !== undefined) return own;
  for (const src of m.merges) {
    const found = findEntry(src, key, seen);
    if (found !== undefined) return found;
  }
  return undefined;
}

function resolveLine(root: PosNode | undefined, rootLine: number, path: YamlPath): number {
  let cur = root;
  let line = rootLine;
  for (const seg of path) {
    const n = deref(cur);
    if (n === undefined) return line;
    if (n.kind === 'map') {
      const entry = findEntry(n, String(seg), new Set());
      if (entry === undefined) return line;
      if (entry.keyLine > 0) line = entry.keyLine;
      cur = entry.value;
    } else if (n.kind === 'seq') {
      const idx = typeof seg === 'number' ? seg : /^(0|[1-9][0-9]*)$/.test(seg) ? Number(seg) : NaN;
      const item = Number.isInteger(idx) ? n.items[idx] : undefined;
      if (item === undefined) return line;
      if (item.line > 0) line = item.line;
      cur = item;
    } else {
      return line;
    }
  }
  return line;
}

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

function toSyntaxError(err: unknown, file: string): Error {
  if (err instanceof YAMLException) {
    const mark = err.mark;
    return new YamlSyntaxError(file, mark ? mark.line + 1 : 1, mark ? mark.column + 1 : 1, err.reason);
  }
  if (err instanceof Error) return new Error(`${file}: ${err.message}`, { cause: err });
  return new Error(`${file}: ${String(err)}`);
}

/**
 * How many nodes aliases may add to a document once expanded. js-yaml shares an aliased node
 * instead of copying it, but everything that walks the data (validation, templating, JSON) sees it
 * expanded: nine nested anchors of nine aliases each ("billion laughs") are 387 million nodes.
 * Real inventories and playbooks use a handful of aliases; this cap fails such a file at once.
 */
export const MAX_ALIAS_EXPANSION = 100_000;

/**
 * The expanded size of every alias, in one pass over the events (an anchor's size counts the
 * aliases inside it expanded); throws at the alias that takes the total over `cap`.
 */
function checkAliasExpansion(text: string, starts: number[], events: Event[], file: string, cap: number): void {
  const sizes = new Map<string, number>();
  const stack: { size: number; anchor: string | undefined }[] = [];
  let added = 0;
  const anchorOf = (ev: Event): string | undefined =>
    (ev.type === EVENT_ID.MAPPING || ev.type === EVENT_ID.SEQUENCE || ev.type === EVENT_ID.SCALAR) && ev.anchorStart !== NO_RANGE
      ? text.slice(ev.anchorStart, ev.anchorEnd)
      : undefined;
  for (const ev of events) {
    switch (ev.type) {
      case EVENT_ID.DOCUMENT:
        stack.push({ size: 0, anchor: undefined });
        break;
      case EVENT_ID.MAPPING:
      case EVENT_ID.SEQUENCE:
        stack.push({ size: 1, anchor: anchorOf(ev) });
        break;
      case EVENT_ID.SCALAR: {
        const a = anchorOf(ev);
        if (a !== undefined) sizes.set(a, 1);
        if (stack.length) stack[stack.length - 1]!.size += 1;
        break;
      }
      case EVENT_ID.ALIAS: {
        const n = sizes.get(text.slice(ev.anchorStart, ev.anchorEnd)) ?? 1;
        added += n;
        if (added > cap)
          throw new YamlSyntaxError(
            file,
            lineAt(starts, ev.anchorStart),
            1,
            `aliases expand to more than ${cap} nodes (an alias bomb?): pgtls refuses to expand them`,
          );
        if (stack.length) stack[stack.length - 1]!.size += n;
        break;
      }
      case EVENT_ID.POP: {
        const done = stack.pop();
        if (done?.anchor !== undefined) sizes.set(done.anchor, done.size);
        if (done && stack.length) stack[stack.length - 1]!.size += done.size;
        break;
      }
      default:
        break;
    }
  }
}

/** Parses a single YAML document; throws YamlSyntaxError on bad input. */
export function loadYaml(text: string, file: string): LoadedYaml {
  let events: Event[];
  let docs: unknown[];
  const starts = lineStarts(text);
  try {
    events = parseEvents(text, { filename: file });
  } catch (err) {
    throw toSyntaxError(err, file);
  }
  checkAliasExpansion(text, starts, events, file, MAX_ALIAS_EXPANSION);
  try {
    docs = constructFromEvents(events, { source: text, filename: file, schema: SCHEMA });
  } catch (err) {
    throw toSyntaxError(err, file);
  }

  const docIndexes: number[] = [];
  events.forEach((ev, i) => {
    if (ev.type === EVENT_ID.DOCUMENT) docIndexes.push(i);
  });

  if (docIndexes.length > 1) {
    throw new YamlSyntaxError(
      file,
      secondDocumentLine(text, starts, events, docIndexes[1] ?? 0),
      1,
      `expected a single YAML document, but found ${docIndexes.length} (separated by '---')`,
    );
  }

  const docIndex = docIndexes[0];
  const docEvent = docIndex === undefined ? undefined : events[docIndex];
  if (docIndex === undefined || docEvent?.type !== EVENT_ID.DOCUMENT) {
    // Empty input, or only comments / blank lines.
    return { file, data: null, lineOf: () => 1 };
  }

  let root: PosNode | undefined;
  try {
    root = new TreeBuilder(text, starts, events, docEvent, docIndex + 1).node();
  } catch {
    root = undefined; // positions are best effort; the data itself is valid
  }
  const rootLine = root !== undefined && root.line > 0 ? root.line : 1;
  const data = docs[0] === undefined ? null : docs[0];
  return { file, data, lineOf: (path) => resolveLine(root, rootLine, path) };
}

/** Line to blame for a second document: the `---` (or `...`) that starts it, else its first node. */
function secondDocumentLine(text: string, starts: number[], events: Event[], from: number): number {
  let nodeLine = Number.POSITIVE_INFINITY;
  for (let i = from + 1; i < events.length; i++) {
    const ev = events[i];
    if (ev === undefined || ev.type === EVENT_ID.DOCUMENT) break;
    let pos = NO_RANGE;
    if (ev.type === EVENT_ID.MAPPING || ev.type === EVENT_ID.SEQUENCE) pos = ev.start;
    else if (ev.type === EVENT_ID.SCALAR) pos = ev.valueStart;
    else if (ev.type === EVENT_ID.ALIAS) pos = ev.anchorStart;
    if (pos !== NO_RANGE) {
      nodeLine = lineAt(starts, pos);
      break;
    }
  }
  let marker = 0;
  text.split(/\r\n|\r|\n/).forEach((l, i) => {
    if (i + 1 <= nodeLine && /^(---|\.\.\.)(\s|$)/.test(l)) marker = i + 1;
  });
  if (marker > 0) return marker;
  return Number.isFinite(nodeLine) ? nodeLine : 1;
}

/** The largest YAML file pgtls reads (a 16 MB inventory is some 200,000 hosts). */
export const MAX_YAML_BYTES = 16 * 1024 * 1024;

export interface LoadYamlOptions {
  /** Passwords for vault-encrypted files and `!vault` values; without one a vault is bad input. */
  vault?: VaultKeyring;
}

/**
 * readFileSync + loadYaml; an unreadable, oversized or binary file is an error that names it.
 * A vault-encrypted file is decrypted in memory (never to disk) and every string in it is a
 * Secret; an inline `!vault` value becomes a Secret. Vaults need `opts.vault`.
 */
export function loadYamlFile(path: string, opts: LoadYamlOptions = {}): LoadedYaml {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > MAX_YAML_BYTES)
      throw new ConfigError([{ file: path, message: `is ${(size / 1024 / 1024).toFixed(1)} MB: pgtls reads YAML files up to ${MAX_YAML_BYTES / 1024 / 1024} MB` }]);
    const bytes = readFileSync(path);
    const nul = bytes.indexOf(0);
    if (nul >= 0) {
      const line = bytes.subarray(0, nul).toString('latin1').split('\n').length;
      throw new ConfigError([{ file: path, line, message: 'is a binary file (it contains a NUL byte), not YAML' }]);
    }
    text = bytes.toString('utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a directory' : e.code === 'EACCES' ? 'permission denied' : (e.message ?? String(err));
    throw new ConfigError([{ file: path, message: `cannot read YAML file: ${why}` }]);
  }
  let encrypted = false;
  if (isVaultText(text)) {
    encrypted = true;
    try {
      if (!opts.vault) throw new Error('is vault-encrypted, but no vault password was given (--vault-password-file, --vault-id or ANSIBLE_VAULT_PASSWORD_FILE)');
      text = opts.vault.decrypt(text);
    } catch (e) {
      throw new ConfigError([{ file: path, message: errorMessage(e) }]);
    }
  }
  try {
    const doc = loadYaml(text, path);
    const issues: ConfigIssue[] = [];
    const data = openVaults(doc, opts.vault, encrypted, issues);
    if (issues.length) throw new ConfigError(issues);
    return { ...doc, data };
  } catch (e) {
    // Bad YAML is bad input like any other: exit 2 with file and line, no host contacted.
    if (e instanceof YamlSyntaxError) throw new ConfigError([{ file: e.file, line: e.line, message: `YAML syntax error: ${e.reason}` }]);
    throw e;
  }
}

/**
 * Replaces `!vault` values by Secrets holding their plaintext; in an encrypted file every string
 * becomes a Secret (the file was encrypted because its content is secret).
 */
function openVaults(doc: LoadedYaml, vault: VaultKeyring | undefined, taintStrings: boolean, issues: ConfigIssue[]): unknown {
  const walk = (v: unknown, path: YamlPath): unknown => {
    if (v instanceof VaultedText) {
      try {
        if (!vault) throw new Error('is vault-encrypted, but no vault password was given (--vault-password-file, --vault-id or ANSIBLE_VAULT_PASSWORD_FILE)');
        return new Secret(vault.decrypt(v.text));
      } catch (e) {
        issues.push({ file: doc.file, line: doc.lineOf(path), field: path.length ? path.join('.') : undefined, message: errorMessage(e) });
        return null;
      }
    }
    if (typeof v === 'string') return taintStrings ? new Secret(v) : v;
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, i]));
    if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
      for (const [k, x] of Object.entries(v)) (v as Record<string, unknown>)[k] = walk(x, [...path, k]);
    }
    return v;
  };
  return walk(doc.data, []);
}
