/**
 * JSON Schemas for editors (yaml-language-server, VS Code), generated from the zod schemas
 * pgtls validates with, so the editor and the run never disagree about a field:
 *   schemas/inventory.schema.json   the YAML inventory
 *   schemas/playbook.schema.json    a playbook: plays, task keywords, every module's arguments
 * Values may be templates ("{{ pgtls_key_bits | default(2048) }}") wherever a number, boolean,
 * list or constrained string is expected: those are rendered per host before validation.
 */
import * as z from 'zod';
import type { ModuleDef } from '../lib/plan-types.js';
import { inventorySchema } from './inventory.js';
import { playSchema, taskKeywordsSchema } from './playbook.js';

type Json = Record<string, unknown>;

const TEMPLATE: Json = { type: 'string', pattern: '\\{\\{.*\\}\\}', description: 'a template, rendered per host' };

/** zod's JSON Schema, with its $defs renamed under `prefix` so several can live in one file. */
function toJson(schema: z.ZodType, prefix = ''): Json {
  const j = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }) as Json;
  delete j.$schema;
  if (!prefix) return j;
  const text = JSON.stringify(j).replace(/"#\/\$defs\/([^"]+)"/g, (_, name: string) => JSON.stringify(`#/$defs/${prefix}${name}`));
  const out = JSON.parse(text) as Json;
  if (out.$defs) out.$defs = Object.fromEntries(Object.entries(out.$defs as Json).map(([k, v]) => [prefix + k, v]));
  return out;
}

/** Lets a template stand wherever a typed or constrained value is expected. */
function allowTemplates(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(allowTemplates);
  if (!node || typeof node !== 'object') return node;
  const n: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'properties' || k === '$defs') n[k] = Object.fromEntries(Object.entries(v as Json).map(([p, s]) => [p, allowTemplates(s)]));
    else if (k === 'items' || k === 'anyOf' || k === 'oneOf' || k === 'allOf' || k === 'additionalProperties') n[k] = allowTemplates(v);
    else n[k] = v;
  }
  const plainString = n.type === 'string' && Object.keys(n).every((k) => ['type', 'default', 'description'].includes(k));
  const constrained = 'type' in n || 'enum' in n || 'const' in n || 'anyOf' in n;
  if (!constrained || plainString) return n;
  const { default: dflt, description, ...rest } = n;
  return { ...(dflt !== undefined ? { default: dflt } : {}), ...(description ? { description } : {}), anyOf: [rest, TEMPLATE] };
}

export function inventoryJsonSchema(): Json {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://github.com/pgtls/pgtls/schemas/inventory.schema.json',
    title: 'pgtls / Ansible YAML inventory',
    description: 'all: { hosts, vars, children }; other top-level keys are groups too. Host names may be ranges (db[1:3]).',
    ...toJson(inventorySchema),
  };
}

/** Module names as a task may write them: NAME, and ansible.builtin.NAME for Ansible's own modules. */
function moduleKeys(name: string): string[] {
  return ['lineinfile', 'shell'].includes(name) ? [name, `ansible.builtin.${name}`, `ansible.legacy.${name}`] : [name, `pgtls.${name}`];
}

export function playbookJsonSchema(modules: ReadonlyMap<string, ModuleDef>): Json {
  const keywords = toJson(taskKeywordsSchema) as { properties: Json };
  const defs: Json = {};
  const keywordProps: Json = {};
  for (const [k, v] of Object.entries(allowTemplates(keywords.properties) as Json)) {
    defs[`keyword_${k}`] = v;
    keywordProps[k] = { $ref: `#/$defs/keyword_${k}` };
  }
  const taskVariants: Json[] = [];
  for (const [name, m] of [...modules.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const defName = `module_${name}`;
    const { $defs, ...args } = toJson(m.args as z.ZodType, `${defName}_`);
    Object.assign(defs, allowTemplates($defs ?? {}));
    defs[defName] = allowTemplates(args);
    for (const key of moduleKeys(name))
      taskVariants.push({
        type: 'object',
        title: key,
        properties: { ...keywordProps, [key]: { $ref: `#/$defs/${defName}` } },
        required: [key],
        additionalProperties: false,
      });
  }
  defs.task = { anyOf: taskVariants };
  const play = toJson(playSchema) as { properties: Json };
  const tasksList = { anyOf: [{ type: 'array', items: { $ref: '#/$defs/task' } }, { type: 'null' }] };
  const playDef = { ...play, properties: { ...(allowTemplates(play.properties) as Json), tasks: tasksList, handlers: tasksList } };
  defs.play = playDef;
  defs.import_playbook = {
    type: 'object',
    properties: { import_playbook: { type: 'string', minLength: 1 } },
    required: ['import_playbook'],
    additionalProperties: false,
  };
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://github.com/pgtls/pgtls/schemas/playbook.schema.json',
    title: 'pgtls playbook',
    description: 'A list of plays (or import_playbook entries); each task has task keywords and exactly one module.',
    type: 'array',
    items: { anyOf: [{ $ref: '#/$defs/import_playbook' }, { $ref: '#/$defs/play' }] },
    $defs: defs,
  };
}
