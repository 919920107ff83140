/** Writes schemas/*.schema.json from the zod schemas (npm run build:schemas; run by prepack). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inventoryJsonSchema, playbookJsonSchema } from '../src/config/json-schemas.js';
import { modules } from '../src/modules/index.js';
import { PACKAGE_ROOT } from '../src/package-info.js';

const dir = join(PACKAGE_ROOT, 'schemas');
mkdirSync(dir, { recursive: true });
const write = (name: string, schema: object) => writeFileSync(join(dir, name), JSON.stringify(schema, null, 2) + '\n');
// report.schema.json (the --json report) is written by hand: it documents a format, not a zod schema.
write('inventory.schema.json', inventoryJsonSchema());
write('playbook.schema.json', playbookJsonSchema(modules));
process.stdout.write(`wrote ${dir}/inventory.schema.json, playbook.schema.json\n`);
