import { PostgresDialect, type DatabaseIntrospector, type DatabaseMetadata, type Kysely, type PostgresDialectConfig, type TableMetadata } from 'kysely';

/**
 * The PostgreSQL dialect the migrator runs on. Kysely's own introspector reads every column of
 * every table in the database to learn whether the migration table exists, so it slows down with
 * the database's size and fails ("schema ... does not exist") when another schema is dropped while
 * it reads. This one asks about the ledger's schema alone; the migrator needs no more.
 */
export class LedgerSchemaDialect extends PostgresDialect {
  constructor(
    config: PostgresDialectConfig,
    private readonly schema: string,
  ) {
    super(config);
  }

  override createIntrospector(db: Kysely<any>): DatabaseIntrospector { // eslint-disable-line @typescript-eslint/no-explicit-any
    const schema = this.schema;
    const getTables = async (): Promise<TableMetadata[]> => {
      const rows = await db
        .selectFrom('pg_catalog.pg_tables')
        .select(['tablename'])
        .where('schemaname', '=', schema)
        .execute();
      return rows.map((row: { tablename: string }) => ({ name: row.tablename, schema, isView: false, columns: [] }));
    };
    return {
      getSchemas: async () => [{ name: schema }],
      getTables,
      getMetadata: async (): Promise<DatabaseMetadata> => ({ tables: await getTables() }),
    };
  }
}
