/**
 * What the SQLite and PostgreSQL ledgers' migrations share. Each dialect has its own list
 * (sqlite.ts, postgres.ts) and both end in the same schema: a new migration is added to both,
 * under the same name.
 */

/** Tenant-less runs are counted (and keep their idempotency keys) under this key, since primary keys cannot hold NULL. */
export const NO_TENANT = '';
