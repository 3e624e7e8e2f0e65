import { useState } from 'preact/hooks';
import { api, ApiError, type Principal } from '../api';

interface Props {
  message?: string;
  onSignedIn(principal: Principal, key: string): void;
}

/** Sign-in with an API key. The key is checked against the server before it is kept (for this tab only). */
export function SignIn({ message, onSignedIn }: Props) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    const value = key.trim();
    if (!value) {
      setError('Enter an API key.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const principal = await api<Principal>('/api/whoami', { key: value });
      onSignedIn(principal, value);
    } catch (e) {
      setError(e instanceof ApiError && e.status === 401 ? 'That key was not accepted.' : e instanceof ApiError ? e.detail : 'The server cannot be reached.');
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="signin">
      <form class="card" onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">Taskyard</h1>
        <p class="muted">Sign in with an API key to see and control your tasks.</p>
        {message ? <p class="notice" role="status">{message}</p> : null}
        <div class={`field${error ? ' field-error' : ''}`}>
          <label for="api-key">API key</label>
          <input
            id="api-key"
            type="password"
            autocomplete="off"
            spellcheck={false}
            value={key}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? 'api-key-error' : 'api-key-help'}
            onInput={(e) => setKey(e.currentTarget.value)}
          />
          <small id="api-key-help" class="help">Kept only in this browser tab, and forgotten when it closes.</small>
          {error ? <small id="api-key-error" class="error-text" role="alert">{error}</small> : null}
        </div>
        <button type="submit" class="primary" disabled={busy}>{busy ? 'Checking…' : 'Sign in'}</button>
      </form>
    </main>
  );
}
