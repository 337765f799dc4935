/** A learner's socket for Mission Ally tests: every message kept in order, and the close. */
import WebSocket from 'ws';
import { http, token } from './harness';

export type Msg = { type: string; [k: string]: any };

export class Learner {
  readonly messages: Msg[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      this.messages.push(JSON.parse(d.toString()));
      this.waiters.forEach((w) => w());
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('error', () => undefined);
    this.closed.then(() => this.waiters.forEach((w) => w()));
  }

  static open(url: string, headers: Record<string, string> = {}): Learner {
    return new Learner(new WebSocket(url, { headers }));
  }

  send(m: unknown): void {
    this.ws.send(typeof m === 'string' ? m : JSON.stringify(m));
  }

  say(text: string): void {
    this.send({ type: 'user_message', message: text });
  }

  /** Resolves once `pred` holds over the messages so far (or fails after `ms`). */
  async until(pred: (msgs: Msg[]) => boolean, ms = 15_000): Promise<Msg[]> {
    const deadline = Date.now() + ms;
    while (!pred(this.messages)) {
      if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(this.messages).slice(-1500)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
      this.waiters = [];
    }
    return this.messages;
  }

  /** Waits for `n` agent_processing_end messages in all. */
  ends(n: number, ms?: number) {
    return this.until((ms_) => ms_.filter((x) => x.type === 'agent_processing_end').length >= n, ms);
  }

  types(): string[] {
    return this.messages.map((m) => m.type);
  }

  close(): Promise<unknown> {
    this.ws.close();
    return this.closed;
  }
}

export const MISSION = {
  app_id: 'app1',
  title: 'Ship a workflow',
  checkpoints: [
    { id: 'cp_install', title: 'Install the tools', keyword: 'installed' },
    { id: 'cp_run', title: 'Run a workflow', keyword: 'ran it' },
  ],
};

export const operatorToken = () => token('ops', ['app1'], { roles: ['operator'] });

/** Creates a mission through the operator API and enrolls `users`; returns its id. */
export async function createMission(base: string, users: string[], body: Record<string, unknown> = {}): Promise<string> {
  const op = await operatorToken();
  const r = await http(base, 'POST', '/api/v1/mission-ally/missions', { ...MISSION, ...body }, op);
  if (r.status !== 201) throw new Error(`create mission: ${r.status} ${JSON.stringify(r.body)}`);
  const id = (r.body as { id: string }).id;
  for (const u of users) {
    const e = await http(base, 'POST', `/api/v1/mission-ally/missions/${id}/enrollments`, { user_id: u }, op);
    if (e.status !== 201) throw new Error(`enroll: ${e.status}`);
  }
  return id;
}

export function missionUrl(base: string, missionId: string | null, tok?: string): string {
  const q = new URLSearchParams();
  if (missionId !== null) q.set('mission_id', missionId);
  if (tok) q.set('token', tok);
  return `${base.replace('http', 'ws')}/api/v1/mission-ally/ws?${q}`;
}
