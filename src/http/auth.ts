import { createHash, timingSafeEqual } from 'node:crypto';
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
}

const apiKeySchema = z.object({
  key: z.string().min(16, 'API keys must be at least 16 characters'),
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
  const parsed = z.array(apiKeySchema).safeParse(raw);
  if (!parsed.success) {
    throw new Error(`TASKYARD_API_KEYS is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

export class Authenticator {
  private readonly keys: Array<{ digest: Buffer; principal: Principal }>;

  constructor(keys: ApiKey[]) {
    this.keys = keys.map((k) => ({ digest: digest(k.key), principal: { role: k.role, tenants: k.tenants, anonymous: false } }));
  }

  get enabled(): boolean {
    return this.keys.length > 0;
  }

  /** The caller's principal; 401 when keys are configured and none (or a wrong one) is sent. */
  authenticate(request: FastifyRequest): Principal {
    if (!this.enabled) return { role: 'admin', tenants: '*', anonymous: true };
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

export const isLoopback = (host: string): boolean =>
  host === 'localhost' || host === '::1' || host.startsWith('127.') || host === '::ffff:127.0.0.1';
