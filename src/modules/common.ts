import { z } from 'zod';
import { Secret } from '../core/secret.js';

/** YAML booleans as Ansible accepts them (yes/no/true/false). */
export const yamlBool = z
  .union([z.boolean(), z.enum(['yes', 'no', 'true', 'false', 'True', 'False', 'on', 'off'])])
  .transform((v) => v === true || v === 'yes' || v === 'true' || v === 'True' || v === 'on');

/** File modes are strings of octal digits ("0600"); a YAML integer 0600 would be read as decimal 600, so numbers are refused. */
export const fileMode = z
  .string()
  .regex(/^0?[0-7]{3,4}$/, 'must be a quoted octal string such as "0640"')
  .transform((m) => m.replace(/^0(?=[0-7]{3,4}$)/, ''));

/** A password or key: plain text in YAML, a Secret from here on. */
export const secretString = z
  .union([z.string(), z.instanceof(Secret)])
  .transform((v) => (v instanceof Secret ? v : new Secret(v)));

export const absolutePath = z.string().regex(/^\//, 'must be an absolute path');
