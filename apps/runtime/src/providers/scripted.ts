/**
 * The scripted provider: deterministic replies declared in the workflow file, no network. It is the
 * default provider, the one demos and tests run on, and the one the turn benchmark measures, so the
 * path with `tokenDelayMs = 0` sets no timers and allocates little.
 *
 * Choice of reply (`req.declared?.script`, tried in order):
 * - after a tool result, an entry `when: "@tool:<tool_name>"` naming that tool wins;
 * - otherwise the first entry whose `when` is a case-insensitive substring of the last user message
 *   (an entry without `when` matches anything); `@tool:` entries never match a user message, and
 *   after a tool result entries with tool calls are skipped, so an agent cannot loop on its own call;
 * - no script at all: `You said: <last user message>`; a script with no match after a tool result:
 *   an empty reply (the turn ends);
 * - `when: "@checkpoint"` (Mission Ally's scripted tutor): matches when the last user message holds
 *   the keyword (or id) of a checkpoint of `context.mission` not completed yet in this
 *   conversation; its `complete_checkpoint` call gets that checkpoint's id.
 */
import type { ScriptedReply } from '@tessera/contracts';
import { abortError } from './errors';
import { getPath, renderDeep, renderTemplate, type TemplateLookup } from './template';
import type { ModelChunk, ModelMessage, ModelProvider, ModelRequest } from './types';

const TOOL_WHEN = '@tool:';
const CHECKPOINT_WHEN = '@checkpoint';

export function createScriptedProvider(): ModelProvider {
  return { name: 'scripted', deterministic: true, stream: streamScripted };
}

async function* streamScripted(req: ModelRequest, signal: AbortSignal): AsyncGenerator<ModelChunk> {
  if (signal.aborted) throw abortError();
  const { messages } = req;
  const last = messages[messages.length - 1];
  const afterTool = last?.role === 'tool';
  const checkpoint = req.declared?.script?.some((r) => r.when === CHECKPOINT_WHEN) ? checkpointMentioned(req) : undefined;
  const reply = pickReply(req.declared?.script, messages, afterTool ? last.tool_name : undefined, checkpoint !== undefined);
  const lookup = scopeOf(req);

  let text: string;
  if (reply) text = reply.text === undefined ? '' : renderTemplate(reply.text, lookup);
  else if (!req.declared?.script?.length) text = `You said: ${lastUserMessage(messages)}`;
  else text = '';

  const delay = req.declared?.token_delay_ms ?? 0;
  let words = 0;
  const re = /\S+\s*/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    // Leading whitespace of the text belongs to the first word.
    const word = words === 0 && m.index > 0 ? text.slice(0, re.lastIndex) : m[0];
    if (delay > 0 && words > 0) await sleep(delay, signal);
    else if (signal.aborted) throw abortError();
    words++;
    yield { type: 'text-delta', text: word };
  }

  const calls = reply?.tool_calls ?? [];
  let completion = tokensOf(text);
  for (let i = 0; i < calls.length; i++) {
    if (signal.aborted) throw abortError();
    // Unique in the conversation (every model call adds a message) and the same on a re-run.
    const args = renderDeep(calls[i].args ?? {}, lookup) as Record<string, unknown>;
    if (reply?.when === CHECKPOINT_WHEN && calls[i].tool === 'complete_checkpoint' && checkpoint) args.checkpoint_id = checkpoint;
    completion += MESSAGE_OVERHEAD + tokensOf(calls[i].tool) + jsonTokens(args);
    yield { type: 'tool-call', id: `call_${messages.length}_${i + 1}`, name: calls[i].tool, args };
  }

  if (signal.aborted) throw abortError();
  const prompt = promptTokens(req);
  yield {
    type: 'finish',
    reason: calls.length > 0 ? 'tool-calls' : 'stop',
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
  };
}

export function pickReply(
  script: readonly ScriptedReply[] | undefined,
  messages: readonly ModelMessage[],
  afterToolName?: string,
  checkpointMentioned = false,
): ScriptedReply | undefined {
  if (!script || script.length === 0) return undefined;
  if (afterToolName !== undefined) {
    const want = `${TOOL_WHEN}${afterToolName}`.toLowerCase();
    const hit = script.find((r) => r.when !== undefined && r.when.toLowerCase() === want);
    if (hit) return hit;
  }
  const user = lastUserMessage(messages).toLowerCase();
  for (const r of script) {
    if (afterToolName !== undefined && r.tool_calls && r.tool_calls.length > 0) continue;
    if (r.when === undefined) return r;
    const when = r.when.toLowerCase();
    if (when === CHECKPOINT_WHEN) {
      if (checkpointMentioned && afterToolName === undefined) return r;
      continue;
    }
    if (when.startsWith(TOOL_WHEN)) continue;
    if (user.includes(when)) return r;
  }
  return undefined;
}

function lastUserMessage(messages: readonly ModelMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m.role === 'user') return m.content;
  }
  return '';
}

/** The id of the first checkpoint of `context.mission` the last user message names and that is not completed yet. */
function checkpointMentioned(req: ModelRequest): string | undefined {
  const list = (req.context?.mission as { checkpoints?: { id: string; keyword?: string }[] } | undefined)?.checkpoints;
  if (!Array.isArray(list)) return undefined;
  const done = new Set<string>();
  for (const m of req.messages) {
    if (m.role !== 'tool' || m.tool_name !== 'complete_checkpoint') continue;
    try {
      const r = JSON.parse(m.content) as { ok?: boolean; checkpoint_id?: string };
      if (r.ok && r.checkpoint_id) done.add(r.checkpoint_id);
    } catch {
      /* not ours */
    }
  }
  const user = lastUserMessage(req.messages).toLowerCase();
  return list.find((c) => !done.has(c.id) && user.includes((c.keyword ?? c.id).toLowerCase()))?.id;
}

function lastToolResponse(messages: readonly ModelMessage[]): string | undefined {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m.role === 'tool') return m.content;
  }
  return undefined;
}

function scopeOf(req: ModelRequest): TemplateLookup {
  let parsed: { value: unknown } | undefined;
  return (name) => {
    if (name === 'last_user_message') return lastUserMessage(req.messages);
    // The agent's system prompt as the turn resolved it (a blueprint's, say): a script can show which prompt it ran on.
    if (name === 'system_prompt') return req.system;
    if (name === 'last_tool_response') return lastToolResponse(req.messages);
    if (name.startsWith('last_tool_response.')) {
      if (!parsed) {
        const raw = lastToolResponse(req.messages);
        try {
          parsed = { value: raw === undefined ? undefined : JSON.parse(raw) };
        } catch {
          parsed = { value: undefined };
        }
      }
      return getPath(parsed.value, name.slice('last_tool_response.'.length));
    }
    if (name.startsWith('context.')) return req.context ? getPath(req.context, name.slice(8)) : undefined;
    return undefined;
  };
}

/**
 * Usage as a model server would count it, without a tokenizer: about four characters a token
 * (the rule of thumb of OpenAI's and Anthropic's tokenizers for English), a few tokens of framing
 * per message (OpenAI's cookbook counts 3, and 3 more priming the reply), and the tools'
 * definitions, which a real server bills as part of the prompt.
 */
const MESSAGE_OVERHEAD = 3;
export const tokensOf = (s: string): number => Math.ceil(s.length / 4);
const toolTokens = new WeakMap<object, number>();
const jsonTokens = (v: unknown): number => tokensOf(JSON.stringify(v) ?? '');

export function promptTokens(req: ModelRequest): number {
  let n = MESSAGE_OVERHEAD + (req.system ? MESSAGE_OVERHEAD + tokensOf(req.system) : 0);
  for (const m of req.messages) {
    n += MESSAGE_OVERHEAD + tokensOf(m.content);
    if (m.role === 'assistant') for (const c of m.tool_calls ?? []) n += tokensOf(c.name) + jsonTokens(c.args);
  }
  if (req.tools.length > 0) {
    // An agent's tool list is the same array call after call: measured once.
    let t = toolTokens.get(req.tools);
    if (t === undefined) toolTokens.set(req.tools, (t = jsonTokens(req.tools)));
    n += t;
  }
  return n;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortError());
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
