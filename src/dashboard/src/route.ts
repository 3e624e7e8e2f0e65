import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routing (`#/tasks?state=FAILURE`): every view and its filters live in the URL, so a
 * view can be bookmarked and shared, and the server only ever serves `/`.
 */

export interface Route {
  /** Path segments, e.g. ['tasks', '0199…']. */
  path: string[];
  query: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const text = hash.replace(/^#/, '');
  const [pathPart = '', queryPart = ''] = text.split('?', 2) as [string?, string?];
  const path = pathPart.split('/').filter(Boolean).map((p) => decodeURIComponent(p));
  return { path, query: new URLSearchParams(queryPart) };
}

export function href(path: string[], query?: URLSearchParams | Record<string, string | undefined>): string {
  const params =
    query instanceof URLSearchParams
      ? query
      : new URLSearchParams(Object.entries(query ?? {}).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''));
  const text = params.toString();
  return `#/${path.map(encodeURIComponent).join('/')}${text ? `?${text}` : ''}`;
}

export function navigate(target: string, options: { replace?: boolean } = {}): void {
  if (options.replace) {
    history.replaceState(history.state, '', target);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    location.hash = target;
  }
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const update = () => setRoute(parseHash(location.hash));
    window.addEventListener('hashchange', update);
    return () => window.removeEventListener('hashchange', update);
  }, []);
  return route;
}
