/**
 * The LangGraph peer's graph: one node that calls a fake chat model streaming the same 20 tokens
 * with no delay, the counterpart of Tessera's `tools/bench/workflows/bench` (scripted reply of
 * exactly 20 words). Served by the in-memory LangGraph API server (tools/bench/langgraph.ts).
 */
import { AIMessageChunk } from '@langchain/core/messages';
import { FakeStreamingChatModel } from '@langchain/core/utils/testing';
import { MessagesAnnotation, StateGraph } from '@langchain/langgraph';

const WORDS = 'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty'.split(' ');

// `chunks` are emitted as they are, without the model's per-character fallback or any sleep.
const model = new FakeStreamingChatModel({
  sleep: 0,
  chunks: WORDS.map((w, i) => new AIMessageChunk({ content: i < WORDS.length - 1 ? `${w} ` : w })),
});

export const graph = new StateGraph(MessagesAnnotation)
  .addNode('reply', async (state) => ({ messages: [await model.invoke(state.messages)] }))
  .addEdge('__start__', 'reply')
  .addEdge('reply', '__end__')
  .compile();
