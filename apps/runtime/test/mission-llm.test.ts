/**
 * The LLM tutor (mission_ally_llm) against the OpenAI wire-format stand-in: its agents see a
 * complete_checkpoint tool listing only the mission's ids, an id outside them is refused to the
 * model (no progress), and a valid one completes the checkpoint for the learner.
 */
import type { ServerResponse } from 'node:http';
import { startRuntime, testEnv, token, type Env, type RuntimeInstance } from './harness';
import { createMission, Learner, missionUrl } from './mission-client';
import { openAiChunk as chunk, sendData, startSseServer, type SseServer } from './providers/sse-server';

let env: Env;
let rt: RuntimeInstance;
let model: SseServer;

function callTool(res: ServerResponse, id: string, args: Record<string, unknown>) {
  sendData(res, chunk({ tool_calls: [{ index: 0, id, type: 'function', function: { name: 'complete_checkpoint', arguments: JSON.stringify(args) } }] }));
  sendData(res, chunk({}, 'tool_calls'));
  sendData(res, '[DONE]');
  res.end();
}

function say(res: ServerResponse, text: string) {
  for (const piece of text.split(/(?<= )/)) sendData(res, chunk({ content: piece }));
  sendData(res, chunk({}, 'stop'));
  sendData(res, '[DONE]');
  res.end();
}

beforeAll(async () => {
  // Model calls in order: a made-up id, then a real one, then the reply after the tool result.
  let n = 0;
  model = await startSseServer((_req, res) => {
    n++;
    if (n === 1) return callTool(res, 'c1', { checkpoint_id: 'cp_made_up' });
    if (n === 2) return callTool(res, 'c2', { checkpoint_id: 'cp_install' });
    if (n === 3) return say(res, 'Great work. The tools are in place.');
    // Later calls: the model server refuses (a 400 is not retried).
    res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'model overloaded', type: 'invalid_request_error' } }));
  });
  env = await testEnv('mission_llm');
  rt = await startRuntime(env, { extra: { OPENAI_BASE_URL: `${model.url}/v1`, OPENAI_API_KEY: 'k', OPENAI_MODEL: 'test-model' } });
});
afterAll(async () => {
  await rt?.close();
  await model?.close();
  await env?.dropSchema();
});

test("complete_checkpoint offers and accepts only the mission's checkpoint ids", async () => {
  const id = await createMission(rt.url, ['ada'], { workflow_name: 'mission_ally_llm' });
  const l = Learner.open(missionUrl(rt.url, id, await token('ada')));
  await l.until((m) => m.length >= 2);
  l.say('I installed Node and cloned the repository');
  await l.ends(1);

  expect(l.types().slice(2)).toEqual(['agent_processing_start', 'checkpoint_update', 'agent_message', 'agent_message', 'agent_processing_end']);
  expect(l.messages.find((m) => m.type === 'checkpoint_update')).toEqual({ type: 'checkpoint_update', completed_checkpoints: ['cp_install'], progress: 50 });
  expect(l.messages.filter((m) => m.type === 'agent_message').map((m) => m.message)).toEqual(['Great work.', 'The tools are in place.']);

  const [first, second, third] = model.requests.map((r) => r.body);
  const tool = first.tools.find((t: { function: { name: string } }) => t.function.name === 'complete_checkpoint');
  expect(tool.function.parameters.properties.checkpoint_id.enum).toEqual(['cp_install', 'cp_run']);
  // The made-up id came back to the model as an error naming the valid ones; the real one as done.
  const results = (body: { messages: { role: string; content: string }[] }) => body.messages.filter((m) => m.role === 'tool').map((m) => JSON.parse(m.content));
  expect(results(second)).toEqual([{ ok: false, error: 'no checkpoint "cp_made_up" in this mission; valid ids: cp_install, cp_run' }]);
  expect(results(third)).toHaveLength(2);
  expect(results(third)[1]).toMatchObject({ ok: true, checkpoint_id: 'cp_install', progress: 50, mission_complete: false, remaining: ['Run a workflow'] });
  await l.close();
});

test('a model failure: agent_processing_start, error, agent_processing_end, and the socket stays', async () => {
  const id = await createMission(rt.url, ['bo'], { workflow_name: 'mission_ally_llm' });
  const l = Learner.open(missionUrl(rt.url, id, await token('bo')));
  await l.until((m) => m.length >= 2);
  l.say('hello?');
  await l.ends(1);
  expect(l.types().slice(2)).toEqual(['agent_processing_start', 'error', 'agent_processing_end']);
  expect(l.messages[3].message).toMatch(/^Model call failed \(openai-compatible\)/);
  l.send({ type: 'ping' });
  await l.until((m) => m.at(-1)?.type === 'pong');
  await l.close();
});
