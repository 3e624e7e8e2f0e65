import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, session, setUnauthorizedHandler, type Principal, type TaskTypes } from './api';
import { Toasts, type Toast } from './components/Toasts';
import { AppContext, type AppState } from './context';
import { stream, type StreamStatus } from './events';
import { href, useRoute } from './route';
import { ThemeToggle } from './theme';
import { LaunchView } from './views/LaunchView';
import { OverviewView } from './views/OverviewView';
import { SignIn } from './views/SignIn';
import { TaskDetail } from './views/TaskDetail';
import { TasksView } from './views/TasksView';
import { TenantDetail, TenantsView } from './views/TenantsView';

type Auth =
  | { status: 'checking' }
  | { status: 'signed-out'; message?: string }
  | { status: 'ready'; principal: Principal }
  | { status: 'unreachable'; message: string };

export function App() {
  const [auth, setAuth] = useState<Auth>({ status: 'checking' });

  const check = useCallback(async () => {
    try {
      // Without a stored key this asks whether the server needs one: protected mode answers 200.
      const principal = await api<Principal>('/api/whoami', { key: session.key });
      setAuth({ status: 'ready', principal });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        const hadKey = session.key !== null;
        session.key = null;
        setAuth({ status: 'signed-out', message: hadKey ? 'Your key was not accepted; sign in again.' : undefined });
      } else {
        setAuth({ status: 'unreachable', message: error instanceof ApiError ? error.detail : 'The server cannot be reached.' });
      }
    }
  }, []);

  useEffect(() => {
    setUnauthorizedHandler(() => {
      session.key = null;
      stream.stop();
      setAuth({ status: 'signed-out', message: 'Your session ended; sign in again.' });
    });
    void check();
  }, [check]);

  const signOut = () => {
    session.key = null;
    stream.stop();
    setAuth({ status: 'signed-out', message: 'Signed out.' });
  };

  if (auth.status === 'checking') return <p class="center muted">Loading…</p>;
  if (auth.status === 'unreachable')
    return (
      <main class="center">
        <h1>Taskyard</h1>
        <p role="alert">{auth.message}</p>
        <button type="button" onClick={() => void check()}>Try again</button>
      </main>
    );
  if (auth.status === 'signed-out')
    return (
      <SignIn
        message={auth.message}
        onSignedIn={(principal, key) => {
          session.key = key;
          setAuth({ status: 'ready', principal });
        }}
      />
    );
  return <Shell principal={auth.principal} onSignOut={signOut} />;
}

function Shell({ principal, onSignOut }: { principal: Principal; onSignOut(): void }) {
  const route = useRoute();
  const [types, setTypes] = useState<TaskTypes | null>(null);
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [status, setStatus] = useState<StreamStatus>(stream.status);
  const nextToast = useRef(1);

  useEffect(() => {
    const off = stream.onStatus(setStatus);
    stream.start();
    api<TaskTypes>('/api/tasks/types').then(setTypes, () => setTypes({ categories: [] }));
    return () => {
      off();
      stream.stop();
    };
  }, []);

  const app = useMemo<AppState>(
    () => ({
      principal,
      canAct: principal.role !== 'viewer',
      types,
      toast(message, tone = 'ok') {
        const id = nextToast.current++;
        setToasts((list) => [...list, { id, message, tone }]);
        setTimeout(() => setToasts((list) => list.filter((t) => t.id !== id)), 5000);
      },
    }),
    [principal, types],
  );

  const [section = 'tasks', id] = route.path;
  let view;
  if (section === 'tasks' && id) view = <TaskDetail key={id} id={id} />;
  else if (section === 'tasks') view = <TasksView query={route.query} />;
  else if (section === 'launch') view = <LaunchView query={route.query} />;
  else if (section === 'overview') view = <OverviewView />;
  else if (section === 'tenants' && id) view = <TenantDetail key={id} tenant={id} />;
  else if (section === 'tenants') view = <TenantsView />;
  else view = <p>Nothing here. <a href={href(['tasks'])}>Go to the tasks</a>.</p>;

  const nav: Array<[string, string, boolean]> = [
    ['tasks', 'Tasks', true],
    ['overview', 'Overview', true],
    ['tenants', 'Tenants', true],
    ['launch', 'Launch', app.canAct],
  ];

  return (
    <AppContext.Provider value={app}>
      <a class="skip-link" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href={href(['tasks'])}>Taskyard</a>
        <nav aria-label="Main">
          <ul>
            {nav
              .filter(([, , shown]) => shown)
              .map(([path, label]) => (
                <li key={path}>
                  <a href={href([path])} aria-current={section === path ? 'page' : undefined}>{label}</a>
                </li>
              ))}
          </ul>
        </nav>
        <div class="topbar-end">
          <span class={`live live-${status}`} title="Live event stream" role="status">
            <span class="dot" aria-hidden="true" />
            {status === 'live' ? 'Live' : status === 'connecting' ? 'Connecting…' : 'Reconnecting…'}
          </span>
          <span class="whoami" data-testid="whoami">
            {principal.anonymous ? 'Local (no sign-in)' : principal.role}
            {principal.tenants !== '*' ? ` · tenants ${principal.tenants.join(', ') || 'none'}` : ''}
          </span>
          <ThemeToggle />
          {principal.anonymous ? null : (
            <button type="button" onClick={onSignOut}>Sign out</button>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>{view}</main>
      <Toasts toasts={toasts} />
    </AppContext.Provider>
  );
}
