import { observability } from '@tessera/contracts';

const MAX = observability.TITLE_MAX;

/**
 * A session's title from a user's message: its text on one line (runs of white space as one
 * space), cut to at most TITLE_MAX characters (code points, so a surrogate pair is never split),
 * at the last word boundary when there is one in the second half, with '…' saying it was cut.
 * Null for a message with no text.
 */
export function titleOf(text: string | null | undefined): string | null {
  if (typeof text !== 'string') return null;
  const line = text.replace(/\s+/gu, ' ').trim();
  if (line === '') return null;
  const chars = Array.from(line);
  if (chars.length <= MAX) return line;
  const head = chars.slice(0, MAX).join('');
  const space = head.lastIndexOf(' ');
  const cut = space >= head.length / 2 ? head.slice(0, space) : head;
  return `${cut.trimEnd()}…`;
}

/**
 * What a list shows for a session: its name when it has one, else the title its first user
 * message gave it. An OpenTelemetry session's name is its agent's or root span's (no one chose
 * it, and the agent has a column of its own): its first user message comes first.
 */
export function displayTitle(name: string, title: string | null, source?: string): string | null {
  if (source === 'otel') return title ?? titleOf(name);
  return titleOf(name) ?? title;
}
