import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/**
 * Addresses a webhook must not reach unless the configuration explicitly allows it: link-local
 * networks, where cloud instance metadata lives (169.254.169.254 hands out credentials on AWS,
 * GCP and Azure), and the metadata addresses of providers that use other ranges. A signed POST
 * there is a server-side request forgery, so the default is to refuse.
 */
const REFUSED = new BlockList();
REFUSED.addSubnet('169.254.0.0', 16, 'ipv4'); // IPv4 link-local, instance metadata
REFUSED.addAddress('100.100.100.200', 'ipv4'); // Alibaba Cloud metadata
REFUSED.addSubnet('fe80::', 10, 'ipv6'); // IPv6 link-local
REFUSED.addSubnet('fd00::', 8, 'ipv6'); // unique-local, e.g. AWS metadata at fd00:ec2::254

/** Names of metadata services, refused even where they do not resolve (e.g. at start-up). */
const REFUSED_NAMES = new Set(['metadata', 'metadata.google.internal', 'metadata.goog', 'instance-data', 'instance-data.ec2.internal']);

/** Where a webhook URL points, when that is a refused place; null when it may be used. */
export function refusedHost(hostname: string): string | null {
  const host = bareHost(hostname);
  if (REFUSED_NAMES.has(host)) return `${host} is a cloud metadata service`;
  return isRefusedAddress(host) ? `${host} is a link-local or metadata address` : null;
}

/** True for an IP address in a refused range (IPv4-mapped IPv6 forms included). */
export function isRefusedAddress(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && REFUSED.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * Resolves the URL's host and returns why it is refused, or null. Checked again right before
 * each delivery, because a name that was harmless at start-up may later resolve somewhere else.
 */
export async function refusedDestination(url: string): Promise<string | null> {
  const host = bareHost(new URL(url).hostname);
  const byName = refusedHost(host);
  if (byName || isIP(host)) return byName;
  let addresses: Array<{ address: string }>;
  try {
    addresses = await lookup(host, { all: true });
  } catch {
    return null; // the request itself fails and reports it
  }
  const refused = addresses.find((a) => isRefusedAddress(a.address));
  return refused ? `${host} resolves to ${refused.address}, a link-local or metadata address` : null;
}

/** `[fd00::1]` (as URL.hostname gives IPv6) to `fd00::1`; names lower-cased, without a trailing dot. */
function bareHost(hostname: string): string {
  const host = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return host.toLowerCase().replace(/\.$/, '');
}
