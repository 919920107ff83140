/**
 * Which sslmode a standby can demand of its upstream, decided from the inventory (so that
 * --check on a fleet without TLS yet plans the same as the real run):
 *  - verify-full when every host the conninfo names is a name the upstream's certificate
 *    carries: gencert puts the inventory name, ansible_host and pgtls_cert_sans in it;
 *  - verify-ca when the upstream is a host of the inventory but the conninfo reaches it by
 *    another name or only by address (hostaddr, a DNS name resolving to its ansible_host):
 *    the chain is still checked against the fleet CA, the name cannot be (warned);
 *  - nothing when a host is not one of the fleet's (its certificate is not from the fleet CA)
 *    or the connection is over a Unix socket (not in transit). Pure: the caller resolves names.
 */
import net from 'node:net';

export interface FleetHost {
  name: string;
  /** Names and addresses in its server certificate (as gencert issues it). */
  certNames: string[];
  /** ansible_host, when it is an address: how a name that resolves to it is recognised. */
  address?: string;
}

export interface Target {
  host: string;
  hostaddr: string;
  port: string;
}

export type UpstreamDecision =
  | { mode: 'verify-full' | 'verify-ca'; upstreams: string[]; notes: string[] }
  | { mode: null; reason: string };

const norm = (n: string) => n.trim().toLowerCase().replace(/\.$/, '');

/** host / hostaddr / port of a conninfo, one entry per host of a multi-host list (libpq's rules). */
export function targets(host: string | undefined, hostaddr: string | undefined, port: string | undefined): Target[] {
  const hosts = (host ?? '').split(',');
  const addrs = (hostaddr ?? '').split(',');
  const ports = (port ?? '').split(',');
  const n = Math.max(hosts.length, addrs.length);
  const out: Target[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ host: hosts[i]?.trim() ?? '', hostaddr: addrs[i]?.trim() ?? '', port: (ports.length === 1 ? ports[0] : ports[i])?.trim() || '5432' });
  }
  return out;
}

export function decideUpstream(ts: Target[], fleet: FleetHost[], resolved: ReadonlyMap<string, string[]>): UpstreamDecision {
  const upstreams: string[] = [];
  const notes: string[] = [];
  let full = true;
  for (const t of ts) {
    if ((t.host === '' && t.hostaddr === '') || t.host.startsWith('/') || t.host.startsWith('@'))
      return { mode: null, reason: 'it connects over a Unix socket (not in transit)' };
    const byName = t.host ? fleet.find((f) => f.certNames.some((n) => norm(n) === norm(t.host))) : undefined;
    if (byName) {
      upstreams.push(byName.name);
      continue;
    }
    const addrs = t.hostaddr ? [t.hostaddr] : (resolved.get(t.host) ?? []);
    const byAddr = fleet.find((f) => addrs.some((a) => f.address === a || f.certNames.includes(a)));
    const shown = t.host || t.hostaddr;
    if (!byAddr) return { mode: null, reason: `${shown} is not a host of this inventory (its certificate is not from the fleet CA)` };
    upstreams.push(byAddr.name);
    full = false;
    notes.push(
      t.host
        ? `${t.host} is not a name in ${byAddr.name}'s certificate (add it to pgtls_cert_sans for verify-full)`
        : `the upstream ${byAddr.name} is named only by hostaddr ${t.hostaddr} (set host= to a name in its certificate for verify-full)`,
    );
  }
  return { mode: full ? 'verify-full' : 'verify-ca', upstreams, notes };
}

/** Whether libpq matches `name` against IP or DNS SANs (it compares an IP literal with the IP SANs). */
export function isAddress(name: string): boolean {
  return net.isIP(name) !== 0;
}
