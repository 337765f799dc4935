import type { Response } from 'express';
import { randomUUID } from 'node:crypto';
import {
  InputBody,
  InputParams,
  InputReply,
  ToolRespondBody,
  ToolRespondReply,
  UploadFields,
  UploadReply,
  ChatId,
  AppId,
  toStorableText,
  type RouteSpec,
} from '@tessera/contracts';
import { assertOwner, BadRequest, ClientGone, lastValues, NotFound, parseOr400, receiveMultipart, type MultipartBody, type Principal } from '@tessera/kit';
import { z } from 'zod';
import { relayUpload } from '../attachments/upload-relay';
import type { RuntimeRoutes, RuntimeServices } from '../services';
import { budgetSpent } from './chats';
import type { ChatRow } from '../store/chats';
import { InputRefused } from '../turns/chat-inputs';
import { ownedChat } from './access';

const sendInput = {
  method: 'post',
  path: '/chat/{app_id}/{chat_id}/{user_id}/input',
  access: 'owner',
  summary: 'Send a user message over HTTP (fallback for the socket)',
  tags: ['input'],
  params: InputParams,
  body: InputBody,
  responses: { 202: { description: 'accepted; the turn streams on the socket', schema: InputReply }, ...budgetSpent },
} as const satisfies RouteSpec;
const respondToolCall = {
  method: 'post',
  path: '/api/tool-call/respond',
  access: 'owner',
  summary: 'Answer a UI tool call that awaits a response',
  tags: ['input'],
  body: ToolRespondBody,
  responses: { 202: { description: 'accepted', schema: ToolRespondReply }, ...budgetSpent },
} as const satisfies RouteSpec;
const uploadAttachment = {
  method: 'post',
  path: '/api/chat/upload',
  access: 'owner',
  summary: 'Upload an attachment to a chat (multipart: file, appId, userId, chatId, intent?, bundle_path?); with DOCUMENTS_URL set it streams to the document server, tagged chat-<chatId>',
  tags: ['input'],
  body: UploadFields.extend({ file: z.string().describe('the file (binary)') }),
  bodyMediaType: 'multipart/form-data',
  responses: { 201: { description: 'stored; chat.attachment_uploaded is emitted', schema: UploadReply } },
} as const satisfies RouteSpec;
const stopChat = {
  method: 'post',
  path: '/api/chats/{app_id}/{chat_id}/stop',
  access: 'owner',
  summary: "Stop the chat's running turn (publishes the session stop control message)",
  tags: ['chats'],
  params: z.object({ app_id: AppId, chat_id: ChatId }),
  responses: { 202: { description: 'stop requested' } },
} as const satisfies RouteSpec;

export const inputRoutes: RouteSpec[] = [sendInput, respondToolCall, uploadAttachment, stopChat];

export function inputsRoutes(routes: RuntimeRoutes, s: RuntimeServices): void {
  routes.route(sendInput, async ({ params: p, body }, req, res) => {
    assertOwner(req.principal, p.user_id, p.app_id);
    const chat = await ownedChat(s.chats, req.principal, p.chat_id, p.app_id);
    if (chat.userId !== p.user_id) throw new NotFound(`no chat "${p.chat_id}"`);
    if (body.workflow_name !== chat.workflowName) throw new BadRequest(`chat "${chat.id}" runs workflow "${chat.workflowName}", not "${body.workflow_name}"`);
    const { input } = await s.chatInputs.submitMessage(chat, body.message, body.client_message_id, undefined, body.multitask_strategy);
    const reply: z.infer<typeof InputReply> = { accepted: true, input_id: input.id, chat_id: chat.id };
    res.status(202).json(reply);
  });

  routes.route(respondToolCall, async ({ body }, req, res) => {
    const principal = req.principal as Principal;
    const { chat, toolCall } = await s.chatInputs.respondToolCall(null, body.event_id, body.response_data, (c) => {
      if (!principal.anonymous && principal.sub !== c.userId) throw new InputRefused('TOOL_CALL_NOT_FOUND', `no tool call "${body.event_id}"`, 404);
      assertOwner(principal, c.userId, c.appId);
    });
    const reply: z.infer<typeof ToolRespondReply> = { accepted: true, event_id: toolCall.eventId, chat_id: chat.id };
    res.status(202).json(reply);
  });

  /** Announces a stored attachment on the chat's timeline and answers with it (both storage paths). */
  async function uploaded(res: Response, chat: ChatRow, userId: string, reply: z.infer<typeof UploadReply>) {
    const stored = await s.timeline.record(
      chat.id,
      [{ key: `attachment:${reply.attachment_id}`, type: 'chat.attachment_uploaded', data: { ...reply, chat_id: undefined, uploaded_by: userId } }],
      s.feed,
    );
    s.observe(chat, stored);
    res.status(201).json(reply);
  }

  // DOCUMENTS_URL set: the file streams through to the document server, tagged with the chat.
  const documents = s.documents;
  if (documents) {
    routes.route(uploadAttachment, async (_input, req, res) => {
      let relayed: Awaited<ReturnType<typeof relayUpload>>;
      try {
        relayed = await relayUpload(req, documents, {
          maxBytes: s.config.UPLOAD_MAX_BYTES,
          authorize: async (f) => {
            assertOwner(req.principal, f.userId, f.appId);
            return ownedChat(s.chats, req.principal, f.chatId, f.appId);
          },
        });
      } catch (e) {
        // What is left of the body is not read: the connection closes after the answer.
        res.setHeader('Connection', 'close');
        if (e instanceof ClientGone) return void s.logger.debug('upload aborted by the client', { request_id: req.id });
        throw e;
      }
      const { fields, chat, doc } = relayed;
      await uploaded(res, chat, fields.userId, {
        attachment_id: doc.id,
        chat_id: chat.id,
        filename: doc.filename,
        size: doc.size,
        content_type: doc.content_type,
        intent: fields.intent ?? null,
        bundle_path: fields.bundle_path ?? null,
      });
    });
  } else {
    // DOCUMENTS_URL=off: the file is kept in the runtime's database (bytea), as before the document server.
    routes.route(uploadAttachment, async (_input, req, res) => {
      let body: MultipartBody<{ filename: string; mimeType: string; data: Buffer }>;
      try {
        body = await receiveMultipart(req, {
          maxFileBytes: s.config.UPLOAD_MAX_BYTES,
          // Held whole: it is stored as one value.
          onFile: async (stream, info) => ({ filename: info.filename, mimeType: info.mimeType, data: Buffer.concat(await stream.toArray()) }),
        });
      } catch (e) {
        // What is left of the body is not read: the connection closes after the answer.
        res.setHeader('Connection', 'close');
        if (e instanceof ClientGone) return void s.logger.debug('upload aborted by the client', { request_id: req.id });
        throw e;
      }
      const fields = parseOr400(UploadFields, lastValues(body.fields), 'form');
      const file = body.file;
      if (!file) throw new BadRequest('invalid form: file: a file is required', { issues: [{ path: 'form.file', message: 'required' }] });
      assertOwner(req.principal, fields.userId, fields.appId);
      const chat = await ownedChat(s.chats, req.principal, fields.chatId, fields.appId);
      const id = randomUUID();
      // A name is the client's label, not an identifier: keep it, with what PostgreSQL cannot store replaced.
      const filename = toStorableText(file.filename.slice(0, 255)) || 'upload';
      const contentType = file.mimeType || 'application/octet-stream';
      await s.attachmentRows.add({
        id,
        chatId: chat.id,
        filename,
        contentType,
        size: file.data.length,
        intent: fields.intent ?? null,
        bundlePath: fields.bundle_path ?? null,
        uploadedBy: fields.userId,
        data: new Uint8Array(file.data),
      });
      await uploaded(res, chat, fields.userId, {
        attachment_id: id,
        chat_id: chat.id,
        filename,
        size: file.data.length,
        content_type: contentType,
        intent: fields.intent ?? null,
        bundle_path: fields.bundle_path ?? null,
      });
    });
  }

  routes.route(stopChat, async ({ params: p }, req, res) => {
    const chat = await ownedChat(s.chats, req.principal, p.chat_id, p.app_id);
    await s.feed.publishControl({ action: 'stop', session_id: chat.id, app_id: chat.appId, requested_by: req.principal?.sub });
    res.status(202).json({ accepted: true, chat_id: chat.id });
  });
}
