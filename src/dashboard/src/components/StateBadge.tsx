import type { TaskState } from '../api';

/** A run's state as a coloured badge; the text is the state itself, so colour is never the only cue. */
export function StateBadge({ state }: { state: TaskState }) {
  return <span class={`badge badge-${state.toLowerCase()}`} data-state={state}>{state}</span>;
}
