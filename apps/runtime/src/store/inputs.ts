import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { Prisma, type PrismaClient } from '../../prisma/generated/client';
import type { TurnInput } from '../engine/types';

export type InputRow = Prisma.ChatInputGetPayload<object>;
export type InputKind = TurnInput['kind'];

/**
 * Input waiting for a turn, in arrival order. A turn takes the oldest input that is not done;
 * one still `processing` belongs to a worker that died and is taken up again.
 */
const COLUMNS = `id, seq, chat_id AS "chatId", kind, payload, status, client_message_id AS "clientMessageId", created_at AS "createdAt", done_at AS "doneAt"`;

/** Rows as Prisma returns them (pg gives bigint as text). */
function toRow(r: Record<string, unknown>): InputRow {
  return { ...r, seq: BigInt(r.seq as string) } as InputRow;
}

export class InputStore {
  /**
   * What a turn does to its inputs runs as prepared pg statements on `pool`: one turn makes
   * several of these calls, and Prisma's per-query compilation cost most of a turn's CPU.
   */
  constructor(
    private readonly prisma: PrismaClient,
    private readonly pool: Pool,
  ) {}

  /** Adds an input; the same client_message_id on a chat gives back the first one (duplicate: true). */
  async add(chatId: string, input: TurnInput, clientMessageId?: string): Promise<{ input: InputRow; duplicate: boolean }> {
    // A client_message_id already used on the chat inserts nothing; the first input is returned.
    const r = await this.pool.query({
      name: 'inputs-add',
      text: `INSERT INTO chat_inputs (id, chat_id, kind, payload, client_message_id) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (chat_id, client_message_id) DO NOTHING RETURNING ${COLUMNS}`,
      values: [randomUUID(), chatId, input.kind, JSON.stringify(input), clientMessageId ?? null],
    });
    if (r.rows[0]) return { input: toRow(r.rows[0]), duplicate: false };
    const first = await this.pool.query({
      name: 'inputs-by-client-id',
      text: `SELECT ${COLUMNS} FROM chat_inputs WHERE chat_id = $1 AND client_message_id = $2`,
      values: [chatId, clientMessageId],
    });
    return { input: toRow(first.rows[0]), duplicate: true };
  }


  async next(chatId: string): Promise<InputRow | null> {
    const r = await this.pool.query({
      name: 'inputs-next',
      text: `SELECT ${COLUMNS} FROM chat_inputs WHERE chat_id = $1 AND status IN ('pending', 'processing') ORDER BY seq LIMIT 1`,
      values: [chatId],
    });
    return r.rows[0] ? toRow(r.rows[0]) : null;
  }

  async get(id: string): Promise<InputRow | null> {
    const r = await this.pool.query({ name: 'inputs-get', text: `SELECT ${COLUMNS} FROM chat_inputs WHERE id = $1`, values: [id] });
    return r.rows[0] ? toRow(r.rows[0]) : null;
  }

  async markProcessing(id: string): Promise<void> {
    await this.pool.query({ name: 'inputs-processing', text: "UPDATE chat_inputs SET status = 'processing' WHERE id = $1", values: [id] });
  }

  async markDone(id: string, status: 'done' | 'cancelled' = 'done'): Promise<void> {
    await this.pool.query({ name: 'inputs-done', text: 'UPDATE chat_inputs SET status = $2, done_at = now() WHERE id = $1', values: [id, status] });
  }

  /** After a stop: what was waiting is dropped, so the chat stays stopped. */
  cancelPending(chatId: string) {
    return this.prisma.chatInput.updateMany({ where: { chatId, status: 'pending' }, data: { status: 'cancelled', doneAt: new Date() } });
  }

  async hasPending(chatId: string): Promise<boolean> {
    const r = await this.pool.query({
      name: 'inputs-has-pending',
      text: "SELECT EXISTS (SELECT 1 FROM chat_inputs WHERE chat_id = $1 AND status IN ('pending', 'processing')) AS pending",
      values: [chatId],
    });
    return r.rows[0].pending === true;
  }
}

export function turnInputOf(row: InputRow): TurnInput {
  return row.payload as unknown as TurnInput;
}
