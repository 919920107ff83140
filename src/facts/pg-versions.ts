/**
 * What differs between the PostgreSQL majors that Debian and RHEL ship today (13–17) and that
 * pgtls depends on: one small function per difference, each row of it a documented change
 * (release notes / the view's page), table-tested in test/unit/pg-versions.test.ts.
 * Only 15 is installable in the lab: these functions are how the other majors are handled.
 */

/** The majors pgtls is written and tested for. */
export const SUPPORTED_MAJORS = { min: 13, max: 17 } as const;

/** A warning for a server outside the supported majors, else undefined. */
export function unsupportedMajor(major: number): string | undefined {
  if (major < SUPPORTED_MAJORS.min) return `PostgreSQL ${major} is older than ${SUPPORTED_MAJORS.min}, which pgtls needs (channel_binding, pg_hba_file_rules as used here)`;
  if (major > SUPPORTED_MAJORS.max) return `PostgreSQL ${major} is newer than ${SUPPORTED_MAJORS.max}, the newest major pgtls knows`;
  return undefined;
}

/**
 * The file a pg_hba_file_rules row comes from: 16 added include files to pg_hba.conf and the
 * `file_name` (and `rule_number`) columns; before, every rule is in hba_file.
 */
export function hbaRuleFileExpr(major: number): string {
  return major >= 16 ? 'file_name' : "current_setting('hba_file')";
}

/** libpq's channel_binding connection parameter exists since 13 (proves SCRAM was used). */
export function hasChannelBinding(major: number): boolean {
  return major >= 13;
}

/** ssl_min_protocol_version exists since 12 (its default became TLSv1.2 in 14; 12–13 default TLSv1). */
export function defaultMinTls(major: number): string | undefined {
  if (major < 12) return undefined;
  return major >= 14 ? 'TLSv1.2' : 'TLSv1';
}

/** password_encryption's default is scram-sha-256 since 14 (md5 before); `on`/`off` were removed in 14. */
export function defaultPasswordEncryption(major: number): 'md5' | 'scram-sha-256' {
  return major >= 14 ? 'scram-sha-256' : 'md5';
}

/** pg_stat_ssl's columns pgtls may read: `compression` was removed in 14. */
export function pgStatSslColumns(major: number): string[] {
  const cols = ['pid', 'ssl', 'version', 'cipher', 'bits', 'client_dn', 'client_serial', 'issuer_dn'];
  return major >= 14 ? cols : [...cols.slice(0, 5), 'compression', ...cols.slice(5)];
}

/**
 * What makes a standby's walreceiver use a changed primary_conninfo: since 13 the parameter is
 * reloadable (the walreceiver restarts with the new value); before, a server restart.
 */
export function primaryConninfoApply(major: number): 'reload' | 'restart' {
  return major >= 13 ? 'reload' : 'restart';
}

/** pg_stat_wal_receiver's flushed position: `flushed_lsn` since 13 (`received_lsn` before). */
export function walReceiverFlushColumn(major: number): 'flushed_lsn' | 'received_lsn' {
  return major >= 13 ? 'flushed_lsn' : 'received_lsn';
}

/** libpq's sslnegotiation=direct (TLS without the SSLRequest round trip) exists since 17. */
export function hasDirectSslNegotiation(major: number): boolean {
  return major >= 17;
}

/** The data directory a distribution's package uses for a major (for messages and the lab's layouts). */
export function distributionDataDir(layout: 'debian' | 'rhel' | 'pgdg', major: number, cluster = 'main'): string {
  if (layout === 'debian') return `/var/lib/postgresql/${major}/${cluster}`;
  if (layout === 'rhel') return '/var/lib/pgsql/data'; // the distribution's own postgresql-server
  return `/var/lib/pgsql/${major}/data`; // PGDG packages on RHEL
}
