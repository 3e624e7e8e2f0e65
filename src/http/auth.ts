import { createHash, timingSafeEqual } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { TaskyardError } from '../core/errors.js';
import type { TenantScope } from '../store/types.js';

export type Role = 'viewer' | 'operator' | 'admin';
const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export interface Principal {
  role: Role;
  tenants: TenantScope;
  /** True when no keys are configured (loopback-only protected mode). */
  anonymous: boolean;
  /** Names the key without revealing it (a digest prefix); 'anonymous' for anonymous callers. */
  keyId: string;
}

const apiKeySchema = z.object({
  key: z
    .string()
    .refine((key) => key.trim() !== '', { message: 'must not be blank', abort: true })
    // Presented credentials are trimmed, so such a key could never match.
    .refine((key) => key === key.trim(), { message: 'must not start or end with whitespace', abort: true })
    .min(16, 'API keys must be at least 16 characters'),
  role: z.enum(['admin', 'operator', 'viewer']),
  tenants: z.union([z.literal('*'), z.array(z.union([z.string(), z.number()]).transform(String))]),
});
export type ApiKey = z.output<typeof apiKeySchema>;

/** Parses `TASKYARD_API_KEYS` (a JSON array); a malformed value stops start-up with the reason. */
export function parseApiKeys(text: string | undefined): ApiKey[] {
  if (!text || !text.trim()) return [];
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`TASKYARD_API_KEYS is not valid JSON: ${(error as Error).message}`);
  }
  return validApiKeys(raw, 'TASKYARD_API_KEYS');
}

/**
 * Checks keys given in code or in the environment: each well formed, none blank, and no key
 * listed twice (which of the two roles and tenant lists would it carry?). Errors name keys by
 * position, never by value.
 */
export function validApiKeys(raw: unknown, source = 'apiKeys'): ApiKey[] {
  const parsed = z.array(apiKeySchema).safeParse(raw);
  if (!parsed.success) {
    throw new Error(`${source} is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const firstAt = new Map<string, number>();
  parsed.data.forEach((k, i) => {
    const first = firstAt.get(k.key);
    if (first !== undefined) throw new Error(`${source} is invalid: keys ${first} and ${i} are the same key; give each its own`);
    firstAt.set(k.key, i);
  });
  return parsed.data;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

export class Authenticator {
  private readonly keys: Array<{ digest: Buffer; principal: Principal }>;

  constructor(keys: ApiKey[]) {
    this.keys = validApiKeys(keys).map((k) => {
      const keyDigest = digest(k.key);
      return { digest: keyDigest, principal: { role: k.role, tenants: k.tenants, anonymous: false, keyId: keyDigest.toString('hex', 0, 8) } };
    });
  }

  get enabled(): boolean {
    return this.keys.length > 0;
  }

  /** The caller's principal; 401 when keys are configured and none (or a wrong one) is sent. */
  authenticate(request: FastifyRequest): Principal {
    if (!this.enabled) return { role: 'admin', tenants: '*', anonymous: true, keyId: 'anonymous' };
    const presented = credentialOf(request);
    if (!presented) throw new TaskyardError('unauthorized', 'Authentication required: send Authorization: Bearer <key> or X-API-Key');
    // Compare digests in constant time, and against every key, so timing reveals nothing.
    const presentedDigest = digest(presented);
    let found: Principal | null = null;
    for (const key of this.keys) if (timingSafeEqual(key.digest, presentedDigest)) found = key.principal;
    if (!found) throw new TaskyardError('unauthorized', 'Invalid API key');
    return found;
  }
}

function credentialOf(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (typeof header === 'string') {
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (match) return match[1]!.trim();
  }
  const apiKey = request.headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey.trim()) return apiKey.trim();
  return null;
}

export function requireRole(principal: Principal, role: Role): void {
  if (RANK[principal.role] < RANK[role]) {
    throw new TaskyardError('forbidden', `This action needs the ${role} role; this key is ${principal.role}`);
  }
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** True for an IP address in 127.0.0.0/8 or ::1 (IPv4-mapped forms included); names are not addresses. */
export function isLoopbackAddress(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && LOOPBACK.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * The addresses a server bound to `host` may listen on: an IP literal as it is, a name (even
 * `localhost`) as the resolver answers, every address of it. Rejects when a name does not resolve.
 */
export async function bindAddressesOf(host: string): Promise<string[]> {
  if (isIP(host)) return [host];
  const addresses = await lookup(host, { all: true });
  return addresses.map((a) => a.address);
}
