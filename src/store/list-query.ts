import { sql, type Kysely, type SelectQueryBuilder } from 'kysely';
import { rowToRecord, type Row } from './codec.js';
import type { ListFilter, TaskPage, TenantScope } from './types.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

/**
 * The task list's query, the same on every store: newest first, one row more than the page to
 * know whether another follows. Null when the scope admits no tenant at all. `caseless` is the
 * dialect's case-insensitive LIKE (SQLite's LIKE already is, for ASCII).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function listQuery(db: AnyDb, filter: ListFilter, scope: TenantScope, caseless: 'LIKE' | 'ILIKE'): SelectQueryBuilder<any, any, any> | null {
  let query = db.selectFrom('taskyard_tasks').selectAll();
  if (scope !== '*') {
    if (scope.length === 0) return null;
    query = query.where('tenant_id', 'in', [...scope]);
  }
  if (filter.tenantId !== undefined) query = query.where('tenant_id', '=', filter.tenantId);
  if (filter.names?.length) query = query.where('name', 'in', filter.names);
  if (filter.categories?.length) query = query.where('category', 'in', filter.categories);
  if (filter.states?.length) query = query.where('state', 'in', filter.states);
  if (filter.queues?.length) query = query.where('queue', 'in', filter.queues);
  if (filter.since !== undefined) query = query.where('created_at', '>=', filter.since);
  if (filter.until !== undefined) query = query.where('created_at', '<', filter.until);
  if (filter.search) {
    // Bound parameters; % and _ in the text are literal, not wildcards.
    const pattern = `%${filter.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const like = sql.raw(caseless);
    query = query.where(sql<boolean>`(id = ${filter.search} OR error ${like} ${pattern} ESCAPE '\\' OR params ${like} ${pattern} ESCAPE '\\')`);
  }
  if (filter.cursor !== undefined) query = query.where('id', '<', filter.cursor);
  return query.orderBy('id', 'desc').limit(filter.limit + 1);
}

/** A page from the rows of `listQuery`. */
export function pageOf(rows: Row[], limit: number): TaskPage {
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  return { tasks: page.map(rowToRecord), nextCursor: more ? page[page.length - 1]!.id : null };
}
