/** The demo's companies (tenants), as the seeds name them. */
export interface DemoCompany {
  id: string;
  name: string;
}

export const DEMO_COMPANIES: readonly DemoCompany[] = Object.freeze([
  { id: '73', name: 'Example Company' },
  { id: '4', name: 'Tenant 4 SpA' },
  { id: '123e4567-e89b-12d3-a456-426614174000', name: 'Demo Company SpA' },
]);

/** Ids arrive as strings or numbers (`73` vs `"73"`), so compare as strings. */
export function findCompany(id: string | number): DemoCompany | null {
  const key = String(id);
  const company = DEMO_COMPANIES.find((c) => c.id === key);
  return company ? { ...company } : null;
}
