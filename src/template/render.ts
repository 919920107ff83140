/**
 * Public templating API: Ansible-style `{{ expr }}` strings and `when:` conditions.
 * Pure (no I/O); the language itself is documented in expr.ts.
 *
 * Variables whose values are templates themselves are rendered lazily, on first use,
 * recursively (a: "{{ b }}", b: "x" -> a is "x"), with cycle detection.
 */
import { Evaluator, TemplateError, collectNames, hasTemplate, isSecretLike, parseExpression, parseTemplate, renderSecretTemplate, type TemplateContext } from './expr.js';

export { TemplateError, hasTemplate, type TemplateContext } from './expr.js';

/**
 * Renders every {{ expr }} in a string. A string that is exactly one {{ expr }} (surrounding
 * whitespace allowed) returns the expression's native value (number, list, dict, bool, null,
 * or a Secret object unchanged); otherwise the result is a string, with lists/dicts as JSON,
 * booleans as True/False — and a Secret when any secret went into it (taint follows values). Undefined variables and none (null) interpolated
 * into text are errors unless | default(...) is used. A string without '{{' is returned as is.
 */
export function renderString(template: string, ctx: TemplateContext): unknown {
  if (!hasTemplate(template)) return template;
  return new Evaluator(ctx).renderTemplate(template);
}

/**
 * Renders the strings inside a value, recursively through arrays and plain objects (keys are
 * left untouched). Non-string leaves (numbers, booleans, null, secrets) pass through.
 * Always returns fresh arrays/objects; the input is not modified.
 */
export function renderValue(value: unknown, ctx: TemplateContext): unknown {
  const ev = new Evaluator(ctx);
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return hasTemplate(v) ? ev.renderTemplate(v) : v;
    if (isSecretLike(v)) return renderSecretTemplate(v, (t) => ev.renderTemplate(t));
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v === 'object' && v !== null && !isSecretLike(v)) {
      const proto: unknown = Object.getPrototypeOf(v);
      if (proto === Object.prototype || proto === null)
        return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  return walk(value);
}

/**
 * Evaluates an Ansible `when:` condition: a bare expression without braces. Truthiness is
 * Python's: false, none, 0, '' and empty lists/dicts are false. Booleans are returned as is.
 * '{{ }}' inside a condition is an error (write `when: x is defined`, not `when: "{{ x }}"`).
 */
export function evaluateCondition(expr: string | boolean, ctx: TemplateContext): boolean {
  if (typeof expr === 'boolean') return expr;
  if (typeof expr !== 'string')
    throw new TemplateError(`a condition must be an expression string or a boolean, got ${expr === null ? 'null' : typeof expr}`, String(expr));
  if (expr.trim() === '') throw new TemplateError('empty condition', expr);
  const ev = new Evaluator(ctx);
  return ev.truthy(ev.evaluate(parseExpression(expr)));
}

/**
 * The top-level variable names a template references, and the environment variables read
 * through lookup('env', 'NAME') with a literal name, each once in order of appearance —
 * for validation before connecting anywhere. Names only used in a guarded way (`x is defined`,
 * `x | default(...)`, lookup('env', 'X', default=...)) are omitted, since their absence is no
 * error. Pass { condition: true } for a bare `when:` expression (no braces); by default the
 * argument is a template, and text outside {{ }} references nothing. Throws TemplateError on
 * a syntax error.
 */
export function referencedNames(template: string, options: { condition?: boolean } = {}): { vars: string[]; env: string[] } {
  if (options.condition) return collectNames([parseExpression(template).node]);
  if (!hasTemplate(template)) return { vars: [], env: [] };
  return collectNames(parseTemplate(template).flatMap((s) => (s.kind === 'expr' ? [s.parsed.node] : [])));
}
