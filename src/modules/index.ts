import type { ModuleDef } from '../core/types.js';
import { shell } from './command/module.js';
import { lineinfile } from './lineinfile/module.js';

/** Every module a playbook can use, by its YAML name. */
export const modules: ReadonlyMap<string, ModuleDef> = new Map<string, ModuleDef>(
  [lineinfile, shell].map((m) => [m.name, m as unknown as ModuleDef]),
);
