import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Principal, TaskTypes } from './api';

export interface AppState {
  principal: Principal;
  /** Operators and admins launch, cancel and retry; viewers only read. */
  canAct: boolean;
  /** Task definitions with their parameter schemas; null until loaded. */
  types: TaskTypes | null;
  toast(message: string, tone?: 'ok' | 'error'): void;
}

export const AppContext = createContext<AppState | null>(null);

export function useApp(): AppState {
  const state = useContext(AppContext);
  if (!state) throw new Error('useApp outside AppContext');
  return state;
}
