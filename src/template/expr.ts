/**
 * The expression language of pgtls templates: a pure (no I/O) subset of Jinja2
 * as Ansible uses it. Tokenizer -> Pratt parser -> tree-walking evaluator.
 *
 * Grammar, loosest binding first (Jinja's precedence):
 *   x if c else y  <  or  <  and  <  not  <  comparisons (== != < <= > >= in, not in; chainable)
 *   <  + -  <  ~  <  * / // %  <  unary - +  <  | filter, is test  <  .attr [index] call()
 * Literals: 'str' "str" 12 1.5 true/True false/False none/None [a, b].
 *
 * Deliberate differences from Ansible/Jinja (all "fail loudly rather than guess"):
 *  - an undefined variable is an error as soon as its value is used; only `is defined`,
 *    `is undefined`, `| default(...)` and attribute access (which keeps it undefined) accept it;
 *  - lookup('env', 'X') with X unset behaves like an undefined variable whose message is
 *    "environment variable X is not set" (never ''), so `| default('')` or
 *    lookup('env', 'X', default='') opt back in;
 *  - default(x) also replaces none (null), so a YAML key left empty can be defaulted;
 *  - rendering none into a string is an error (Jinja would print "None");
 *  - `| int` on a value that is not a number is an error unless a default is given (`| int(0)`);
 *  - booleans are neither numbers nor equal to 0/1; `'5' > 3` is an error (Python 3 too);
 *  - `| to_json` and lists/dicts interpolated into a string use compact JSON;
 *  - `| quote` always single-quotes ('a b' -> 'a b', it's -> 'it'"'"'s).
 * Booleans interpolated into a string render as Python does: True / False.
 *
 * Secrets: any object with a reveal(): string method is treated as an opaque string.
 * A template that is a single expression returning a secret returns the secret object itself;
 * a template whose text was computed from a secret in any way (embedded in a bigger string,
 * through a filter, to_json of a list holding one) yields a Secret too: taint follows the value.
 * lookup('env', NAME) with a secret-looking NAME (isSecretName) yields a Secret.
 * Secret values never appear in error messages.
 */

import { Secret, isSecretName } from '../lib/secret.js';

export class TemplateError extends Error {
  constructor(
    message: string,
    readonly expression: string,
  ) {
    super(message);
    this.name = 'TemplateError';
  }
}

export interface TemplateContext {
  vars: Record<string, unknown>;
  /** For lookup('env', ...). */
  env: Record<string, string | undefined>;
}

export interface SecretLike {
  reveal(): string;
}

/**
 * How many times a secret's text has been read by the evaluator (it is synchronous, so a
 * before/after comparison tells whether a computation touched a secret).
 */
let reveals = 0;
function revealOf(s: SecretLike): string {
  reveals++;
  return s.reveal();
}

/** A string computed from a secret is a secret (the empty string is not: nothing to hide). */
function tainted(v: unknown, since: number): unknown {
  return reveals > since && typeof v === 'string' && v !== '' ? new Secret(v) : v;
}

/** Renders a template held in a Secret (a !secret or secret-named variable written as a template). */
export function renderSecretTemplate(s: SecretLike, render: (template: string) => unknown): unknown {
  const text = s.reveal();
  if (!hasTemplate(text)) return s;
  const r = render(text);
  return typeof r === 'string' && r !== '' ? new Secret(r) : r;
}

export function isSecretLike(v: unknown): v is SecretLike {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as { reveal?: unknown }).reveal === 'function';
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || isSecretLike(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

type TokenKind = 'name' | 'num' | 'str' | 'op' | 'eof';
interface Token {
  kind: TokenKind;
  /** Source text for names and operators. */
  value: string;
  num?: number;
  str?: string;
  pos: number;
  end: number;
}

const OPERATORS = ['//', '==', '!=', '<=', '>=', '<', '>', '(', ')', '[', ']', ',', '.', '|', '~', '+', '-', '*', '/', '%', '='];

function syntaxError(src: string, pos: number, msg: string): TemplateError {
  return new TemplateError(`syntax error in expression '${src}' at column ${pos + 1}: ${msg}`, src);
}

function tokenize(src: string): Token[] {
  const toks: Token[] = [];
  const num = /\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[A-Za-z0-9_]/.test(src[j]!)) j++;
      toks.push({ kind: 'name', value: src.slice(i, j), pos: i, end: j });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c)) {
      num.lastIndex = i;
      const m = num.exec(src)!;
      const j = i + m[0].length;
      if (j < src.length && /[A-Za-z_]/.test(src[j]!)) throw syntaxError(src, i, `invalid number '${/^\w+/.exec(src.slice(i))![0]}'`);
      toks.push({ kind: 'num', value: m[0], num: Number(m[0]), pos: i, end: j });
      i = j;
      continue;
    }
    if (c === "'" || c === '"') {
      let j = i + 1;
      let out = '';
      for (;;) {
        if (j >= src.length) throw syntaxError(src, i, 'unterminated string literal');
        const d = src[j]!;
        if (d === c) break;
        if (d === '\\' && j + 1 < src.length) {
          const e = src[j + 1]!;
          const esc: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', '0': '\0' };
          out += esc[e] ?? `\\${e}`; // Python keeps unknown escapes as written
          j += 2;
          continue;
        }
        out += d;
        j++;
      }
      toks.push({ kind: 'str', value: src.slice(i, j + 1), str: out, pos: i, end: j + 1 });
      i = j + 1;
      continue;
    }
    if (src.startsWith('{{', i) || src.startsWith('}}', i) || src.startsWith('{%', i))
      throw syntaxError(src, i, `unexpected '${src.slice(i, i + 2)}' (template delimiters cannot appear inside an expression; in 'when:' write the bare expression)`);
    if (src.startsWith('&&', i) || src.startsWith('||', i))
      throw syntaxError(src, i, `unexpected '${src.slice(i, i + 2)}' (use '${src[i] === '&' ? 'and' : 'or'}')`);
    const op = OPERATORS.find((o) => src.startsWith(o, i));
    if (op === undefined) throw syntaxError(src, i, c === '!' ? "unexpected '!' (use 'not')" : `unexpected character '${c}'`);
    toks.push({ kind: 'op', value: op, pos: i, end: i + op.length });
    i += op.length;
  }
  toks.push({ kind: 'eof', value: '', pos: src.length, end: src.length });
  return toks;
}

// ---------------------------------------------------------------------------------------------
// AST + parser

type BinOp = '+' | '-' | '*' | '/' | '//' | '%' | '~';
type CmpOp = '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not in';

interface Span {
  start: number;
  end: number;
  /** Came from parentheses: never extended into a comparison chain. */
  paren?: boolean;
}
export type Node =
  | (Span & { k: 'lit'; v: unknown })
  | (Span & { k: 'name'; name: string })
  | (Span & { k: 'list'; items: Node[] })
  | (Span & { k: 'attr'; obj: Node; key: string | number })
  | (Span & { k: 'index'; obj: Node; index: Node })
  | (Span & { k: 'call'; fn: 'lookup'; args: Node[]; kwargs: Map<string, Node> })
  | (Span & { k: 'filter'; name: string; target: Node; args: (Node | undefined)[] })
  | (Span & { k: 'test'; name: string; target: Node; negated: boolean })
  | (Span & { k: 'unary'; op: 'not' | '-' | '+'; operand: Node })
  | (Span & { k: 'bin'; op: BinOp; l: Node; r: Node })
  | (Span & { k: 'logic'; op: 'and' | 'or'; l: Node; r: Node })
  | (Span & { k: 'cmp'; first: Node; rest: { op: CmpOp; right: Node }[] })
  | (Span & { k: 'cond'; then: Node; test: Node; else?: Node });

export interface ParsedExpression {
  /** The expression text (trimmed); node spans index into it. */
  src: string;
  node: Node;
}

/** Filter name -> parameter names (after the filtered value) and how many are required. */
const FILTERS: Record<string, { params: string[]; required: number }> = {
  default: { params: ['default_value', 'boolean'], required: 0 },
  d: { params: ['default_value', 'boolean'], required: 0 },
  lower: { params: [], required: 0 },
  upper: { params: [], required: 0 },
  int: { params: ['default'], required: 0 },
  string: { params: [], required: 0 },
  bool: { params: [], required: 0 },
  length: { params: [], required: 0 },
  join: { params: ['d'], required: 0 },
  trim: { params: [], required: 0 },
  to_json: { params: [], required: 0 },
  replace: { params: ['old', 'new', 'count'], required: 2 },
  quote: { params: [], required: 0 },
};

const TESTS = new Set(['defined', 'undefined', 'none', 'string', 'number', 'boolean', 'mapping', 'sequence']);
const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'is', 'if', 'else']);
const CMP_OPS = new Set(['==', '!=', '<', '<=', '>', '>=']);

function describe(t: Token): string {
  if (t.kind === 'eof') return 'end of expression';
  if (t.kind === 'str') return `string ${t.value}`;
  return `'${t.value}'`;
}

class Parser {
  private i = 0;
  private prevEnd = 0;
  constructor(
    private readonly src: string,
    private readonly toks: Token[],
  ) {}

  parseAll(): Node {
    if (this.peek().kind === 'eof') throw syntaxError(this.src, 0, 'empty expression');
    const node = this.expr(0);
    const t = this.peek();
    if (t.kind !== 'eof') throw this.unexpected(t);
    return node;
  }

  private peek(offset = 0): Token {
    return this.toks[Math.min(this.i + offset, this.toks.length - 1)]!;
  }
  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.i++;
    this.prevEnd = t.end;
    return t;
  }
  private isOp(t: Token, v: string): boolean {
    return t.kind === 'op' && t.value === v;
  }
  private isKw(t: Token, v: string): boolean {
    return t.kind === 'name' && t.value === v;
  }
  private err(pos: number, msg: string): TemplateError {
    return syntaxError(this.src, pos, msg);
  }
  private unexpected(t: Token): TemplateError {
    if (this.isOp(t, '=')) return this.err(t.pos, "unexpected '=' (use '==' to compare)");
    return this.err(t.pos, `unexpected ${describe(t)}`);
  }
  private expect(v: string, what: string): Token {
    const t = this.next();
    if (!this.isOp(t, v)) throw this.err(t.pos, `expected '${v}' ${what} but found ${describe(t)}`);
    return t;
  }

  private lbp(t: Token): number {
    if (t.kind === 'name') {
      switch (t.value) {
        case 'if':
          return 10;
        case 'or':
          return 20;
        case 'and':
          return 30;
        case 'in':
          return 50;
        case 'not':
          return this.isKw(this.peek(1), 'in') ? 50 : 0;
        case 'is':
          return 100;
        default:
          return 0;
      }
    }
    if (t.kind !== 'op') return 0;
    if (CMP_OPS.has(t.value)) return 50;
    switch (t.value) {
      case '+':
      case '-':
        return 60;
      case '~':
        return 70;
      case '*':
      case '/':
      case '//':
      case '%':
        return 80;
      case '|':
        return 100;
      case '.':
      case '[':
      case '(':
        return 110;
      default:
        return 0;
    }
  }

  private expr(rbp: number): Node {
    let left = this.nud(this.next());
    while (rbp < this.lbp(this.peek())) left = this.led(this.next(), left);
    return left;
  }

  private nud(t: Token): Node {
    const start = t.pos;
    switch (t.kind) {
      case 'num':
        return { k: 'lit', v: t.num, start, end: t.end };
      case 'str':
        return { k: 'lit', v: t.str, start, end: t.end };
      case 'eof':
        throw this.err(t.pos, 'unexpected end of expression');
      case 'name':
        switch (t.value) {
          case 'true':
          case 'True':
            return { k: 'lit', v: true, start, end: t.end };
          case 'false':
          case 'False':
            return { k: 'lit', v: false, start, end: t.end };
          case 'none':
          case 'None':
            return { k: 'lit', v: null, start, end: t.end };
          case 'not': {
            const operand = this.expr(40);
            return { k: 'unary', op: 'not', operand, start, end: operand.end };
          }
          default:
            if (KEYWORDS.has(t.value)) throw this.err(t.pos, `unexpected keyword '${t.value}'`);
            return { k: 'name', name: t.value, start, end: t.end };
        }
      case 'op':
        switch (t.value) {
          case '(': {
            const inner = this.expr(0);
            this.expect(')', 'to close the parenthesis');
            return { ...inner, start, end: this.prevEnd, paren: true };
          }
          case '[': {
            const items: Node[] = [];
            while (!this.isOp(this.peek(), ']')) {
              items.push(this.expr(0));
              if (this.isOp(this.peek(), ',')) this.next();
              else if (!this.isOp(this.peek(), ']')) throw this.err(this.peek().pos, `expected ',' or ']' in list but found ${describe(this.peek())}`);
            }
            this.next();
            return { k: 'list', items, start, end: this.prevEnd };
          }
          case '-':
          case '+': {
            const operand = this.expr(100); // binds attribute access, not filters: -x|abs is (-x)|abs
            if (t.value === '-' && operand.k === 'lit' && typeof operand.v === 'number' && !operand.paren)
              return { k: 'lit', v: -operand.v, start, end: operand.end };
            return { k: 'unary', op: t.value, operand, start, end: operand.end };
          }
          default:
            throw this.unexpected(t);
        }
    }
  }

  private led(t: Token, left: Node): Node {
    if (t.kind === 'name') {
      switch (t.value) {
        case 'if': {
          const test = this.expr(10);
          let els: Node | undefined;
          if (this.isKw(this.peek(), 'else')) {
            this.next();
            els = this.expr(9);
          }
          const node: Node = { k: 'cond', then: left, test, start: left.start, end: this.prevEnd };
          if (els) node.else = els;
          return node;
        }
        case 'or':
        case 'and': {
          const r = this.expr(t.value === 'or' ? 20 : 30);
          return { k: 'logic', op: t.value, l: left, r, start: left.start, end: r.end };
        }
        case 'in':
          return this.comparison('in', left);
        case 'not':
          this.next(); // 'in' (lbp guarantees it)
          return this.comparison('not in', left);
        case 'is': {
          let negated = false;
          if (this.isKw(this.peek(), 'not')) {
            this.next();
            negated = true;
          }
          const nt = this.next();
          if (nt.kind !== 'name') throw this.err(nt.pos, `expected a test name after 'is' but found ${describe(nt)}`);
          if (!TESTS.has(nt.value)) throw this.err(nt.pos, `unknown test '${nt.value}' (available: ${[...TESTS].join(', ')})`);
          if (this.isOp(this.peek(), '(')) throw this.err(this.peek().pos, `test '${nt.value}' takes no arguments`);
          return { k: 'test', name: nt.value, target: left, negated, start: left.start, end: nt.end };
        }
      }
    }
    if (t.kind === 'op') {
      if (CMP_OPS.has(t.value)) return this.comparison(t.value as CmpOp, left);
      switch (t.value) {
        case '+':
        case '-':
        case '~':
        case '*':
        case '/':
        case '//':
        case '%': {
          const r = this.expr(this.lbp(t));
          return { k: 'bin', op: t.value, l: left, r, start: left.start, end: r.end };
        }
        case '|':
          return this.filter(left);
        case '.': {
          const at = this.next();
          let key: string | number;
          if (at.kind === 'name') key = at.value;
          else if (at.kind === 'num' && Number.isInteger(at.num) && /^\d+$/.test(at.value)) key = at.num!;
          else throw this.err(at.pos, `expected an attribute name after '.' but found ${describe(at)}`);
          return { k: 'attr', obj: left, key, start: left.start, end: at.end };
        }
        case '[': {
          if (this.isOp(this.peek(), ']')) throw this.err(this.peek().pos, 'empty index');
          const index = this.expr(0);
          this.expect(']', 'to close the index');
          return { k: 'index', obj: left, index, start: left.start, end: this.prevEnd };
        }
        case '(':
          return this.call(left, t);
      }
    }
    throw this.unexpected(t);
  }

  private comparison(op: CmpOp, left: Node): Node {
    const right = this.expr(50);
    if (left.k === 'cmp' && !left.paren) {
      left.rest.push({ op, right });
      left.end = right.end;
      return left;
    }
    return { k: 'cmp', first: left, rest: [{ op, right }], start: left.start, end: right.end };
  }

  /** After '(' has been consumed. */
  private args(): { positional: Node[]; kwargs: Map<string, Node> } {
    const positional: Node[] = [];
    const kwargs = new Map<string, Node>();
    for (;;) {
      if (this.isOp(this.peek(), ')')) {
        this.next();
        break;
      }
      const t = this.peek();
      if (t.kind === 'name' && this.isOp(this.peek(1), '=')) {
        this.next();
        this.next();
        if (kwargs.has(t.value)) throw this.err(t.pos, `argument '${t.value}' given twice`);
        kwargs.set(t.value, this.expr(0));
      } else {
        if (kwargs.size > 0) throw this.err(t.pos, 'positional argument after a keyword argument');
        positional.push(this.expr(0));
      }
      const sep = this.next();
      if (this.isOp(sep, ')')) break;
      if (!this.isOp(sep, ',')) throw this.err(sep.pos, `expected ',' or ')' in argument list but found ${describe(sep)}`);
    }
    return { positional, kwargs };
  }

  private filter(target: Node): Node {
    const nt = this.next();
    if (nt.kind !== 'name') throw this.err(nt.pos, `expected a filter name after '|' but found ${describe(nt)}`);
    const spec = FILTERS[nt.value];
    if (!spec) throw this.err(nt.pos, `unknown filter '${nt.value}' (available: ${Object.keys(FILTERS).join(', ')})`);
    let positional: Node[] = [];
    let kwargs = new Map<string, Node>();
    if (this.isOp(this.peek(), '(')) {
      this.next();
      ({ positional, kwargs } = this.args());
    }
    if (positional.length > spec.params.length)
      throw this.err(nt.pos, `filter '${nt.value}' takes at most ${spec.params.length} argument${spec.params.length === 1 ? '' : 's'}, got ${positional.length}`);
    const args: (Node | undefined)[] = spec.params.map((_, idx) => positional[idx]);
    for (const [name, node] of kwargs) {
      const idx = spec.params.indexOf(name);
      if (idx < 0) throw this.err(nt.pos, `filter '${nt.value}' has no argument '${name}'`);
      if (args[idx]) throw this.err(nt.pos, `filter '${nt.value}' got argument '${name}' twice`);
      args[idx] = node;
    }
    for (let idx = 0; idx < spec.required; idx++)
      if (!args[idx]) throw this.err(nt.pos, `filter '${nt.value}' requires ${spec.required} arguments (${spec.params.slice(0, spec.required).join(', ')})`);
    return { k: 'filter', name: nt.value, target, args, start: target.start, end: this.prevEnd };
  }

  private call(callee: Node, open: Token): Node {
    if (callee.k !== 'name' || callee.paren) throw this.err(open.pos, "only lookup('env', ...) can be called");
    if (callee.name !== 'lookup') throw this.err(callee.start, `unknown function '${callee.name}' (only lookup('env', ...) is supported)`);
    const { positional, kwargs } = this.args();
    for (const k of kwargs.keys()) if (k !== 'default') throw this.err(callee.start, `lookup() has no argument '${k}' (only default=...)`);
    const plugin = positional[0];
    if (!plugin) throw this.err(callee.start, "lookup() needs a plugin name, e.g. lookup('env', 'HOME')");
    if (plugin.k === 'lit' && plugin.v !== 'env')
      throw this.err(plugin.start, `unsupported lookup plugin ${JSON.stringify(plugin.v)} (only 'env' is supported)`);
    if (positional.length !== 2) throw this.err(callee.start, "lookup('env', ...) takes exactly one variable name");
    return { k: 'call', fn: 'lookup', args: positional, kwargs, start: callee.start, end: this.prevEnd };
  }
}

const exprCache = new Map<string, ParsedExpression>();
const CACHE_LIMIT = 5000;

/** Parses a bare expression (no braces). Throws TemplateError with the column of a syntax error. */
export function parseExpression(text: string): ParsedExpression {
  const src = text.trim();
  const hit = exprCache.get(src);
  if (hit) return hit;
  const parsed: ParsedExpression = { src, node: new Parser(src, tokenize(src)).parseAll() };
  if (exprCache.size >= CACHE_LIMIT) exprCache.clear();
  exprCache.set(src, parsed);
  return parsed;
}

// ---------------------------------------------------------------------------------------------
// Templates: literal text with {{ expr }} segments

export type Segment = { kind: 'text'; text: string } | { kind: 'expr'; parsed: ParsedExpression };

export function hasTemplate(s: string): boolean {
  return s.includes('{{') || s.includes('{%');
}

const templateCache = new Map<string, Segment[]>();

/** Splits a template into text and parsed expressions. Supports Jinja's {{- and -}} whitespace control. */
export function parseTemplate(template: string): Segment[] {
  const hit = templateCache.get(template);
  if (hit) return hit;
  type Raw = { kind: 'text'; text: string } | { kind: 'expr'; parsed: ParsedExpression; lstrip: boolean; rstrip: boolean };
  const raw: Raw[] = [];
  const delim = /\{[{%]/g;
  let pos = 0;
  for (;;) {
    delim.lastIndex = pos;
    const m = delim.exec(template);
    if (!m) {
      raw.push({ kind: 'text', text: template.slice(pos) });
      break;
    }
    const open = m.index;
    raw.push({ kind: 'text', text: template.slice(pos, open) });
    if (m[0] === '{%')
      throw new TemplateError(`template statements ('{% ... %}') are not supported (position ${open + 1}); only '{{ expression }}' is`, template);
    let innerStart = open + 2;
    const lstrip = template[innerStart] === '-';
    if (lstrip) innerStart++;
    const close = findClose(template, innerStart);
    if (close === -2) throw new TemplateError(`unterminated string literal in the expression at position ${open + 1}`, template);
    if (close < 0) throw new TemplateError(`unclosed '{{' at position ${open + 1} (missing '}}')`, template);
    let innerEnd = close;
    const rstrip = innerEnd > innerStart && template[innerEnd - 1] === '-';
    if (rstrip) innerEnd--;
    const inner = template.slice(innerStart, innerEnd);
    if (inner.trim() === '') throw new TemplateError(`empty expression '{{ }}' at position ${open + 1}`, template);
    raw.push({ kind: 'expr', parsed: parseExpression(inner), lstrip, rstrip });
    pos = close + 2;
  }
  for (let i = 0; i < raw.length; i++) {
    const r = raw[i]!;
    if (r.kind !== 'expr') continue;
    const before = raw[i - 1];
    const after = raw[i + 1];
    if (r.lstrip && before?.kind === 'text') before.text = before.text.replace(/\s+$/, '');
    if (r.rstrip && after?.kind === 'text') after.text = after.text.replace(/^\s+/, '');
  }
  const segs: Segment[] = raw.flatMap((r): Segment[] =>
    r.kind === 'text' ? (r.text ? [r] : []) : [{ kind: 'expr', parsed: r.parsed }],
  );
  if (templateCache.size >= CACHE_LIMIT) templateCache.clear();
  templateCache.set(template, segs);
  return segs;
}

/** Index of the '}}' closing an expression that starts at `from`, skipping string literals; -1 if none, -2 if a string is unterminated. */
function findClose(t: string, from: number): number {
  let i = from;
  while (i < t.length) {
    const c = t[i]!;
    if (c === "'" || c === '"') {
      i++;
      while (i < t.length && t[i] !== c) i += t[i] === '\\' ? 2 : 1;
      if (i >= t.length) return -2;
      i++;
      continue;
    }
    if (c === '}' && t[i + 1] === '}') return i;
    i++;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/**
 * An undefined value: harmless until used, then an error with this message. A variable whose
 * template uses something undefined is itself undefined (so `is defined` / default() apply).
 */
class Undef {
  constructor(
    readonly base: string,
    readonly via?: string,
    /** The message already says which variable's template it comes from. */
    readonly located = false,
  ) {}
  get message(): string {
    return this.via ? `${this.base} (accessing '${this.via}')` : this.base;
  }
}

/** Errors that already say which variable's template they come from. */
const located = new WeakSet<Error>();
/** Errors raised by using an undefined value. */
const undefinedErrors = new WeakSet<Error>();

function typeName(v: unknown): string {
  if (v === null || v === undefined) return 'none';
  if (typeof v === 'string' || isSecretLike(v)) return 'str';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (Array.isArray(v)) return 'list';
  if (isPlainObject(v)) return 'dict';
  return typeof v === 'object' ? (v.constructor?.name ?? 'object') : typeof v;
}

/** 'an int', 'a list', 'none'. */
function aType(v: unknown): string {
  const t = typeName(v);
  return t === 'none' ? t : /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}

function isNum(v: unknown): v is number {
  return typeof v === 'number';
}
function isStr(v: unknown): v is string | SecretLike {
  return typeof v === 'string' || isSecretLike(v);
}
function strOf(v: string | SecretLike): string {
  return typeof v === 'string' ? v : revealOf(v);
}

/** Deep copy with secrets revealed (Secret.toJSON masks itself), for to_json and interpolation. */
function plain(v: unknown): unknown {
  if (isSecretLike(v)) return revealOf(v);
  if (Array.isArray(v)) return v.map(plain);
  if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

function formatKey(key: string | number): string {
  return typeof key === 'number' ? `[${key}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

export class Evaluator {
  /** Templates being rendered right now, per container and key, with a display path (cycle detection). */
  private readonly inProgress = new Map<object, Map<string | number, string>>();
  private readonly cache = new Map<object, Map<string | number, unknown>>();
  /** Containers built during evaluation: already rendered, never rendered again. */
  private readonly done = new WeakSet<object>();
  /** Text of the expression being evaluated (for TemplateError.expression). */
  private src = '';
  /** Secrets read before this evaluator started: any read after it makes values secret-derived. */
  private readonly revealsAtStart = reveals;

  constructor(readonly ctx: TemplateContext) {}

  /** Renders a template string: native value for a lone {{ expr }}, otherwise a string. */
  renderTemplate(template: string): unknown {
    if (!hasTemplate(template)) return template;
    const since = reveals;
    return tainted(this.renderUntainted(template), since);
  }

  private renderUntainted(template: string): unknown {
    const segs = parseTemplate(template);
    const exprs = segs.filter((s) => s.kind === 'expr');
    if (exprs.length === 1 && segs.every((s) => s.kind === 'expr' || /^\s*$/.test(s.text))) {
      const parsed = exprs[0]!.parsed;
      return this.withSrc(parsed.src, () => this.materialize(this.need(this.eval(parsed.node)), parsed.src));
    }
    let out = '';
    for (const s of segs) {
      if (s.kind === 'text') out += s.text;
      else out += this.withSrc(s.parsed.src, () => this.toStr(this.eval(s.parsed.node), s.parsed.src));
    }
    return out;
  }

  /** Value of a bare expression (Undefined is an error). */
  evaluate(parsed: ParsedExpression): unknown {
    return this.withSrc(parsed.src, () => this.need(this.eval(parsed.node)));
  }

  truthy(v: unknown): boolean {
    v = this.need(v);
    if (v === null || v === undefined) return false;
    if (typeof v === 'boolean') return v;
    if (typeof v === 'number') return v !== 0;
    if (typeof v === 'string') return v.length > 0;
    if (isSecretLike(v)) return revealOf(v).length > 0;
    if (Array.isArray(v)) return v.length > 0;
    if (isPlainObject(v)) return Object.keys(v).length > 0;
    return true;
  }

  /** Recursively renders the template strings inside a container taken from the variables. */
  materialize(v: unknown, path: string): unknown {
    if (Array.isArray(v)) {
      if (this.done.has(v)) return v;
      const out = v.map((_, i) => this.materialize(this.resolveMember(v, i, `${path}[${i}]`), `${path}[${i}]`));
      this.done.add(out);
      return out;
    }
    if (isPlainObject(v)) {
      if (this.done.has(v)) return v;
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v)) out[k] = this.materialize(this.resolveMember(v, k, path + formatKey(k)), path + formatKey(k));
      this.done.add(out);
      return out;
    }
    return v;
  }

  private withSrc<T>(src: string, f: () => T): T {
    const prev = this.src;
    this.src = src;
    try {
      return f();
    } finally {
      this.src = prev;
    }
  }

  private fail(message: string): TemplateError {
    return new TemplateError(message, this.src);
  }

  private need(v: unknown): unknown {
    if (v instanceof Undef) {
      const e = this.fail(v.message);
      undefinedErrors.add(e);
      if (v.located) located.add(e);
      throw e;
    }
    return v;
  }

  /** container[key], rendering it first if it is a template string (lazily, once, with cycle detection). */
  private resolveMember(container: object, key: string | number, path: string): unknown {
    const raw = (container as Record<string | number, unknown>)[key];
    const secretTemplate = isSecretLike(raw) && hasTemplate(raw.reveal());
    if (!secretTemplate && (typeof raw !== 'string' || !hasTemplate(raw))) return raw;
    const cached = this.cache.get(container);
    if (cached?.has(key)) return cached.get(key);
    let active = this.inProgress.get(container);
    const started = active?.get(key);
    if (started !== undefined) {
      const e = new TemplateError(`recursive loop detected in template for '${started}'`, typeof raw === 'string' ? raw : Secret.MASK);
      located.add(e);
      throw e;
    }
    if (!active) this.inProgress.set(container, (active = new Map()));
    active.set(key, path);
    let value: unknown;
    try {
      value = this.withSrc(this.src, () =>
        isSecretLike(raw) ? renderSecretTemplate(raw, (t) => this.renderTemplate(t)) : this.renderTemplate(raw as string),
      );
    } catch (e) {
      if (!(e instanceof TemplateError)) throw e;
      if (!located.has(e)) {
        e.message += ` (while rendering '${path}')`;
        located.add(e);
      }
      if (!undefinedErrors.has(e)) throw e;
      value = new Undef(e.message, undefined, true);
    } finally {
      active.delete(key);
    }
    let c = this.cache.get(container);
    if (!c) this.cache.set(container, (c = new Map()));
    c.set(key, value);
    return value;
  }

  private text(n: Node): string {
    return this.src.slice(n.start, n.end);
  }

  private lookupVar(name: string): unknown {
    const vars = this.ctx.vars;
    if (!Object.hasOwn(vars, name) || vars[name] === undefined) return new Undef(`undefined variable '${name}'`);
    return this.resolveMember(vars, name, name);
  }

  private member(obj: unknown, key: string | number, objPath: string, fullPath: string): unknown {
    if (obj instanceof Undef) return new Undef(obj.base, fullPath, obj.located);
    const missing = (why: string) => new Undef(`undefined variable '${fullPath}' (${why})`);
    if (obj === null || obj === undefined) return missing(`'${objPath}' is none`);
    if (Array.isArray(obj)) {
      if (typeof key !== 'number') return missing(`'${objPath}' is a list, not a mapping`);
      const idx = key < 0 ? obj.length + key : key;
      if (idx < 0 || idx >= obj.length) return missing(`index ${key} is out of range: '${objPath}' has ${obj.length} item${obj.length === 1 ? '' : 's'}`);
      return this.resolveMember(obj, idx, fullPath);
    }
    if (isPlainObject(obj)) {
      const k = String(key);
      if (!Object.hasOwn(obj, k) || obj[k] === undefined) return missing(`'${objPath}' has no key '${k}'`);
      return this.resolveMember(obj, k, fullPath);
    }
    if (typeof obj === 'string' && typeof key === 'number') {
      const idx = key < 0 ? obj.length + key : key;
      if (idx < 0 || idx >= obj.length) return missing(`index ${key} is out of range for the string '${objPath}'`);
      return obj[idx];
    }
    return missing(`'${objPath}' is ${aType(obj)}, not a mapping`);
  }

  private eval(n: Node): unknown {
    switch (n.k) {
      case 'lit':
        return n.v;
      case 'name':
        return this.lookupVar(n.name);
      case 'list': {
        const out = n.items.map((item) => this.materialize(this.need(this.eval(item)), this.text(item)));
        this.done.add(out);
        return out;
      }
      case 'attr':
        return this.member(this.eval(n.obj), n.key, this.text(n.obj), this.text(n));
      case 'index': {
        const obj = this.eval(n.obj);
        if (obj instanceof Undef) return new Undef(obj.base, this.text(n), obj.located);
        let key = this.need(this.eval(n.index));
        if (isSecretLike(key)) key = revealOf(key);
        if (typeof key === 'number' && !Number.isInteger(key)) throw this.fail(`index '${this.text(n.index)}' must be an integer, got ${key}`);
        if (typeof key !== 'number' && typeof key !== 'string') throw this.fail(`index '${this.text(n.index)}' must be a string or integer, got ${typeName(key)}`);
        return this.member(obj, key, this.text(n.obj), this.text(n));
      }
      case 'call':
        return this.lookup(n);
      case 'filter':
        return this.filter(n);
      case 'test': {
        const r = this.test(n.name, this.eval(n.target));
        return n.negated ? !r : r;
      }
      case 'unary': {
        if (n.op === 'not') return !this.truthy(this.eval(n.operand));
        const v = this.need(this.eval(n.operand));
        if (!isNum(v)) throw this.fail(`bad operand type for unary ${n.op}: '${typeName(v)}' ('${this.text(n.operand)}')`);
        return n.op === '-' ? -v : v;
      }
      case 'logic': {
        const l = this.eval(n.l);
        const lt = this.truthy(l);
        if (n.op === 'and') return lt ? this.need(this.eval(n.r)) : l;
        return lt ? l : this.need(this.eval(n.r));
      }
      case 'bin':
        return this.binary(n.op, this.need(this.eval(n.l)), this.need(this.eval(n.r)), n);
      case 'cmp': {
        let left = this.need(this.eval(n.first));
        for (const { op, right: rn } of n.rest) {
          const right = this.need(this.eval(rn));
          if (!this.compare(op, left, right)) return false;
          left = right;
        }
        return true;
      }
      case 'cond':
        if (this.truthy(this.eval(n.test))) return this.eval(n.then);
        return n.else ? this.eval(n.else) : new Undef(`'${this.text(n)}' has no else branch and its condition is false`);
    }
  }

  private lookup(n: Extract<Node, { k: 'call' }>): unknown {
    const plugin = this.need(this.eval(n.args[0]!));
    if (plugin !== 'env') throw this.fail(`unsupported lookup plugin ${typeof plugin === 'string' ? `'${plugin}'` : typeName(plugin)} (only 'env' is supported)`);
    const name = this.need(this.eval(n.args[1]!));
    if (typeof name !== 'string') throw this.fail(`lookup('env', ...) needs a variable name string, got ${typeName(name)}`);
    const value = this.ctx.env[name];
    if (value !== undefined) return isSecretName(name) && value !== '' ? new Secret(value) : value;
    const dflt = n.kwargs.get('default');
    if (dflt) return this.eval(dflt);
    return new Undef(`environment variable ${name} is not set`);
  }

  private test(name: string, v: unknown): boolean {
    if (name === 'defined') return !(v instanceof Undef);
    if (name === 'undefined') return v instanceof Undef;
    v = this.need(v);
    switch (name) {
      case 'none':
        return v === null || v === undefined;
      case 'string':
        return isStr(v);
      case 'number':
        return isNum(v);
      case 'boolean':
        return typeof v === 'boolean';
      case 'mapping':
        return isPlainObject(v);
      case 'sequence':
        return isStr(v) || Array.isArray(v) || isPlainObject(v);
    }
    throw this.fail(`unknown test '${name}'`);
  }

  /** Python str(), except that none is an error (a missing value, not text). */
  private toStr(v: unknown, label: string): string {
    v = this.need(v);
    if (typeof v === 'string') return v;
    if (isSecretLike(v)) return revealOf(v);
    if (v === null || v === undefined) throw this.fail(`'${label}' is none (null) and cannot be rendered as text; use | default(...)`);
    if (typeof v === 'boolean') return v ? 'True' : 'False';
    if (typeof v === 'number') return String(v);
    if (Array.isArray(v) || isPlainObject(v)) return JSON.stringify(plain(this.materialize(v, label)));
    if (v instanceof Date) return v.toISOString();
    return String(v);
  }

  private binary(op: BinOp, l: unknown, r: unknown, n: Node): unknown {
    if (op === '~') return this.toStr(l, this.text((n as { l: Node }).l)) + this.toStr(r, this.text((n as { r: Node }).r));
    const bad = (hint = '') => this.fail(`unsupported operand types for ${op}: '${typeName(l)}' and '${typeName(r)}' in '${this.text(n)}'${hint}`);
    if (op === '+') {
      if (isNum(l) && isNum(r)) return l + r;
      if (isStr(l) && isStr(r)) return strOf(l) + strOf(r);
      if (Array.isArray(l) && Array.isArray(r)) {
        const out = [...(this.materialize(l, '') as unknown[]), ...(this.materialize(r, '') as unknown[])];
        this.done.add(out);
        return out;
      }
      throw bad(isStr(l) || isStr(r) ? " (use '~' to join as text)" : '');
    }
    if (!isNum(l) || !isNum(r)) throw bad();
    switch (op) {
      case '-':
        return l - r;
      case '*':
        return l * r;
      case '/':
        if (r === 0) throw this.fail(`division by zero in '${this.text(n)}'`);
        return l / r;
      case '//':
        if (r === 0) throw this.fail(`division by zero in '${this.text(n)}'`);
        return Math.floor(l / r);
      case '%':
        if (r === 0) throw this.fail(`division by zero in '${this.text(n)}'`);
        return ((l % r) + r) % r;
    }
  }

  private equals(a: unknown, b: unknown): boolean {
    if (isSecretLike(a)) a = revealOf(a);
    if (isSecretLike(b)) b = revealOf(b);
    if (a === undefined) a = null;
    if (b === undefined) b = null;
    if (Array.isArray(a) || Array.isArray(b)) {
      if (!Array.isArray(a) || !Array.isArray(b)) return false;
      const x = this.materialize(a, '') as unknown[];
      const y = this.materialize(b, '') as unknown[];
      return x.length === y.length && x.every((v, i) => this.equals(v, y[i]));
    }
    if (isPlainObject(a) || isPlainObject(b)) {
      if (!isPlainObject(a) || !isPlainObject(b)) return false;
      const x = this.materialize(a, '') as Record<string, unknown>;
      const y = this.materialize(b, '') as Record<string, unknown>;
      const kx = Object.keys(x);
      return kx.length === Object.keys(y).length && kx.every((k) => Object.hasOwn(y, k) && this.equals(x[k], y[k]));
    }
    if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
    return a === b;
  }

  private compare(op: CmpOp, a: unknown, b: unknown): boolean {
    switch (op) {
      case '==':
        return this.equals(a, b);
      case '!=':
        return !this.equals(a, b);
      case 'in':
        return this.contains(b, a);
      case 'not in':
        return !this.contains(b, a);
    }
    let x: unknown = isSecretLike(a) ? revealOf(a) : a;
    let y: unknown = isSecretLike(b) ? revealOf(b) : b;
    if (!((isNum(x) && isNum(y)) || (typeof x === 'string' && typeof y === 'string'))) {
      const hint = (isNum(x) && typeof y === 'string') || (typeof x === 'string' && isNum(y)) ? " (convert with '| int')" : '';
      throw this.fail(`'${op}' not supported between '${typeName(a)}' and '${typeName(b)}'${hint}`);
    }
    if (typeof x === 'string') {
      // code-point order like Python
      const cmp = x < (y as string) ? -1 : x > (y as string) ? 1 : 0;
      x = cmp;
      y = 0;
    }
    const l = x as number;
    const r = y as number;
    switch (op) {
      case '<':
        return l < r;
      case '<=':
        return l <= r;
      case '>':
        return l > r;
      case '>=':
        return l >= r;
    }
  }

  /** Python `item in container`. */
  private contains(container: unknown, item: unknown): boolean {
    if (isStr(container)) {
      if (!isStr(item)) throw this.fail(`'in <string>' requires a string as left operand, not '${typeName(item)}'`);
      return strOf(container).includes(strOf(item));
    }
    if (Array.isArray(container)) return (this.materialize(container, '') as unknown[]).some((v) => this.equals(v, item));
    if (isPlainObject(container)) {
      const key = isSecretLike(item) ? revealOf(item) : item;
      if (typeof key !== 'string' && typeof key !== 'number') return false;
      return Object.hasOwn(container, String(key)) && container[String(key)] !== undefined;
    }
    throw this.fail(`'in' needs a string, list or mapping on its right, got '${typeName(container)}'`);
  }

  private filter(n: Extract<Node, { k: 'filter' }>): unknown {
    const arg = (i: number): unknown => {
      const a = n.args[i];
      return a ? this.need(this.eval(a)) : undefined;
    };
    if (n.name === 'default' || n.name === 'd') {
      const v = this.eval(n.target);
      const fallback = () => (n.args[0] ? this.eval(n.args[0]) : '');
      if (v instanceof Undef || v === null || v === undefined) return fallback();
      if (n.args[1] && this.truthy(this.eval(n.args[1])) && !this.truthy(v)) return fallback();
      return v;
    }
    const v = this.need(this.eval(n.target));
    const label = this.text(n.target);
    switch (n.name) {
      case 'lower':
        return this.toStr(v, label).toLowerCase();
      case 'upper':
        return this.toStr(v, label).toUpperCase();
      case 'trim':
        return this.toStr(v, label).trim();
      case 'string':
        return this.toStr(v, label);
      case 'quote':
        return `'${this.toStr(v, label).replaceAll("'", `'"'"'`)}'`;
      case 'to_json':
        return JSON.stringify(plain(this.materialize(v, label)));
      case 'bool': {
        if (typeof v === 'boolean') return v;
        if (isStr(v)) return ['yes', 'on', '1', 'true'].includes(strOf(v).toLowerCase());
        return v === 1;
      }
      case 'int': {
        const r = toInt(v);
        if (r !== undefined) return r;
        if (n.args[0]) return arg(0);
        // A string computed from a secret (pw ~ 'x') is no longer a Secret object here, but it is one.
        const shown = isSecretLike(v) || reveals > this.revealsAtStart ? 'a secret value' : typeof v === 'string' ? `'${v}'` : typeName(v);
        throw this.fail(`int: cannot convert ${shown} ('${label}') to an integer; give a fallback with | int(0)`);
      }
      case 'length': {
        if (isStr(v)) return [...strOf(v)].length;
        if (Array.isArray(v)) return v.length;
        if (isPlainObject(v)) return Object.keys(v).length;
        throw this.fail(`length: '${label}' is ${aType(v)}, which has no length`);
      }
      case 'join': {
        if (!Array.isArray(v)) throw this.fail(`join: '${label}' is ${aType(v)}, not a list`);
        const sep = n.args[0] ? this.toStr(arg(0), this.text(n.args[0])) : '';
        return (this.materialize(v, label) as unknown[]).map((x, i) => this.toStr(x, `${label}[${i}]`)).join(sep);
      }
      case 'replace': {
        const s = this.toStr(v, label);
        const old = this.toStr(arg(0), this.text(n.args[0]!));
        const neu = this.toStr(arg(1), this.text(n.args[1]!));
        let count = Infinity;
        if (n.args[2]) {
          const c = arg(2);
          if (!isNum(c) || !Number.isInteger(c)) throw this.fail(`replace: count must be an integer, got ${typeName(c)}`);
          if (c >= 0) count = c;
        }
        return pyReplace(s, old, neu, count);
      }
    }
    throw this.fail(`unknown filter '${n.name}'`);
  }
}

function toInt(v: unknown): number | undefined {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) : undefined;
  if (!isStr(v)) return undefined;
  const s = strOf(v).trim();
  if (/^[+-]?\d+$/.test(s)) return Number.parseInt(s, 10);
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) return Math.trunc(Number(s));
  return undefined;
}

/** Python str.replace(old, new[, count]) – literal, no '$' patterns. */
function pyReplace(s: string, old: string, neu: string, count: number): string {
  if (old === '') {
    const chars = [...s];
    let out = '';
    let n = 0;
    for (let i = 0; i <= chars.length; i++) {
      if (n < count) {
        out += neu;
        n++;
      }
      if (i < chars.length) out += chars[i];
    }
    return out;
  }
  let out = '';
  let pos = 0;
  let n = 0;
  while (n < count) {
    const at = s.indexOf(old, pos);
    if (at < 0) break;
    out += s.slice(pos, at) + neu;
    pos = at + old.length;
    n++;
  }
  return out + s.slice(pos);
}

// ---------------------------------------------------------------------------------------------
// Static analysis

/**
 * The variables and environment variables an expression needs. Names that the expression
 * guards anywhere (`x is defined`, `x | default(...)`, lookup(..., default=...)) are left out,
 * so the result lists what must exist for the expression not to fail.
 */
export function collectNames(nodes: Node[]): { vars: string[]; env: string[] } {
  const vars = new Set<string>();
  const env = new Set<string>();
  const guardedVars = new Set<string>();
  const guardedEnv = new Set<string>();
  const walk = (n: Node, guarded: boolean): void => {
    switch (n.k) {
      case 'lit':
        return;
      case 'name':
        (guarded ? guardedVars : vars).add(n.name);
        return;
      case 'list':
        n.items.forEach((x) => walk(x, false));
        return;
      case 'attr':
        walk(n.obj, guarded);
        return;
      case 'index':
        walk(n.obj, guarded);
        walk(n.index, false);
        return;
      case 'call': {
        const [plugin, term] = n.args;
        if (plugin?.k === 'lit' && plugin.v === 'env' && term?.k === 'lit' && typeof term.v === 'string')
          (guarded || n.kwargs.has('default') ? guardedEnv : env).add(term.v);
        n.args.forEach((x) => walk(x, false));
        n.kwargs.forEach((x) => walk(x, false));
        return;
      }
      case 'filter':
        walk(n.target, n.name === 'default' || n.name === 'd');
        n.args.forEach((x) => x && walk(x, false));
        return;
      case 'test':
        walk(n.target, n.name === 'defined' || n.name === 'undefined');
        return;
      case 'unary':
        walk(n.operand, false);
        return;
      case 'bin':
      case 'logic':
        walk(n.l, false);
        walk(n.r, false);
        return;
      case 'cmp':
        walk(n.first, false);
        n.rest.forEach((x) => walk(x.right, false));
        return;
      case 'cond':
        walk(n.then, false);
        walk(n.test, false);
        if (n.else) walk(n.else, false);
        return;
    }
  };
  nodes.forEach((n) => walk(n, false));
  return { vars: [...vars].filter((v) => !guardedVars.has(v)), env: [...env].filter((e) => !guardedEnv.has(e)) };
}
