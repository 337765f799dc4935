/**
 * A message sent while the runtime's storage is out of reach: the runtime refuses it with
 * `chat.error` `UNAVAILABLE` (it was not stored), and the client keeps it pending and sends it
 * again, with backoff, on the same socket. Once PostgreSQL is back it is stored once and answered.
 * The runtime runs as in production (an API process, a turn worker); only its API process reaches
 * PostgreSQL through a relay the test takes down.
 */
import { ChatConnection, type ChatEvent } from '../src';
import { completed, hostFor, memoryStorage, newChat, record, transcript, waitFor } from './helpers';
import { runtimeForThisFile, type RuntimeProcess } from './runtime-process';

jest.setTimeout(90_000);
let rt: RuntimeProcess;
runtimeForThisFile((started) => (rt = started), { databaseRelay: true });

const refusedAsUnavailable = (all: ChatEvent[]) => all.filter((e) => e.kind === 'control' && e.event.type === 'chat.error' && e.event.data.error_code === 'UNAVAILABLE');

test('a message refused as UNAVAILABLE while PostgreSQL is away is sent again until it is stored, then answered once', async () => {
  const ids = await newChat(rt, 'patient', 'storyteller');
  const r = record(new ChatConnection(hostFor(rt, ids.userId, memoryStorage()), ids, { backoff: { initialMs: 100, maxMs: 400 } }));
  r.conn.connect();
  try {
    await waitFor(() => r.conn.status === 'live', 'the connection to be live');

    await rt.database!.down();
    const sockets = r.all.filter((e) => e.kind === 'socket_closed').length;
    const id = r.conn.send('once upon a time');
    // Refused, then sent again and refused again: the client retries on its own.
    await waitFor(() => refusedAsUnavailable(r.all).length >= 3, 'the message to be refused three times as UNAVAILABLE');
    expect(r.conn.pendingActions.map((a) => a.client_message_id)).toEqual([id]);
    expect(r.all.filter((e) => e.kind === 'rejected')).toEqual([]);
    expect(r.conn.status).toBe('live');

    await rt.database!.up();
    await waitFor(() => completed(r.timeline) === 1, 'the turn to complete', 30_000);
    expect(r.conn.pendingActions).toEqual([]);
    const lines = transcript(r.timeline);
    expect(lines.filter((l) => l.startsWith('user:'))).toEqual(['user:user: once upon a time']);
    expect(lines.filter((l) => l.startsWith('assistant:'))).toHaveLength(1);
    expect(lines[lines.length - 1]).toBe('chat.run_complete');
    // Every event once, and the socket it was sent on stayed open throughout.
    expect(new Set(r.timeline.map((e) => e.index)).size).toBe(r.timeline.length);
    expect(r.all.filter((e) => e.kind === 'socket_closed').length).toBe(sockets);
  } finally {
    // Closed however the test ends: an open connection keeps reconnecting and jest from exiting.
    r.conn.close();
  }
});
