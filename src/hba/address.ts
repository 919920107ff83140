/**
 * Whether a pg_hba/pool_hba address only ever matches connections that stay on the host
 * (loopback). Such rules are not "in transit": pgtls leaves them as they are and does not
 * count them as letting a client in without TLS. Anything it cannot prove local is remote.
 */
import net from 'node:net';

/** Prefix length of a netmask written as an address (255.255.255.0 -> 24); null when not contiguous. */
function maskBits(mask: string): number | null {
  let bytes: number[];
  if (net.isIPv4(mask)) bytes = mask.split('.').map(Number);
  else if (net.isIPv6(mask)) bytes = expand6(mask);
  else return null;
  let bits = 0;
  let ended = false;
  for (const b of bytes)
    for (let i = 7; i >= 0; i--) {
      const one = ((b >> i) & 1) === 1;
      if (one && ended) return null;
      if (one) bits++;
      else ended = true;
    }
  return bits;
}

/** The 16 bytes of an IPv6 address. */
function expand6(a: string): number[] {
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const part = (s: string | undefined) => (s ? s.split(':') : []);
  const h = part(head);
  const t = part(tail);
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.flatMap((g) => {
    const n = parseInt(g || '0', 16);
    return [n >> 8, n & 0xff];
  });
}

/**
 * `address` is the rule's ADDRESS column (a CIDR, a bare address followed by `mask`, a host name or a
 * keyword). Loopback: 127.0.0.0/8 or narrower, ::1/128, `localhost`, `samehost` (the server's own
 * addresses: the traffic does not leave the host).
 */
export function isLoopbackAddress(address: string | null | undefined, mask?: string | null): boolean {
  if (!address) return false;
  if (address === 'localhost' || address === 'samehost') return true;
  const [addr, len] = address.split('/');
  let bits: number | null;
  if (len !== undefined) bits = /^\d+$/.test(len) ? Number(len) : null;
  else if (mask) bits = maskBits(mask);
  else bits = net.isIPv4(addr!) ? 32 : net.isIPv6(addr!) ? 128 : null;
  if (bits === null) return false;
  if (net.isIPv4(addr!)) return addr!.split('.')[0] === '127' && bits >= 8;
  if (net.isIPv6(addr!)) {
    const b = expand6(addr!);
    return bits === 128 && b.slice(0, 15).every((x) => x === 0) && b[15] === 1;
  }
  return false;
}
