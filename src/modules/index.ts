import type { ModuleDef } from '../core/types.js';
import { lineinfile } from './lineinfile/module.js';

/** Every module a playbook can use, by its YAML name. */
export const modules: ReadonlyMap<string, ModuleDef> = new Map<string, ModuleDef>(
  [lineinfile].map((m) => [m.name, m as unknown as ModuleDef]),
);
