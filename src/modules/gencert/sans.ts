import { classifySan, normalizeIp } from '../../crypto/x509.js';

/**
 * Which names a server certificate may carry. A certificate from the fleet CA is a statement that
 * "this key is the host NAME": the inventory (the operator) vouches for names, the host does not.
 * A compromised node that renames itself (hostname, /etc/hosts, DNS) must not obtain a certificate
 * for another node's name, so:
 *  - the inventory name, ansible_host and pgtls_cert_sans are taken as they are (wildcards only
 *    from pgtls_cert_sans, where the operator wrote them on purpose);
 *  - the host's own `hostname` / `hostname -f` only when they agree with the inventory: equal to a
 *    vouched name, or the short name of a vouched DNS name, or (for a short inventory name such as
 *    `pg1`) an FQDN whose first label is that name (`pg1.lab.internal`);
 *  - the host's addresses only when the inventory vouches for them (ansible_host, pgtls_cert_sans);
 *  - loopback names and addresses never.
 * Pure: gencert passes the inventory and the facts; the result says what was left out and why.
 */
export interface SanInput {
  inventoryName: string;
  ansibleHost?: string;
  certSans: string[];
  facts: { hostname: string; fqdn: string; addresses: string[] };
}

export interface SanChoice {
  /** The certificate's CN: the host's own hostname when it agrees with the inventory, else the inventory's first name. */
  commonName: string;
  sans: string[];
  /** Names left out, with the reason (warnings). */
  dropped: { name: string; why: string }[];
  /** pgtls_cert_sans entries that are not valid names (an error: the operator wrote them). */
  invalid: { name: string; why: string }[];
}

const LOOPBACK = /^(localhost(\.localdomain)?|127\.\d+\.\d+\.\d+|::1|\[::1\])$/i;

export function chooseServerSans(input: SanInput): SanChoice {
  const dropped: SanChoice['dropped'] = [];
  const invalid: SanChoice['invalid'] = [];
  const vouched: string[] = [];
  const norm = (n: string) => (classifySan(n) === 'ip' ? normalizeIp(n) : n.replace(/\.$/, '').toLowerCase());

  for (const [name, from] of [
    [input.inventoryName, 'the inventory name'],
    [input.ansibleHost ?? '', 'ansible_host'],
  ] as const) {
    if (!name || LOOPBACK.test(name)) continue;
    if (name.startsWith('*')) {
      dropped.push({ name, why: `a wildcard is only accepted from pgtls_cert_sans (it came from ${from})` });
      continue;
    }
    try {
      vouched.push(norm(name));
    } catch {
      dropped.push({ name, why: `${from} is not a valid certificate name` });
    }
  }
  for (const name of input.certSans) {
    try {
      vouched.push(norm(name));
    } catch (e) {
      invalid.push({ name, why: (e as Error).message });
    }
  }

  const dnsVouched = vouched.filter((n) => classifySan(n) === 'dns' && !n.startsWith('*'));
  const shortNames = new Set(dnsVouched.map((n) => n.split('.')[0]!));
  const agrees = (name: string): boolean => {
    if (vouched.includes(name)) return true;
    if (!name.includes('.')) return shortNames.has(name); // pg1 for a vouched pg1.example.com
    // pg1.lab.internal for the short inventory name pg1 (and no FQDN vouched that says otherwise)
    const first = name.split('.')[0]!;
    return dnsVouched.includes(first) && !dnsVouched.some((v) => v.includes('.') && v.split('.')[0] === first);
  };
  const fromHost: string[] = [];
  let hostnameAgrees = false;
  for (const [name, from] of [
    [input.facts.hostname, 'hostname'],
    [input.facts.fqdn, 'hostname -f'],
    ...input.facts.addresses.map((a) => [a, 'an address of the host'] as const),
  ] as const) {
    if (!name || LOOPBACK.test(name)) continue;
    let n: string;
    try {
      n = norm(name);
    } catch {
      dropped.push({ name, why: `${from} is not a valid certificate name` });
      continue;
    }
    if (n.startsWith('*')) dropped.push({ name, why: `${from} is a wildcard (only pgtls_cert_sans may hold one)` });
    else if (classifySan(n) === 'ip') {
      if (!vouched.includes(n)) continue; // a host's other addresses are simply not names the inventory knows
    } else if (agrees(n)) {
      fromHost.push(n);
      if (from === 'hostname') hostnameAgrees = true;
    } else if (!vouched.includes(n)) dropped.push({ name, why: `${from} reported by the host does not agree with the inventory` });
  }
  const sans = [...new Set([...vouched, ...fromHost])];
  const commonName = hostnameAgrees ? input.facts.hostname : (dnsVouched[0] ?? vouched[0] ?? input.inventoryName);
  return { commonName, sans, dropped, invalid };
}
