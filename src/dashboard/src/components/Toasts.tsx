export interface Toast {
  id: number;
  message: string;
  tone: 'ok' | 'error';
}

/** Short notices after an action, announced to screen readers. */
export function Toasts({ toasts }: { toasts: Toast[] }) {
  return (
    <div class="toasts" role="status" aria-live="polite">
      {toasts.map((t) => (
        <div key={t.id} class={`toast toast-${t.tone}`}>{t.message}</div>
      ))}
    </div>
  );
}
