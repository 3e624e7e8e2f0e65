import type { TaskState } from '../api';

interface Props {
  value: number;
  message?: string | null;
  state?: TaskState;
  /** What the bar measures, for screen readers. */
  label: string;
}

export function ProgressBar({ value, message, state, label }: Props) {
  const clamped = Math.max(0, Math.min(100, Math.round(value)));
  return (
    <div class="progress">
      <div
        class={`progress-track progress-${(state ?? 'STARTED').toLowerCase()}`}
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={clamped}
        aria-valuetext={message ? `${clamped}%: ${message}` : `${clamped}%`}
      >
        <div class="progress-fill" style={{ width: `${clamped}%` }} />
      </div>
      <span class="progress-text">
        <span class="progress-value">{clamped}%</span>
        {message ? <span class="progress-message" title={message}> {message}</span> : null}
      </span>
    </div>
  );
}
