/**
 * `npm run chat` against the real runtime, its turn worker, the session broker and the gateway
 * (child processes, real Redis and PostgreSQL), run as a user runs it: a child process whose
 * stdin the test types into and whose stdout and stderr it reads. A conversation streams, a UI
 * tool is answered at the prompt, the gateway is killed mid-reply and started again and the
 * reply goes on without a repeated or missing word, a chat is rejoined, the input's end exits 0,
 * and failures are said in words.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { signToken } from '@tessera/kit';
import { closedPort } from '@tessera/kit/testing';
import { ChatProcess, occurrences } from './chat-process';
import { startChatStack, type ChatStack } from './stack';

jest.setTimeout(180_000);

let stack: ChatStack;
const running: ChatProcess[] = [];
beforeAll(async () => {
  stack = await startChatStack();
});
afterAll(async () => {
  for (const p of running) p.kill();
  await stack?.stop();
});

function chat(args: string[], env: Record<string, string> = {}): ChatProcess {
  const p = new ChatProcess([...args, '--url', stack.url], env);
  running.push(p);
  return p;
}

const userToken = (sub: string, secret = stack.secret) => signToken(secret, { sub, apps: ['demo-app'] }, { expiresIn: '1h' });
const chatIdOf = (p: ChatProcess) => /chat ([0-9a-f-]{36})/.exec(p.stderr)![1];

const ASSISTANT = (said: string, plan: string) =>
  `assistant: Thanks for your message. You said "${said}" and I am the Tessera assistant, answering from a script, so no model server is needed. Your plan: ${plan}.\n`;

test('with no flags but the gateway: npm start’s development token, a chat through the broker, the reply on stdout, exit 0 at the end of input', async () => {
  // No TOKEN: the tool signs npm start's development token (dev-user, demo-app, tier pro) with JWT_SECRET.
  const p = chat(['assistant'], { JWT_SECRET: stack.secret });
  await p.waitFor('connected', { stream: 'stderr' });
  expect(p.stderr).toContain("using npm start's development token (user dev-user, app demo-app)");
  expect(p.stderr).toMatch(/started through the session broker: chat [0-9a-f-]{36} \(workflow assistant, app demo-app, user dev-user\)/);
  p.type('hello there');
  // "plan: pro": the broker's backend context (the token's tier), which a direct start does not add.
  await p.waitFor(ASSISTANT('hello there', 'pro'));
  p.endInput();
  expect(await p.exitCode()).toBe(0);
  expect(occurrences(p.stdout, 'Thanks for your message')).toBe(1);
  // The user's own line is not echoed back: stdout is the agent's side.
  expect(p.stdout).not.toContain('you: hello there');
  expect(p.stderr).toContain(`rejoin with npm run chat -- assistant --chat ${chatIdOf(p)}`);
});

test('ask_user: the UI tool call is shown with its question and the next line answers it (not a new message)', async () => {
  const p = chat(['ask_user', '--token', await userToken('ada')]);
  await p.waitFor('connected', { stream: 'stderr' });
  p.type('I need help');
  await p.waitFor('concierge: Happy to help with that. First, one quick question.\n');
  await p.waitFor('[ask_user · UserInputRequest] concierge asks: What name should I call you?\n');
  await p.waitFor('(answer on the next line');
  p.type('Ada');
  // The scripted agent says this only after a response to its ask_user call; a message would be asked again.
  await p.waitFor('concierge: Nice to meet you, Ada! I will remember that for the rest of our chat.\n');
  p.endInput();
  expect(await p.exitCode()).toBe(0);
  expect(occurrences(p.stdout, 'What name should I call you?')).toBe(1);
  expect(p.stderr).not.toContain('error');
});

test('piped input: each line waits until the agent is done, so the second answers the tool call; the end of input waits for the reply', async () => {
  const p = chat(['ask_user', '--token', await userToken('piper')]);
  // All at once, before the chat is even connected, as `printf 'I need help\nGrace\n' | npm run chat -- ask_user`.
  p.type('I need help');
  p.type('Grace');
  p.endInput();
  expect(await p.exitCode(60_000)).toBe(0);
  expect(p.stdout).toBe(
    'concierge: Happy to help with that. First, one quick question.\n' +
      '[ask_user · UserInputRequest] concierge asks: What name should I call you?\n' +
      '  (answer on the next line; a JSON object answers with exactly that object)\n' +
      'concierge: Nice to meet you, Grace! I will remember that for the rest of our chat.\n',
  );

  // An agent that speaks first: the greeting's turn ending is not the end of the turn our line makes.
  const greeter = chat(['greeter', '--token', await userToken('early')]);
  greeter.type('a new app');
  greeter.endInput();
  expect(await greeter.exitCode(60_000)).toBe(0);
  expect(greeter.stdout).toBe(
    'host: Hello and welcome! I am the Tessera greeter. Tell me what you are working on and I will point you the right way.\n' +
      'host: Noted: "a new app". A teammate agent can take it from here.\n',
  );
});

test('the gateway killed mid-reply and started again: the reply continues where it stopped, no word twice or missing, and the chat goes on', async () => {
  const story = JSON.parse(readFileSync(join(__dirname, 'workflows/storyteller/workflow.json'), 'utf8')).agents[0].model.script[0].text as string;
  const reply = (said: string) => `narrator: ${story.replace('{{last_user_message}}', said)}\n`;
  const p = chat(['storyteller'], { TOKEN: await userToken('teller') });
  await p.waitFor('connected', { stream: 'stderr' });
  p.type('tell me a story');
  // Mid-reply: the first words are on the screen, the end is not.
  await p.waitFor('Once upon a time a message');
  const before = p.stdout;
  expect(before).not.toContain('if nothing had happened at all.');
  await stack.killGateway();
  await p.waitFor('connection lost; reconnecting', { stream: 'stderr' });
  await stack.startGateway();
  await p.waitFor('reconnected; the conversation continues', { stream: 'stderr', timeoutMs: 30_000 });
  await p.waitFor('if nothing had happened at all.\n');
  // What streamed before the drop is the start of the one whole reply, and the reply is there once.
  expect(p.stdout).toContain(reply('tell me a story'));
  expect(p.stdout.startsWith(before)).toBe(true);
  expect(occurrences(p.stdout, 'Once upon a time')).toBe(1);

  p.type('and then?');
  await p.waitFor(reply('and then?'));
  p.endInput();
  expect(await p.exitCode()).toBe(0);
  expect(p.stdout).toBe(reply('tell me a story') + reply('and then?'));
});

test('--chat rejoins a chat: its history is shown once and the conversation continues (a chat started at the runtime with --direct)', async () => {
  const token = await userToken('returner');
  const first = chat(['assistant', '--direct'], { TOKEN: token });
  await first.waitFor('connected', { stream: 'stderr' });
  expect(first.stderr).toContain('started at the runtime');
  first.type('first visit');
  // No broker, no backend context: the workflow's default plan.
  await first.waitFor(ASSISTANT('first visit', 'standard'));
  first.endInput();
  expect(await first.exitCode()).toBe(0);
  const chatId = chatIdOf(first);

  // No workflow named: it is looked up among the user's chats.
  const again = chat(['--chat', chatId], { TOKEN: token });
  await again.waitFor('connected', { stream: 'stderr' });
  expect(again.stderr).toContain(`rejoined: chat ${chatId} (workflow assistant`);
  await again.waitFor(ASSISTANT('first visit', 'standard'));
  again.type('second visit');
  await again.waitFor(ASSISTANT('second visit', 'standard'));
  again.endInput();
  expect(await again.exitCode()).toBe(0);
  expect(again.stdout).toBe(`you: first visit\n${ASSISTANT('first visit', 'standard')}${ASSISTANT('second visit', 'standard')}`);
});

test('failures are said in words, with exit code 1 (2 for a wrong command line)', async () => {
  const cases: { args: string[]; env?: Record<string, string>; says: RegExp; code: number }[] = [
    { args: ['assistant', '--token', await userToken('x', 'another-secret-0123456789-0123456789')], says: /the gateway refused the token \(401/, code: 1 },
    { args: ['no_such_workflow', '--token', await userToken('x')], says: /not found \(404 .*no_such_workflow/, code: 1 },
    { args: ['--chat', '00000000-0000-4000-8000-000000000000', '--token', await userToken('x')], says: /no chat 00000000-0000-4000-8000-000000000000 among your recent chats/, code: 1 },
    { args: ['--token', await userToken('x')], says: /name a workflow/, code: 2 },
  ];
  for (const c of cases) {
    const p = chat(c.args, c.env);
    p.endInput();
    expect({ code: await p.exitCode(), said: c.says.test(p.stderr) ? 'as expected' : p.stderr }).toEqual({ code: c.code, said: 'as expected' });
  }
  const port = await closedPort();
  const down = new ChatProcess(['assistant', '--url', `http://127.0.0.1:${port}`]);
  running.push(down);
  down.endInput();
  expect(await down.exitCode()).toBe(1);
  expect(down.stderr).toContain(`cannot reach the gateway at http://127.0.0.1:${port} (ECONNREFUSED): is npm start running?`);
});
