interface Row {
  key: string;
  label: string;
  href?: string;
  /** Bar length, 0..1. */
  ratio: number;
  cells: string[];
}

interface Props {
  caption: string;
  columns: string[];
  rows: Row[];
  empty: string;
  tone?: 'ok' | 'bad';
}

/**
 * A horizontal bar chart that is also a table: long task names stay readable, and the numbers
 * are text for screen readers and copy-paste.
 */
export function BarTable({ caption, columns, rows, empty, tone = 'ok' }: Props) {
  if (rows.length === 0) return <p class="muted">{empty}</p>;
  return (
    <div class="table-wrap">
      <table class={`bars bars-${tone}`}>
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            {columns.map((c, i) => (
              <th key={c} scope="col" class={i > 0 ? 'num' : undefined}>{c}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.key}>
              <th scope="row">
                {row.href ? <a href={row.href} class="mono small">{row.label}</a> : <span class="mono small">{row.label}</span>}
                <div class="bar" aria-hidden="true">
                  <div class="bar-fill" style={{ width: `${Math.max(0, Math.min(1, row.ratio)) * 100}%` }} />
                </div>
              </th>
              {row.cells.map((cell, i) => (
                <td key={i} class="num">{cell}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
