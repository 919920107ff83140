import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TemplateError, evaluateCondition, hasTemplate, referencedNames, renderString, renderValue, type TemplateContext } from '../../src/template/render.js';
import { Secret } from '../../src/lib/secret.js';

/** Stands in for lib/secret.ts's Secret: anything with reveal(); masks itself in JSON. */
class FakeSecret {
  constructor(private readonly value: string) {}
  reveal(): string {
    return this.value;
  }
  toJSON(): string {
    return '********';
  }
}

type Vars = Record<string, unknown>;
type Env = Record<string, string | undefined>;
const ctx = (vars: Vars, env: Env = {}): TemplateContext => ({ vars, env });

// ------------------------------------------------------------------------------------------
// renderString: expected values

const renders: { name: string; template: string; vars: Vars; env?: Env; expect: unknown }[] = [
  // literal text and native values
  { name: 'text without braces is untouched', template: 'plain } text { with $x and %s', vars: {}, expect: 'plain } text { with $x and %s' },
  { name: 'lone expression returns a number', template: '{{ 5 }}', vars: {}, expect: 5 },
  { name: 'lone expression returns a list', template: '{{ [1,2] }}', vars: {}, expect: [1, 2] },
  { name: 'surrounding whitespace still native', template: '  {{ n }}\n', vars: { n: 42 }, expect: 42 },
  { name: 'interpolation stringifies', template: ' x {{ 5 }}', vars: {}, expect: ' x 5' },
  { name: 'native bool', template: '{{ flag }}', vars: { flag: false }, expect: false },
  { name: 'native dict from variable', template: '{{ pg }}', vars: { pg: { port: 5432, hosts: ['a'] } }, expect: { port: 5432, hosts: ['a'] } },
  { name: 'native none', template: '{{ none }}', vars: {}, expect: null },
  { name: 'two expressions make a string', template: '{{ a }}{{ b }}', vars: { a: 1, b: 2 }, expect: '12' },
  { name: 'list interpolated as JSON', template: 'hosts={{ hosts }}', vars: { hosts: ['a', 'b'] }, expect: 'hosts=["a","b"]' },
  { name: 'dict interpolated as JSON', template: 'cfg {{ c }}', vars: { c: { a: 1 } }, expect: 'cfg {"a":1}' },
  { name: 'boolean interpolated Python style', template: 'ssl={{ on }}', vars: { on: true }, expect: 'ssl=True' },
  { name: 'float', template: '{{ 1.5 }}', vars: {}, expect: 1.5 },
  { name: 'string literal with }} inside', template: "{{ '}}' }}", vars: {}, expect: '}}' },
  { name: 'escaped quote in string literal', template: "{{ 'it\\'s' }}", vars: {}, expect: "it's" },
  { name: 'double-quoted string', template: '{{ "a b" }}', vars: {}, expect: 'a b' },
  { name: 'whitespace control', template: 'a  {{- "b" -}}  c', vars: {}, expect: 'abc' },
  { name: 'literal {{ via string expression', template: "{{ '{{' }} x }}", vars: {}, expect: '{{ x }}' },
  // access
  { name: 'attribute access', template: '{{ pg.port }}', vars: { pg: { port: 5432 } }, expect: 5432 },
  { name: 'index by number', template: '{{ hosts[1] }}', vars: { hosts: ['a', 'b'] }, expect: 'b' },
  { name: 'negative index', template: '{{ hosts[-1] }}', vars: { hosts: ['a', 'b', 'c'] }, expect: 'c' },
  { name: 'index by string key', template: "{{ hostvars['db-1'].port }}", vars: { hostvars: { 'db-1': { port: 5433 } } }, expect: 5433 },
  { name: 'index by variable', template: '{{ ports[name] }}', vars: { ports: { pg: 5432 }, name: 'pg' }, expect: 5432 },
  { name: 'dotted numeric index', template: '{{ hosts.0 }}', vars: { hosts: ['x'] }, expect: 'x' },
  // operators
  { name: 'tilde concatenates anything', template: "{{ 'port ' ~ 5432 }}", vars: {}, expect: 'port 5432' },
  { name: 'plus on numbers', template: '{{ port + 1 }}', vars: { port: 5432 }, expect: 5433 },
  { name: 'plus on strings', template: "{{ 'a' + 'b' }}", vars: {}, expect: 'ab' },
  { name: 'plus on lists', template: '{{ [1] + l }}', vars: { l: [2, 3] }, expect: [1, 2, 3] },
  { name: 'multiplication before addition', template: '{{ 1 + 2 * 3 }}', vars: {}, expect: 7 },
  { name: 'parentheses', template: '{{ (1 + 2) * 3 }}', vars: {}, expect: 9 },
  { name: 'floor division and modulo', template: '{{ [7 // 2, -7 % 3, 7 / 2] }}', vars: {}, expect: [3, 2, 3.5] },
  { name: 'unary minus', template: '{{ -n }}', vars: { n: 4 }, expect: -4 },
  { name: 'or returns the operand (Python)', template: "{{ name or 'anon' }}", vars: { name: '' }, expect: 'anon' },
  { name: 'conditional expression', template: "{{ 'on' if ssl else 'off' }}", vars: { ssl: false }, expect: 'off' },
  { name: 'chained comparison', template: '{{ 1 < n < 10 }}', vars: { n: 5 }, expect: true },
  { name: 'equality of lists is deep', template: '{{ l == [1, [2]] }}', vars: { l: [1, [2]] }, expect: true },
  { name: 'int vs float equality', template: '{{ 1 == 1.0 }}', vars: {}, expect: true },
  { name: 'bool is not 1', template: '{{ true == 1 }}', vars: {}, expect: false },
  { name: 'string ordering', template: "{{ 'abc' < 'abd' }}", vars: {}, expect: true },
  // in / not in
  { name: 'substring in', template: "{{ 'gres' in 'postgres' }}", vars: {}, expect: true },
  { name: 'list membership', template: '{{ 3 in [1, 2, 3] }}', vars: {}, expect: true },
  { name: 'list membership deep', template: "{{ ['a'] in [['a'], ['b']] }}", vars: {}, expect: true },
  { name: 'dict key membership', template: "{{ 'port' in pg }}", vars: { pg: { port: 1 } }, expect: true },
  { name: 'dict values are not members', template: '{{ 1 in pg }}', vars: { pg: { port: 1 } }, expect: false },
  { name: 'not in', template: "{{ 'x' not in ['a', 'b'] }}", vars: {}, expect: true },
  // tests
  { name: 'is defined', template: '{{ x is defined }}', vars: { x: 0 }, expect: true },
  { name: 'is not defined', template: '{{ x is not defined }}', vars: {}, expect: true },
  { name: 'missing key is not defined', template: '{{ pg.port is defined }}', vars: { pg: {} }, expect: false },
  { name: 'attribute of undefined is not defined', template: '{{ pg.port is defined }}', vars: {}, expect: false },
  { name: 'is none', template: '{{ x is none }}', vars: { x: null }, expect: true },
  { name: 'is string / is number', template: '{{ [s is string, n is number, s is number, b is number] }}', vars: { s: '1', n: 1, b: true }, expect: [true, true, false, false] },
  { name: 'test binds tighter than not', template: '{{ not x is defined }}', vars: {}, expect: true },
  // filters
  { name: 'default on undefined', template: "{{ missing | default('fallback') }}", vars: {}, expect: 'fallback' },
  { name: 'd alias on missing attribute', template: '{{ pg.port | d(5432) }}', vars: { pg: {} }, expect: 5432 },
  { name: 'default keeps defined empty string', template: "{{ x | default('y') }}", vars: { x: '' }, expect: '' },
  { name: 'default with boolean=true replaces falsy', template: "{{ x | default('y', true) }}", vars: { x: '' }, expect: 'y' },
  { name: 'default keyword argument', template: "{{ x | default('y', boolean=true) }}", vars: { x: 0 }, expect: 'y' },
  { name: 'default replaces none', template: '{{ x | default(1) }}', vars: { x: null }, expect: 1 },
  { name: 'default without argument is empty string', template: '[{{ x | default }}]', vars: {}, expect: '[]' },
  { name: 'lower / upper', template: "{{ 'MiXeD' | lower }}-{{ 'MiXeD' | upper }}", vars: {}, expect: 'mixed-MIXED' },
  { name: 'int from string', template: "{{ '5432' | int + 1 }}", vars: {}, expect: 5433 },
  { name: 'int truncates floats', template: "{{ ['3.9' | int, -2.5 | int, true | int] }}", vars: {}, expect: [3, -2, 1] },
  { name: 'int with fallback', template: "{{ 'abc' | int(7) }}", vars: {}, expect: 7 },
  { name: 'string filter', template: '{{ 5 | string }}', vars: {}, expect: '5' },
  { name: 'bool filter (Ansible values)', template: "{{ ['yes' | bool, 'On' | bool, '1' | bool, 'TRUE' | bool, 'no' | bool, 'off' | bool, 1 | bool, 0 | bool, none | bool] }}", vars: {}, expect: [true, true, true, true, false, false, true, false, false] },
  { name: 'length', template: "{{ ['abc' | length, [1, 2] | length, d | length] }}", vars: { d: { a: 1, b: 2, c: 3 } }, expect: [3, 2, 3] },
  { name: 'join', template: "{{ hosts | join(', ') }}", vars: { hosts: ['a', 'b', 3] }, expect: 'a, b, 3' },
  { name: 'join without separator', template: "{{ ['a', 'b'] | join }}", vars: {}, expect: 'ab' },
  { name: 'trim', template: "[{{ '  x \\n' | trim }}]", vars: {}, expect: '[x]' },
  { name: 'to_json', template: '{{ v | to_json }}', vars: { v: { a: [1, 'x'], b: null } }, expect: '{"a":[1,"x"],"b":null}' },
  { name: 'replace all occurrences', template: "{{ 'a.b.c' | replace('.', '_') }}", vars: {}, expect: 'a_b_c' },
  { name: 'replace is literal ($ is not special)', template: "{{ 'x' | replace('x', '$&$1') }}", vars: {}, expect: '$&$1' },
  { name: 'replace with count', template: "{{ 'aaa' | replace('a', 'b', 2) }}", vars: {}, expect: 'bba' },
  { name: 'quote plain', template: 'echo {{ msg | quote }}', vars: { msg: 'a b' }, expect: "echo 'a b'" },
  { name: 'quote with single quote', template: '{{ msg | quote }}', vars: { msg: "it's" }, expect: `'it'"'"'s'` },
  { name: 'filter chain', template: "{{ ' A,B ' | trim | lower | replace(',', ' ') }}", vars: {}, expect: 'a b' },
  { name: 'filter binds tighter than comparison', template: '{{ l | length > 1 }}', vars: { l: [1, 2] }, expect: true },
  { name: 'filter binds tighter than tilde', template: "{{ 'a' ~ 'b' | upper }}", vars: {}, expect: 'aB' },
  // lookup
  { name: "lookup('env')", template: "{{ lookup('env', 'PGPASS') }}", vars: {}, env: { PGPASS: 's3cret' }, expect: 's3cret' },
  { name: 'lookup env set to empty string', template: "[{{ lookup('env', 'E') }}]", vars: {}, env: { E: '' }, expect: '[]' },
  { name: 'unset env with default filter', template: "{{ lookup('env', 'NOPE') | default('dflt') }}", vars: {}, expect: 'dflt' },
  { name: 'unset env with default= argument', template: "{{ lookup('env', 'NOPE', default='k') }}", vars: {}, expect: 'k' },
  { name: 'unset env is not defined', template: "{{ lookup('env', 'NOPE') is defined }}", vars: {}, expect: false },
  // lazy variables
  { name: 'lazy variable', template: '{{ a }}', vars: { a: '{{ b }}', b: 'x' }, expect: 'x' },
  { name: 'lazy chain keeps native type', template: '{{ a }}', vars: { a: '{{ b }}', b: '{{ c + 1 }}', c: 1 }, expect: 2 },
  { name: 'lazy inside interpolation', template: 'url={{ url }}', vars: { url: 'postgres://{{ host }}:{{ port }}', host: 'db', port: 5432 }, expect: 'url=postgres://db:5432' },
  { name: 'lazy value inside a dict', template: '{{ pg.dsn }}', vars: { pg: { port: 5432, dsn: 'port={{ pg.port }}' } }, expect: 'port=5432' },
  { name: 'sibling key that would fail is not rendered', template: '{{ pg.port }}', vars: { pg: { port: 1, bad: '{{ nope }}' } }, expect: 1 },
  { name: 'native dict renders nested templates', template: '{{ pg }}', vars: { pg: { a: '{{ pg.b }}', b: 2 } }, expect: { a: 2, b: 2 } },
  { name: 'lazy list elements', template: "{{ hosts | join(',') }}", vars: { hosts: ['{{ h1 }}', 'b'], h1: 'a' }, expect: 'a,b' },
  { name: 'lazy env lookup in a variable', template: '{{ pw }}', vars: { pw: "{{ lookup('env', 'PW') }}" }, env: { PW: 'p' }, expect: 'p' },
  { name: 'variable built from an undefined one is not defined', template: '{{ a is defined }}', vars: { a: 'x{{ nope }}' }, expect: false },
  { name: 'default applies to a variable built from an undefined one', template: "{{ pw | default('none set') }}", vars: { pw: "{{ lookup('env', 'NOPE') }}" }, expect: 'none set' },
  { name: 'rendered output is not rendered again', template: '{{ a }}', vars: { a: "{{ '{{' }} b }}" }, expect: '{{ b }}' },
  // precedence of boolean operators
  { name: 'not a and b or c: (F and T) or T', template: '{{ not a and b or c }}', vars: { a: true, b: true, c: true }, expect: true },
  { name: 'not a and b or c: (T and F) or F', template: '{{ not a and b or c }}', vars: { a: false, b: false, c: false }, expect: false },
  { name: 'not a and b or c: (T and T) or F', template: '{{ not a and b or c }}', vars: { a: false, b: true, c: false }, expect: true },
  { name: 'and binds tighter than or', template: '{{ true or false and false }}', vars: {}, expect: true },
  { name: 'not binds looser than ==', template: '{{ not 1 == 2 }}', vars: {}, expect: true },
  { name: 'and short-circuits an undefined right side', template: '{{ x is defined and x > 1 }}', vars: {}, expect: false },
];

for (const c of renders) {
  test(`render: ${c.name}`, () => {
    assert.equal(renderString(c.template, ctx(c.vars, c.env)), c.expect);
  });
}

// ------------------------------------------------------------------------------------------
// renderString: errors

const renderErrors: { name: string; template: string; vars: Vars; env?: Env; error: RegExp }[] = [
  { name: 'undefined variable', template: '{{ webadmin_password }}', vars: {}, error: /^undefined variable 'webadmin_password'$/ },
  { name: 'undefined variable in text', template: 'pw={{ webadmin_password }}', vars: {}, error: /undefined variable 'webadmin_password'/ },
  { name: 'missing key names the full path', template: '{{ pg.port }}', vars: { pg: { host: 'h' } }, error: /undefined variable 'pg\.port' \('pg' has no key 'port'\)/ },
  { name: 'attribute of undefined names root and path', template: '{{ pg.port }}', vars: {}, error: /undefined variable 'pg' \(accessing 'pg\.port'\)/ },
  { name: 'index out of range', template: '{{ hosts[2] }}', vars: { hosts: ['a'] }, error: /undefined variable 'hosts\[2\]' \(index 2 is out of range: 'hosts' has 1 item\)/ },
  { name: 'attribute of none', template: '{{ pg.port }}', vars: { pg: null }, error: /'pg' is none/ },
  { name: 'undefined used in arithmetic', template: '{{ n + 1 }}', vars: {}, error: /undefined variable 'n'/ },
  { name: 'undefined inside filter other than default', template: '{{ n | lower }}', vars: {}, error: /undefined variable 'n'/ },
  { name: 'none interpolated into text', template: 'x={{ v }}', vars: { v: null }, error: /'v' is none \(null\).*default/ },
  { name: 'unset env variable', template: "{{ lookup('env', 'PGTLS_UNSET') }}", vars: {}, env: { OTHER: 'x' }, error: /^environment variable PGTLS_UNSET is not set$/ },
  { name: 'unset env variable in text', template: "pw={{ lookup('env', 'PGTLS_UNSET') }}", vars: {}, error: /environment variable PGTLS_UNSET is not set/ },
  { name: 'unknown filter', template: '{{ x | frobnicate }}', vars: { x: 1 }, error: /unknown filter 'frobnicate'/ },
  { name: 'unknown test', template: '{{ x is even }}', vars: { x: 1 }, error: /unknown test 'even'/ },
  { name: 'unknown function', template: '{{ range(3) }}', vars: {}, error: /unknown function 'range'/ },
  { name: 'unsupported lookup plugin', template: "{{ lookup('file', '/etc/passwd') }}", vars: {}, error: /unsupported lookup plugin "file" \(only 'env' is supported\)/ },
  { name: 'syntax error with column', template: '{{ a +* b }}', vars: {}, error: /^syntax error in expression 'a \+\* b' at column 4: unexpected '\*'$/ },
  { name: 'unexpected end of expression', template: '{{ a and }}', vars: { a: 1 }, error: /column 6: unexpected end of expression/ },
  { name: 'single = hints at ==', template: '{{ a = 1 }}', vars: { a: 1 }, error: /unexpected '=' \(use '==' to compare\)/ },
  { name: 'unterminated string', template: "{{ 'abc }}", vars: {}, error: /unterminated string literal in the expression at position 1/ },
  { name: 'unclosed {{', template: 'x {{ a ', vars: { a: 1 }, error: /unclosed '\{\{' at position 3 \(missing '\}\}'\)/ },
  { name: 'nested {{ inside an expression', template: '{{ a {{ b }}', vars: {}, error: /unexpected '\{\{'/ },
  { name: 'empty expression', template: 'x {{ }}', vars: {}, error: /empty expression/ },
  { name: 'statements are not supported', template: '{% if x %}y{% endif %}', vars: {}, error: /template statements .* are not supported/ },
  { name: 'filter arity', template: "{{ s | replace('a') }}", vars: { s: 'a' }, error: /filter 'replace' requires 2 arguments/ },
  { name: 'int of garbage', template: "{{ 'abc' | int }}", vars: {}, error: /int: cannot convert 'abc'/ },
  { name: 'str + int', template: "{{ 'a' + 1 }}", vars: {}, error: /unsupported operand types for \+: 'str' and 'int'.*use '~'/ },
  { name: 'ordering str and int (Python 3)', template: "{{ port > 1024 }}", vars: { port: '5432' }, error: /'>' not supported between 'str' and 'int' \(convert with '\| int'\)/ },
  { name: 'in <string> needs a string', template: "{{ 5 in 'a5' }}", vars: {}, error: /'in <string>' requires a string as left operand, not 'int'/ },
  { name: 'division by zero', template: '{{ 1 / 0 }}', vars: {}, error: /division by zero/ },
  { name: 'cycle a -> b -> a', template: '{{ a }}', vars: { a: '{{ b }}', b: '{{ a }}' }, error: /^recursive loop detected in template for 'a'$/ },
  { name: 'self reference', template: 'x {{ a }}', vars: { a: 'y{{ a }}' }, error: /recursive loop detected in template for 'a'/ },
  { name: 'cycle through a dict', template: '{{ pg }}', vars: { pg: { a: '{{ pg }}' } }, error: /recursive loop detected in template for 'pg\.a'/ },
  { name: 'error inside lazy var says where', template: '{{ a }}', vars: { a: '{{ b }}', b: '{{ nope }}' }, error: /^undefined variable 'nope' \(while rendering 'b'\)$/ },
  { name: 'unset env inside lazy var', template: 'pw={{ pw }}', vars: { pw: "{{ lookup('env', 'NOPE') }}" }, error: /^environment variable NOPE is not set \(while rendering 'pw'\)$/ },
  { name: 'attribute of a lazy var that failed', template: '{{ a.b }}', vars: { a: '{{ nope }}' }, error: /^undefined variable 'nope' \(while rendering 'a'\) \(accessing 'a\.b'\)$/ },
  { name: 'syntax error inside lazy var says where', template: '{{ a }}', vars: { a: '{{ 1 + }}' }, error: /syntax error in expression '1 \+'.*\(while rendering 'a'\)$/ },
  { name: 'conditional without else', template: "{{ 'x' if false }}", vars: {}, error: /has no else branch/ },
];

for (const c of renderErrors) {
  test(`render error: ${c.name}`, () => {
    let caught: unknown;
    try {
      renderString(c.template, ctx(c.vars, c.env));
    } catch (e) {
      caught = e;
    }
    assert.instance(caught, TemplateError, 'expected a TemplateError');
    assert.match((caught as TemplateError).message, c.error);
  });
}

// ------------------------------------------------------------------------------------------
// evaluateCondition (when:)

const conditions: { name: string; expr: string | boolean; vars: Vars; env?: Env; expect: boolean }[] = [
  { name: 'boolean true passes through', expr: true, vars: {}, expect: true },
  { name: 'boolean false passes through', expr: false, vars: {}, expect: false },
  { name: 'empty string is false', expr: 'v', vars: { v: '' }, expect: false },
  { name: 'non-empty string is true', expr: 'v', vars: { v: 'false' }, expect: true },
  { name: 'zero is false', expr: 'v', vars: { v: 0 }, expect: false },
  { name: 'non-zero is true', expr: 'v', vars: { v: -1 }, expect: true },
  { name: 'empty list is false', expr: 'v', vars: { v: [] }, expect: false },
  { name: 'non-empty list is true', expr: 'v', vars: { v: [0] }, expect: true },
  { name: 'empty dict is false', expr: 'v', vars: { v: {} }, expect: false },
  { name: 'non-empty dict is true', expr: 'v', vars: { v: { a: 0 } }, expect: true },
  { name: 'none is false', expr: 'v', vars: { v: null }, expect: false },
  { name: 'literal None is false', expr: 'None', vars: {}, expect: false },
  { name: 'True literal', expr: 'True', vars: {}, expect: true },
  { name: 'is defined on missing', expr: 'pg_version is defined', vars: {}, expect: false },
  { name: 'is not defined on missing', expr: 'pg_version is not defined', vars: {}, expect: true },
  { name: 'comparison with int filter', expr: 'pg_version | int >= 14', vars: { pg_version: '16' }, expect: true },
  { name: 'membership in group list', expr: "'pgpool' in group_names", vars: { group_names: ['db', 'pgpool'] }, expect: true },
  { name: 'bool filter on yes', expr: 'enable | bool', vars: { enable: 'yes' }, expect: true },
  { name: 'bool filter on no', expr: 'enable | bool', vars: { enable: 'no' }, expect: false },
  { name: 'precedence: not a and b or c', expr: 'not a and b or c', vars: { a: true, b: true, c: false }, expect: false },
  { name: 'multi-line folded condition', expr: "a == 1\n  and b == 'x'\n", vars: { a: 1, b: 'x' }, expect: true },
  { name: 'lazy variable in condition', expr: 'role == "primary"', vars: { role: '{{ default_role }}', default_role: 'primary' }, expect: true },
  { name: 'secret truthiness', expr: 'pw', vars: { pw: new FakeSecret('x') }, expect: true },
  { name: 'env lookup compared', expr: "lookup('env', 'CI') == 'true'", vars: {}, env: { CI: 'true' }, expect: true },
];

for (const c of conditions) {
  test(`when: ${c.name}`, () => {
    assert.is(evaluateCondition(c.expr, ctx(c.vars, c.env)), c.expect);
  });
}

const conditionErrors: { name: string; expr: string; vars: Vars; env?: Env; error: RegExp }[] = [
  { name: 'undefined variable', expr: 'is_primary', vars: {}, error: /^undefined variable 'is_primary'$/ },
  { name: 'braces are rejected', expr: '{{ is_primary }}', vars: { is_primary: true }, error: /template delimiters cannot appear inside an expression/ },
  { name: 'empty condition', expr: '  ', vars: {}, error: /empty condition/ },
  { name: 'unset env', expr: "lookup('env', 'NOPE') == 'x'", vars: {}, error: /environment variable NOPE is not set/ },
  { name: '&& hints at and', expr: 'a && b', vars: { a: 1, b: 1 }, error: /column 3: unexpected '&&' \(use 'and'\)/ },
  { name: 'trailing garbage', expr: 'a b', vars: { a: 1, b: 1 }, error: /column 3: unexpected 'b'/ },
];

for (const c of conditionErrors) {
  test(`when error: ${c.name}`, () => {
    assert.throws(
      () => evaluateCondition(c.expr, ctx(c.vars, c.env)),
      (e: unknown) => e instanceof TemplateError && c.error.test(e.message),
    );
  });
}

// ------------------------------------------------------------------------------------------
// referencedNames

const references: { name: string; template: string; condition?: boolean; expect: { vars: string[]; env: string[] } }[] = [
  { name: 'plain text', template: 'no templates here', expect: { vars: [], env: [] } },
  { name: 'top-level names only, in order, deduplicated', template: '{{ pg.port }} {{ hosts[i] }} {{ pg.host }}', expect: { vars: ['pg', 'hosts', 'i'], env: [] } },
  { name: 'env lookups reported separately', template: "{{ lookup('env', 'PGPASSWORD') ~ user }}", expect: { vars: ['user'], env: ['PGPASSWORD'] } },
  { name: 'default() guards its left operand but not its argument', template: '{{ a | default(b) }}', expect: { vars: ['b'], env: [] } },
  { name: 'guarded env lookups are optional', template: "{{ lookup('env', 'A') | default('') }}{{ lookup('env', 'B', default='') }}", expect: { vars: [], env: [] } },
  { name: 'is defined guards the name everywhere', template: '{{ x if x is defined else y }}', expect: { vars: ['y'], env: [] } },
  { name: 'filters other than default do not guard', template: '{{ a | lower | default(1) }}', expect: { vars: ['a'], env: [] } },
  { name: 'literals and keywords are not names', template: "{{ true and none is none and 'x' in [1] }}", expect: { vars: [], env: [] } },
  { name: 'bare condition', template: 'pg_version | int > 13 and inventory_hostname in groups.db', condition: true, expect: { vars: ['pg_version', 'inventory_hostname', 'groups'], env: [] } },
];

for (const c of references) {
  test(`referencedNames: ${c.name}`, () => {
    assert.equal(referencedNames(c.template, c.condition ? { condition: true } : {}), c.expect);
  });
}

test('referencedNames: syntax errors are reported', () => {
  assert.throws(() => referencedNames('{{ a | nofilter }}'), (e: unknown) => e instanceof TemplateError && /unknown filter 'nofilter'/.test(e.message));
});

// ------------------------------------------------------------------------------------------
// renderValue, hasTemplate, secrets, TemplateError.expression

test('renderValue: recursive, keys untouched, non-strings pass through', () => {
  const secret = new FakeSecret('pw');
  const input = {
    '{{ key }}': '{{ port }}',
    list: ['a {{ host }}', 1, true, null, { deep: '{{ [port] }}' }],
    secret,
    n: 3,
  };
  const out = renderValue(input, ctx({ port: 5432, host: 'db', key: 'k' }));
  assert.equal(out, {
    '{{ key }}': 5432,
    list: ['a db', 1, true, null, { deep: [5432] }],
    secret,
    n: 3,
  });
  assert.is((out as { secret: unknown }).secret, secret, 'secret object passes through');
  assert.is(input.list[0], 'a {{ host }}', 'input not modified');
});

test('renderValue: a plain string', () => {
  assert.is(renderValue('{{ a }}-{{ a }}', ctx({ a: 'x' })), 'x-x');
});

test('hasTemplate', () => {
  assert.is(hasTemplate('a {{ b }}'), true);
  assert.is(hasTemplate('{% if %}'), true);
  assert.is(hasTemplate('a { b } ${#x}'), false);
});

test('secret: lone expression returns the Secret object itself', () => {
  const pw = new FakeSecret('hunter2');
  assert.is(renderString('{{ pw }}', ctx({ pw })), pw);
  assert.is(renderString('{{ a }}', ctx({ a: '{{ pw }}', pw })), pw, 'also through a lazy variable');
});

// Issue 9 point 4: a template that embeds a secret yields a secret (it used to be a plain string).
test('secret: interpolation and filters yield secrets (taint follows the value)', () => {
  const pw = new FakeSecret("it's");
  const c = ctx({ pw, pws: [pw], conn: 'host=x password={{ pw }}', plain: 'x' });
  const cases: [string, string][] = [
    ['PASSWORD {{ pw }}', "PASSWORD it's"],
    ['{{ pw | quote }}', `'it'"'"'s'`],
    ['{{ pws | to_json }}', `["it's"]`],
    ['{{ pw | upper }}', "IT'S"],
    ['{{ conn }}', "host=x password=it's"],
    ['dbname=a {{ conn }}', "dbname=a host=x password=it's"],
    ["{{ pws | join(',') }}", "it's"],
  ];
  for (const [tpl, text] of cases) {
    const out = renderString(tpl, c);
    assert.instance(out, Secret, tpl);
    assert.is((out as Secret).reveal(), text, tpl);
    assert.is(String(out), Secret.MASK, tpl);
  }
  assert.is(renderString('{{ pw | length }}', c), 4);
  assert.is(renderString("{{ pw == \"it's\" }}", c), true);
  assert.is(renderString('a {{ plain }}', c), 'a x', 'no secret, no taint');
});

test('secret: value never shown in int() error', () => {
  try {
    renderString('{{ pw | int }}', ctx({ pw: new FakeSecret('hunter2') }));
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, TemplateError);
    assert.match((e as Error).message, /a secret value/);
    assert.not.match((e as Error).message, /hunter2/);
  }
});

test('TemplateError carries the failing expression', () => {
  try {
    renderString('host={{ pg.host }} port={{ pg.port }}', ctx({ pg: { host: 'h' } }));
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, TemplateError);
    assert.is((e as TemplateError).expression, 'pg.port');
    assert.is((e as TemplateError).name, 'TemplateError');
  }
});

test('lazy variables are rendered once per call (no exponential blow-up)', () => {
  const vars: Vars = { v0: 1 };
  for (let i = 1; i <= 30; i++) vars[`v${i}`] = `{{ v${i - 1} + v${i - 1} }}`;
  // 2^30 evaluations without caching
  assert.is(renderString('{{ v30 }}', ctx(vars)), 1073741824);
});

test.run();
