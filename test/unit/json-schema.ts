/**
 * A small JSON Schema (2020-12) validator for the tests: the keywords z.toJSONSchema emits
 * (type, properties, required, additionalProperties, propertyNames, items, enum, const, anyOf,
 * oneOf, allOf, $ref to #/$defs, pattern, min/max, minLength/maxLength, minItems/maxItems).
 * An unknown keyword is an error, so a schema using more than this cannot pass by accident.
 */
type Schema = Record<string, unknown> | boolean;

const KNOWN = new Set([
  '$schema', '$id', 'title', 'description', 'default', '$defs', 'type', 'properties', 'required', 'additionalProperties',
  'propertyNames', 'items', 'enum', 'const', 'anyOf', 'oneOf', 'allOf', '$ref', 'pattern', 'minimum', 'maximum',
  'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'minItems', 'maxItems', 'format', 'examples',
]);

export function validate(root: Schema, value: unknown): string[] {
  const errors: string[] = [];
  check(root, value, '$', root, errors);
  return errors;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function check(s: Schema, v: unknown, at: string, root: Schema, errors: string[]): void {
  if (s === true) return;
  if (s === false) {
    errors.push(`${at}: not allowed`);
    return;
  }
  for (const k of Object.keys(s)) if (!KNOWN.has(k)) throw new Error(`schema keyword '${k}' not supported by the test validator (at ${at})`);
  if (typeof s.$ref === 'string') {
    const m = /^#\/\$defs\/(.+)$/.exec(s.$ref);
    if (!m && s.$ref !== '#') throw new Error(`unsupported $ref ${s.$ref}`);
    const target = m ? ((root as Record<string, Record<string, Schema>>).$defs?.[m[1]!]) : root;
    if (target === undefined) throw new Error(`dangling $ref ${s.$ref}`);
    check(target, v, at, root, errors);
  }
  if (s.type !== undefined) {
    const types = ([] as string[]).concat(s.type as string | string[]);
    const t = typeOf(v);
    if (!types.some((x) => x === t || (x === 'number' && t === 'integer'))) {
      errors.push(`${at}: expected ${types.join('|')}, got ${t}`);
      return;
    }
  }
  if (s.enum && !(s.enum as unknown[]).some((e) => JSON.stringify(e) === JSON.stringify(v))) errors.push(`${at}: not one of ${JSON.stringify(s.enum)}`);
  if ('const' in s && JSON.stringify(s.const) !== JSON.stringify(v)) errors.push(`${at}: must be ${JSON.stringify(s.const)}`);
  if (typeof v === 'string') {
    if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(v)) errors.push(`${at}: does not match ${s.pattern}`);
    if (typeof s.minLength === 'number' && [...v].length < s.minLength) errors.push(`${at}: shorter than ${s.minLength}`);
    if (typeof s.maxLength === 'number' && [...v].length > s.maxLength) errors.push(`${at}: longer than ${s.maxLength}`);
  }
  if (typeof v === 'number') {
    if (typeof s.minimum === 'number' && v < s.minimum) errors.push(`${at}: below ${s.minimum}`);
    if (typeof s.maximum === 'number' && v > s.maximum) errors.push(`${at}: above ${s.maximum}`);
    if (typeof s.exclusiveMinimum === 'number' && v <= s.exclusiveMinimum) errors.push(`${at}: not above ${s.exclusiveMinimum}`);
    if (typeof s.exclusiveMaximum === 'number' && v >= s.exclusiveMaximum) errors.push(`${at}: not below ${s.exclusiveMaximum}`);
  }
  if (Array.isArray(v)) {
    if (typeof s.minItems === 'number' && v.length < s.minItems) errors.push(`${at}: fewer than ${s.minItems} items`);
    if (typeof s.maxItems === 'number' && v.length > s.maxItems) errors.push(`${at}: more than ${s.maxItems} items`);
    if (s.items !== undefined) v.forEach((x, i) => check(s.items as Schema, x, `${at}[${i}]`, root, errors));
  }
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const obj = v as Record<string, unknown>;
    const props = (s.properties ?? {}) as Record<string, Schema>;
    for (const r of (s.required ?? []) as string[]) if (!(r in obj)) errors.push(`${at}: missing required '${r}'`);
    for (const [k, x] of Object.entries(obj)) {
      if (s.propertyNames !== undefined) check(s.propertyNames as Schema, k, `${at}.${k} (name)`, root, errors);
      if (k in props) check(props[k]!, x, `${at}.${k}`, root, errors);
      else if (s.additionalProperties !== undefined) check(s.additionalProperties as Schema, x, `${at}.${k}`, root, errors);
    }
  }
  const sub = (list: unknown) => (list as Schema[]).map((x) => {
    const e: string[] = [];
    check(x, v, at, root, e);
    return e;
  });
  if (s.anyOf) {
    const results = sub(s.anyOf);
    if (!results.some((e) => e.length === 0)) errors.push(`${at}: matches none of ${results.length} alternatives (closest: ${results.sort((a, b) => a.length - b.length)[0]?.slice(0, 2).join('; ')})`);
  }
  if (s.oneOf) {
    const ok = sub(s.oneOf).filter((e) => e.length === 0).length;
    if (ok !== 1) errors.push(`${at}: matches ${ok} of oneOf, expected exactly 1`);
  }
  if (s.allOf) for (const e of sub(s.allOf)) errors.push(...e);
}
