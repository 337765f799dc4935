import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowSummary } from '@tessera/contracts';
import { loadWorkflows, summarizeWorkflow } from '../../src/engine/workflows';
import { WORKFLOWS_DIR } from './harness';

const valid = {
  name: 'demo',
  starting_agent: 'a',
  ui_tools: [{ name: 'ask', component: 'UserInputRequest' }],
  agents: [{ name: 'a', system_prompt: 'Hi', tools: ['ask'] }],
};

describe('loadWorkflows', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-workflows-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (folder: string, content: unknown) => {
    mkdirSync(join(dir, folder), { recursive: true });
    const file = join(dir, folder, 'workflow.json');
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    return file;
  };
  const errorOf = (): string => {
    try {
      loadWorkflows(dir);
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('expected loadWorkflows to throw');
  };

  it('loads the shipped example workflows', () => {
    const all = loadWorkflows(WORKFLOWS_DIR);
    expect([...all.keys()]).toEqual(['ask_user', 'assistant', 'greeter', 'handoff', 'mission_ally', 'mission_ally_llm', 'support_desk']);
    expect(all.get('assistant')?.entry_point).toBe(true);
    expect(all.get('greeter')?.initiator).toBe('agent');
    expect(all.get('assistant')?.file).toBe(join(WORKFLOWS_DIR, 'assistant', 'workflow.json'));
  });

  it('loads valid files with defaults and skips folders without workflow.json', () => {
    write('demo', valid);
    mkdirSync(join(dir, 'assets'));
    const w = loadWorkflows(dir).get('demo');
    expect(w).toMatchObject({ name: 'demo', initiator: 'user', max_turn_steps: 8, entry_point: false });
    expect(w?.ui_tools[0]).toMatchObject({ awaits_response: true, display: 'inline', input_schema: { type: 'object' } });
  });

  it('names the file and the failing field', () => {
    const file = write('demo', { ...valid, agents: [{ name: 'a', system_prompt: 'Hi', tools: ['ask', 'x'] }] });
    expect(errorOf()).toBe(`${file}: agents.0.tools.1: no ui_tool named "x"`);
  });

  it('lists every failing field of a file', () => {
    const file = write('demo', { name: 'demo', agents: [{ name: 'a' }], max_turn_steps: 0 });
    const msg = errorOf();
    expect(msg.startsWith(`${file}: `)).toBe(true);
    expect(msg).toContain('starting_agent: Invalid input');
    expect(msg).toContain('max_turn_steps: Too small');
    expect(msg).toContain('agents.0.system_prompt: an agent needs a system_prompt or a blueprint');
  });

  it('names the file of invalid JSON', () => {
    const file = write('demo', '{ "name": "demo", ');
    expect(errorOf()).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid JSON`));
  });

  it('requires the folder name to equal the workflow name', () => {
    const file = write('other', valid);
    expect(errorOf()).toBe(`${file}: name: "demo" must equal its folder name "other"`);
  });

  it('checks scripted replies: tools the agent has, @tool names, placeholders', () => {
    const file = write('demo', {
      ...valid,
      agents: [
        {
          name: 'a',
          system_prompt: 'Hi {{last_user_message}}',
          tools: ['ask'],
          model: {
            script: [
              { when: '@tool:nope', text: 'ok' },
              { text: 'Hi {{user_name}}', tool_calls: [{ tool: 'transfer_to_b' }] },
            ],
          },
        },
      ],
    });
    expect(errorOf()).toBe(
      `${file}: agents.0.system_prompt: unknown placeholder {{last_user_message}}; ` +
        'agents.0.model.script.0.when: no tool named "nope"; ' +
        'agents.0.model.script.1.text: unknown placeholder {{user_name}}; ' +
        'agents.0.model.script.1.tool_calls.0.tool: agent "a" has no tool "transfer_to_b" (its tools: ask)',
    );
  });

  it('rejects duplicate agents and handoffs to self', () => {
    const file = write('demo', {
      ...valid,
      agents: [
        { name: 'a', system_prompt: 'x', handoffs: ['a'] },
        { name: 'a', system_prompt: 'y' },
      ],
    });
    expect(errorOf()).toBe(`${file}: agents.1.name: duplicate agent "a"; agents.0.handoffs.0: an agent cannot hand off to itself`);
  });
});

describe('summarizeWorkflow', () => {
  it('gives the WorkflowSummary contract shape', () => {
    const w = loadWorkflows(WORKFLOWS_DIR).get('ask_user')!;
    const s = summarizeWorkflow(w);
    expect(WorkflowSummary.parse(s)).toEqual(s);
    expect(s).toEqual({
      name: 'ask_user',
      description: expect.any(String),
      entry_point: false,
      initiator: 'user',
      starting_agent: 'concierge',
      agents: [{ name: 'concierge', description: "Asks for the user's name before helping" }],
      ui_tools: [{ name: 'ask_user', component: 'UserInputRequest', awaits_response: true, display: 'composer' }],
      context_variables: [],
    });
    expect(summarizeWorkflow(loadWorkflows(WORKFLOWS_DIR).get('assistant')!).context_variables).toEqual(['user_tier']);
  });
});
