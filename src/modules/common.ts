import * as z from 'zod';
import { Secret } from '../lib/secret.js';

/** YAML booleans as Ansible accepts them (yes/no/true/false). */
export const yamlBool = z
  .union([z.boolean(), z.enum(['yes', 'no', 'true', 'false', 'True', 'False', 'on', 'off'])])
  .transform((v) => v === true || v === 'yes' || v === 'true' || v === 'True' || v === 'on');

/**
 * File modes are octal digits. Our YAML is 1.2 (js-yaml core schema), where an unquoted
 * 0644 reads as the integer 644: its digits are what the author wrote, so they are taken as octal.
 */
export const fileMode = z
  .union([z.string(), z.number().int().transform((n) => String(n))])
  .pipe(z.string().regex(/^0?[0-7]{3,4}$/, 'must be octal digits such as "0640"'))
  .transform((m: string) => m.replace(/^0(?=[0-7]{3,4}$)/, ''));

/** A password or key: plain text in YAML, a Secret from here on. */
export const secretString = z
  .union([z.string(), z.instanceof(Secret)])
  .transform((v) => (v instanceof Secret ? v : new Secret(v)));

export const absolutePath = z.string().regex(/^\//, 'must be an absolute path');

/** The pgpool_service fact as a module argument: how the host runs Pgpool-II. */
export const pgpoolServiceArg = z.union([
  z.object({ kind: z.literal('systemd'), unit: z.string().min(1) }),
  z.object({ kind: z.literal('init'), script: absolutePath }),
  z.object({ kind: z.literal('unknown') }),
]);
