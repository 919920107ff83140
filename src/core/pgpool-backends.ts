/**
 * Pgpool-II refuses every login ("inconsistency of auth method among DB nodes") while its backends
 * disagree on authentication, and cannot reach backends that require TLS before it speaks TLS
 * itself. So a run must never change some backends of a Pgpool-II node and not the others: a
 * --limit that would split them is refused, and a backend left out of a run (its facts could not be
 * read, with --keep-going) takes its Pgpool-II node and that node's other backends out with it.
 * Pure decisions, table-tested in test/unit/pgpool-backends.test.ts.
 */

/** A Pgpool-II node and the inventory hosts its backends resolve to (unresolved addresses dropped). */
export interface PgpoolNode {
  host: string;
  backends: string[];
  /** its pgpool.conf says ssl = on (it can meet backends that require TLS); unknown counts as yes */
  tls?: boolean;
}

/** Each inventory host's names: inventory name, ansible_host, and what the host said (hostname, FQDN, addresses). */
export type HostNames = ReadonlyMap<string, readonly string[]>;

/** The inventory hosts a Pgpool-II node's backend_hostnameN values name. */
export function resolveBackends(addresses: readonly string[], names: HostNames): string[] {
  const out: string[] = [];
  for (const a of addresses) {
    const key = a.trim().toLowerCase();
    for (const [host, ns] of names) if (ns.some((n) => n.toLowerCase() === key) && !out.includes(host)) out.push(host);
  }
  return out;
}

/** For every node whose backends the run would split: the backends in the run and those left out. */
export function splitNodes(nodes: readonly PgpoolNode[], inRun: ReadonlySet<string>): { node: string; included: string[]; missing: string[] }[] {
  const out: { node: string; included: string[]; missing: string[] }[] = [];
  for (const n of nodes) {
    const included = n.backends.filter((b) => inRun.has(b));
    const missing = n.backends.filter((b) => !inRun.has(b));
    if (included.length > 0 && missing.length > 0) out.push({ node: n.host, included, missing });
  }
  return out;
}

/**
 * Nodes left out of the run while all their backends are in it, that do not speak TLS yet: the run
 * may make those backends require hostssl, which this Pgpool-II cannot meet (install with
 * --limit on the backends only, before the Pgpool-II nodes were converged).
 */
// enforces "Pgpool-II restarted before PostgreSQL requires TLS" for runs that leave the node out
// (README "Ordering constraints"); with the node in the run, install.yaml's play order does it
export function strandedNodes(nodes: readonly PgpoolNode[], inRun: ReadonlySet<string>): PgpoolNode[] {
  return nodes.filter((n) => n.tls === false && !inRun.has(n.host) && n.backends.length > 0 && n.backends.every((b) => inRun.has(b)));
}

/**
 * Hosts to leave out along with `dropped` so that no node and its backends part ways: a dropped
 * backend takes its node and the node's other backends, a dropped node takes its backends
 * (transitively: a backend shared by two nodes takes both). Returns host -> why.
 */
export function leaveOutWith(nodes: readonly PgpoolNode[], dropped: ReadonlySet<string>, inRun: ReadonlySet<string>): Map<string, string> {
  const out = new Map<string, string>();
  const gone = new Set(dropped);
  for (let changed = true; changed; ) {
    changed = false;
    for (const n of nodes) {
      const lost = [n.host, ...n.backends].filter((b) => gone.has(b));
      if (lost.length === 0) continue;
      for (const h of [n.host, ...n.backends]) {
        if (gone.has(h) || !inRun.has(h)) continue;
        gone.add(h);
        out.set(h, `left out with ${lost.join(', ')} (Pgpool-II node ${n.host} and its backends ${n.backends.join(', ')} change together, and ${lost.join(', ')} could not be read)`);
        changed = true;
      }
    }
  }
  return out;
}

/** The other backends that share a Pgpool-II node with `host` (they must agree with it on authentication). */
export function siblingBackends(nodes: readonly PgpoolNode[], host: string): { node: string; backend: string }[] {
  const out: { node: string; backend: string }[] = [];
  for (const n of nodes) if (n.backends.includes(host)) for (const b of n.backends) if (b !== host) out.push({ node: n.host, backend: b });
  return out;
}

/**
 * Why `host` must not change authentication now: a backend of one of its Pgpool-II nodes already
 * failed (or became unreachable) in this run, so it keeps the old rules and passwords, and changing
 * `host` alone would make the node refuse every login. Null when nothing stands in the way.
 */
export function authChangeBlocked(nodes: readonly PgpoolNode[], host: string, statusOf: (h: string) => string | undefined): string | null {
  // A Pgpool-II node and its backends move together: a backend follows its node too (a node that
  // failed still speaks to them as before), and a node follows its backends.
  const own = nodes.filter((n) => n.host === host).flatMap((n) => n.backends.map((backend) => ({ node: n.host, backend })));
  const myNodes = nodes.filter((n) => n.backends.includes(host)).map((n) => ({ node: n.host, backend: n.host }));
  for (const { node, backend } of [...siblingBackends(nodes, host), ...own, ...myNodes]) {
    const st = statusOf(backend);
    if (st === 'failed' || st === 'unreachable')
      return (
        `not changing authentication on ${host}: ${backend}, ${node === host ? 'a backend of this Pgpool-II node' : backend === node ? 'the Pgpool-II node in front of it' : `another backend of Pgpool-II node ${node}`}, ${st === 'failed' ? 'failed' : 'became unreachable'} in this run, ` +
        `and Pgpool-II refuses every login while its backends disagree on authentication (or with what it requires of them); ${host} keeps its rules and passwords (fix ${backend}, then run again)`
      );
  }
  return null;
}
