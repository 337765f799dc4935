import { randomUUID } from 'node:crypto';
import { Prisma, type PrismaClient } from '../../prisma/generated/client';
import type { TurnInput } from '../engine/types';

export type InputRow = Prisma.ChatInputGetPayload<object>;
export type InputKind = TurnInput['kind'];

/**
 * Input waiting for a turn, in arrival order. A turn takes the oldest input that is not done;
 * one still `processing` belongs to a worker that died and is taken up again.
 */
export class InputStore {
  constructor(private readonly prisma: PrismaClient) {}

  /** Adds an input; the same client_message_id on a chat gives back the first one (duplicate: true). */
  async add(chatId: string, input: TurnInput, clientMessageId?: string): Promise<{ input: InputRow; duplicate: boolean }> {
    try {
      const row = await this.prisma.chatInput.create({
        data: { id: randomUUID(), chatId, kind: input.kind, payload: input as unknown as Prisma.InputJsonValue, clientMessageId: clientMessageId ?? null },
      });
      return { input: row, duplicate: false };
    } catch (e) {
      if (clientMessageId && e instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2002') {
        const row = await this.prisma.chatInput.findUnique({ where: { chatId_clientMessageId: { chatId, clientMessageId } } });
        if (row) return { input: row, duplicate: true };
      }
      throw e;
    }
  }

  next(chatId: string): Promise<InputRow | null> {
    return this.prisma.chatInput.findFirst({ where: { chatId, status: { in: ['pending', 'processing'] } }, orderBy: { seq: 'asc' } });
  }

  get(id: string): Promise<InputRow | null> {
    return this.prisma.chatInput.findUnique({ where: { id } });
  }

  markProcessing(id: string) {
    return this.prisma.chatInput.update({ where: { id }, data: { status: 'processing' } });
  }

  markDone(id: string, status: 'done' | 'cancelled' = 'done') {
    return this.prisma.chatInput.update({ where: { id }, data: { status, doneAt: new Date() } });
  }

  /** After a stop: what was waiting is dropped, so the chat stays stopped. */
  cancelPending(chatId: string) {
    return this.prisma.chatInput.updateMany({ where: { chatId, status: 'pending' }, data: { status: 'cancelled', doneAt: new Date() } });
  }

  async hasPending(chatId: string): Promise<boolean> {
    return (await this.prisma.chatInput.count({ where: { chatId, status: { in: ['pending', 'processing'] } } })) > 0;
  }
}

export function turnInputOf(row: InputRow): TurnInput {
  return row.payload as unknown as TurnInput;
}
