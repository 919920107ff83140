import * as z from 'zod';

/** A boolean as Ansible accepts it: true/false, yes/no, on/off, 1/0 (any case). */
export const ansibleBool = z
  .union([z.boolean(), z.number(), z.string()])
  .transform((v, ctx) => {
    const s = String(v).toLowerCase();
    if (['true', 'yes', 'on', '1', 'y'].includes(s)) return true;
    if (['false', 'no', 'off', '0', 'n', ''].includes(s)) return false;
    ctx.addIssue({ code: 'custom', message: `expected a boolean (true/false, yes/no, on/off), got '${String(v)}'` });
    return z.NEVER;
  });
