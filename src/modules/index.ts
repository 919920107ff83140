import type { ModuleDef } from '../core/types.js';
import { shell } from './command/module.js';
import { lineinfile } from './lineinfile/module.js';
import { restoreOriginals } from './restore-originals/module.js';
import { gencert } from './gencert/module.js';
import { pgHba } from './pg-hba/module.js';
import { restart } from './pg-service/module.js';
import { resetPassword } from './reset-password/module.js';
import { pgEnc } from './pg-enc/module.js';
import { pgpoolRestart } from './pgpool-service/module.js';
import { poolHba } from './pool-hba/module.js';
import { loginCheck } from './login-check/module.js';
import { fetchClientCerts } from './fetch-client-certs/module.js';
import { removeCa } from './remove-ca/module.js';
import { caRotate } from './ca-rotate/module.js';

/** Every module a playbook can use, by its YAML name. */
export const modules: ReadonlyMap<string, ModuleDef> = new Map<string, ModuleDef>(
  [lineinfile, shell, restoreOriginals].map((m) => [m.name, m as unknown as ModuleDef]),
);
// PostgreSQL TLS + SCRAM (issue "Encryption in transit")
for (const m of [gencert, resetPassword, restart, pgHba]) (modules as Map<string, ModuleDef>).set(m.name, m as unknown as ModuleDef);
// Pgpool-II TLS, pool_hba and pool_passwd (issue "Pgpool-II: TLS, pool_hba, and pool_passwd with a native pg_enc")
for (const m of [pgEnc, poolHba, pgpoolRestart]) (modules as Map<string, ModuleDef>).set(m.name, m as unknown as ModuleDef);
// Re-issue and CA rotation (issue "The whole lifecycle"); gencert's force / ca_rotation arguments
(modules as Map<string, ModuleDef>).set(caRotate.name, caRotate as unknown as ModuleDef);
// The whole lifecycle: uninstall, client certificates (issue "The whole lifecycle")
for (const m of [loginCheck, fetchClientCerts, removeCa]) (modules as Map<string, ModuleDef>).set(m.name, m as unknown as ModuleDef);
