import { prettyJson } from '../format';

/** Pretty-printed JSON in a scrollable, focusable block (keyboard users can scroll it too). */
export function JsonBlock({ value, label }: { value: unknown; label: string }) {
  if (value === null || value === undefined) return <p class="muted">None</p>;
  return (
    <pre class="code" tabIndex={0} aria-label={label}>
      {prettyJson(value)}
    </pre>
  );
}
