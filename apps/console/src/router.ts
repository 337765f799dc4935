import { useSyncExternalStore } from 'react';

/** The console's pages are paths under /console; the gateway answers each with index.html. */
export const BASE = '/console';

const listeners = new Set<() => void>();
window.addEventListener('popstate', () => listeners.forEach((l) => l()));

export function navigate(path: string): void {
  history.pushState(null, '', BASE + path);
  listeners.forEach((l) => l());
}

/** The Sessions page with this session open beside the list. */
export const sessionPath = (id: string) => `/sessions/${encodeURIComponent(id)}`;

/** The path below /console, e.g. `/sessions/abc` (`/` for the console's root). */
export function usePath(): string {
  return useSyncExternalStore(
    (l) => (listeners.add(l), () => listeners.delete(l)),
    () => location.pathname.slice(BASE.length) || '/',
  );
}
