import type { FactProvider } from './provider.js';
import { pgpoolFacts } from './pgpool.js';
import { postgresFacts } from './postgres.js';
import { replicationFacts } from './replication.js';

export type { FactProvider } from './provider.js';

export const factProviders: Readonly<Record<string, FactProvider>> = { ...postgresFacts, ...pgpoolFacts, ...replicationFacts };
