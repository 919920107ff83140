import type { ModuleDef } from '../lib/plan-types.js';
import { caRotate } from './ca-rotate/module.js';
import { fetchClientCerts } from './fetch-client-certs/module.js';
import { gencert } from './gencert/module.js';
import { lineinfile } from './lineinfile/module.js';
import { loginCheck } from './login-check/module.js';
import { pgEnc } from './pg-enc/module.js';
import { pgHba } from './pg-hba/module.js';
import { restart } from './pg-service/module.js';
import { pgpoolBackendTls } from './pgpool-backend-tls/module.js';
import { pgpoolRestart } from './pgpool-service/module.js';
import { plaintextSessions } from './plaintext-sessions/module.js';
import { poolHba } from './pool-hba/module.js';
import { removeCa } from './remove-ca/module.js';
import { replicationCheck } from './replication-check/module.js';
import { replicationTls } from './replication-tls/module.js';
import { resetPassword } from './reset-password/module.js';
import { restoreOriginals } from './restore-originals/module.js';
import { shell } from './shell/module.js';

/** Every module a playbook can use, by its YAML name. */
export const modules: ReadonlyMap<string, ModuleDef> = new Map(
  [
    // general
    lineinfile,
    shell,
    // PostgreSQL: certificates, passwords, rules, verified reloads
    gencert,
    caRotate,
    resetPassword,
    pgHba,
    restart,
    // streaming replication: standbys verify their upstream, every walsender is TLS
    replicationTls,
    replicationCheck,
    // Pgpool-II
    pgEnc,
    poolHba,
    pgpoolRestart,
    // encryption in transit, proven from the servers' own session views
    plaintextSessions,
    pgpoolBackendTls,
    // lifecycle: uninstall, client certificates
    restoreOriginals,
    loginCheck,
    fetchClientCerts,
    removeCa,
  ].map((m) => [m.name, m as unknown as ModuleDef]),
);
