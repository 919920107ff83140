/**
 * `pgtls status` runs as a built-in playbook through the ordinary runner, so that input
 * validation, SSH, host keys, become, facts, --limit and forks are exactly those of `run`.
 * Its two modules only look: they return no change (and the run is a --check run on top,
 * so the executor could not write even if they did); what they find goes to a collector.
 */
import * as z from 'zod';
import { defineModule, type ModuleDef, type PlanContext } from '../lib/plan-types.js';
import type { ServiceStatus, StatusPolicy } from './model.js';
import { pgpoolStatus } from './probe-pgpool.js';
import { postgresStatus } from './probe-postgres.js';

/** Per host: what was found, and the policy that applies to it (host vars may differ). */
export type Collector = Map<string, { services: ServiceStatus[]; policy: StatusPolicy }>;

// min_tls is checked before any connection by the policy check (core/policy.ts), naming where it was set
const args = z.object({ renew_before_days: z.coerce.number().min(0).default(30), min_tls: z.string().default('TLSv1.2') }).strict();

export function statusModules(found: Collector): ModuleDef[] {
  const add = (host: string, policy: StatusPolicy, s: ServiceStatus) => found.set(host, { services: [...(found.get(host)?.services ?? []), s], policy });
  // One read-only module per service kind: it only records what its probe found.
  const inspector = (name: string, description: string, probe: (ctx: PlanContext) => Promise<ServiceStatus>) =>
    defineModule({
      name,
      description,
      args,
      async plan(ctx, a) {
        add(ctx.host, { renewBeforeDays: a.renew_before_days, minTls: a.min_tls }, await probe(ctx));
        return [];
      },
    });
  const pg = inspector('pgtls_status_postgresql', 'inspect PostgreSQL TLS and authentication (read-only)', postgresStatus);
  const pool = inspector('pgtls_status_pgpool', 'inspect Pgpool-II TLS, pool_hba and pool_passwd (read-only)', pgpoolStatus);
  return [pg, pool] as unknown as ModuleDef[];
}

/** The playbook: plays for groups the inventory lacks are skipped by the runner (with a warning we drop). */
export const STATUS_PLAYBOOK = `# written by pgtls status (src/status/modules.ts)
- name: PostgreSQL status
  hosts: postgres
  tasks:
    - name: PostgreSQL
      pgtls_status_postgresql:
        renew_before_days: "{{ pgtls_renew_before_days | default(30) }}"
        min_tls: "{{ pgtls_min_tls | default('TLSv1.2') }}"
- name: Pgpool-II status
  hosts: pgpool
  tasks:
    - name: Pgpool-II
      pgtls_status_pgpool:
        renew_before_days: "{{ pgtls_renew_before_days | default(30) }}"
        min_tls: "{{ pgtls_min_tls | default('TLSv1.2') }}"
`;
