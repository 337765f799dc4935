/**
 * Many users each sending one message on the `slow` workflow while something breaks (a Redis
 * primary killed, Redis itself killed and restarted), and what each of them must end with: the
 * stored timeline, each index once, and the transcript of an undisturbed run (or of a re-run: the
 * cut-off reply closed, then the reply whole, as after a crashed worker).
 */
import { TestSocket, type Envelope } from '@tessera/kit/testing';
import { http, token, transcript, wsUrl, type RuntimeInstance } from './harness';

export interface StreamingChat {
  user: string;
  tok: string;
  chatId: string;
}

export async function newSlowChat(api: RuntimeInstance, user: string): Promise<StreamingChat> {
  const tok = await token(user);
  const r = await http(api.url, 'POST', '/api/chats/app1/slow/start', { user_id: user }, tok);
  if (r.status !== 201) throw new Error(`start: ${r.status}`);
  return { user, tok, chatId: r.body.chat_id as string };
}

/**
 * One user's chat: sends its message once, and if its socket drops, reconnects and resumes from
 * the last index it holds, as the client library does. Done at the turn's `chat.run_complete`.
 * `started` is called when its reply begins to stream.
 */
export async function followChat(api: RuntimeInstance, chat: StreamingChat, started: () => void = () => undefined) {
  const applied = new Map<number, Envelope>();
  let received = 0;
  let sent = false;
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    const c = await TestSocket.connect(wsUrl(api.wsUrl, 'slow', 'app1', chat.chatId, chat.user, chat.tok));
    const last = applied.size ? Math.max(...applied.keys()) : 0;
    c.send({ type: 'client.resume', chat_id: chat.chatId, lastClientIndex: last });
    await c.waitType('chat.resume_boundary').catch(() => undefined);
    if (!sent) {
      c.send({ type: 'user.input.submit', text: 'alpha', client_message_id: `${chat.user}-1` });
      sent = true;
    }
    await c.waitFor((m) => m.type === 'chat.text', 60_000).then(started, () => undefined);
    const ended = await c.waitFor((m) => m.type === 'chat.run_complete', Math.max(1, deadline - Date.now())).then(
      () => true,
      () => false,
    );
    await c.close();
    for (const e of c.timeline()) {
      received++;
      applied.set(e.index!, e);
    }
    if (ended) break;
  }
  return { applied, received };
}

/** What is wrong with each user's end state, compared with the log and an undisturbed run's transcript (empty: nothing). */
export async function problemsOf(
  api: RuntimeInstance,
  chats: StreamingChat[],
  results: Awaited<ReturnType<typeof followChat>>[],
  reference: string[],
): Promise<{ problems: string[]; endedAt: number[] }> {
  const problems: string[] = [];
  const endedAt: number[] = [];
  for (const [i, { applied, received }] of results.entries()) {
    const chat = chats[i];
    const stored = await api.s.timeline.after(chat.chatId, 0, 10_000);
    const indexes = [...applied.keys()].sort((a, b) => a - b);
    if (received !== applied.size) problems.push(`${chat.user}: ${received - applied.size} events twice`);
    if (indexes.join() !== stored.map((e) => e.index).join()) problems.push(`${chat.user}: holds ${indexes.length} of ${stored.length} stored events`);
    const lines = transcript([...applied.values()]);
    const end = [...applied.values()].find((e) => e.type === 'chat.run_complete');
    if (end?.data.status !== 'completed') problems.push(`${chat.user}: the turn ended ${end?.data.status ?? 'never'}`);
    if (end) endedAt.push(Date.parse(end.timestamp!));
    // Re-run: what each cut-off attempt streamed stays, closed as it was cut off, then the reply
    // whole. An attempt cut off after its last word (before its end was saved) streamed it all.
    const [user, ...replies] = lines.slice(0, -1);
    const reply = reference[1].replace('assistant:narrator: ', '');
    const cut = replies.slice(0, -1).map((l) => l.replace('assistant:narrator: ', ''));
    const asUndisturbed = [user, replies[replies.length - 1], lines[lines.length - 1]].join('\n') === reference.join('\n');
    if (!asUndisturbed || !cut.every((c) => reply.startsWith(c))) problems.push(`${chat.user}: transcript ${JSON.stringify(lines)}`);
    if (cut.length > 1) problems.push(`${chat.user}: run ${cut.length + 1} times`);
  }
  return { problems, endedAt };
}

/** An undisturbed run's transcript: user, the reply, run_complete. */
export async function referenceTranscript(api: RuntimeInstance): Promise<string[]> {
  const { applied } = await followChat(api, await newSlowChat(api, 'reference'));
  return transcript([...applied.values()]);
}
