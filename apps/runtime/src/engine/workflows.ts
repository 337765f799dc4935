/**
 * Workflow files: `<dir>/<name>/workflow.json`, validated with the contract schema plus the rules a
 * schema cannot state (names that must agree across the file, placeholders in scripted text). An
 * invalid file stops the runtime at start with a message naming the file and each failing field.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowFile, type WorkflowSummary } from '@tessera/contracts';
import type { z } from 'zod';
import { placeholderNames } from '../providers/template';
import { COMPLETE_CHECKPOINT } from './checkpoints';
import type { LoadedWorkflow } from './types';

export const WORKFLOW_FILE = 'workflow.json';

export class WorkflowFileError extends Error {
  override readonly name = 'WorkflowFileError';
  constructor(
    readonly file: string,
    readonly issues: { path: string; message: string }[],
  ) {
    super(`${file}: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`);
  }
}

/** The tool through which an agent hands the conversation to `agent`. */
export function handoffToolName(agent: string): string {
  return `transfer_to_${agent}`;
}

/** Every `<dir>/<name>/workflow.json`, by name. Folders without a workflow.json are skipped. */
export function loadWorkflows(dir: string): Map<string, LoadedWorkflow> {
  const out = new Map<string, LoadedWorkflow>();
  const folders = readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  for (const folder of folders) {
    const file = join(dir, folder, WORKFLOW_FILE);
    if (!isFile(file)) continue;
    out.set(folder, parseWorkflow(file, readFileSync(file, 'utf8'), folder));
  }
  return out;
}

/** Validates one workflow file's text; `folder`, when given, must equal the workflow's name. */
export function parseWorkflow(file: string, text: string, folder?: string): LoadedWorkflow {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new WorkflowFileError(file, [{ path: '', message: `invalid JSON (${(e as Error).message})` }]);
  }
  const parsed = WorkflowFile.safeParse(json);
  if (!parsed.success) {
    throw new WorkflowFileError(
      file,
      parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
    );
  }
  const w = parsed.data;
  const issues = crossCheck(w);
  if (folder !== undefined && folder !== w.name)
    issues.unshift({ path: 'name', message: `"${w.name}" must equal its folder name "${folder}"` });
  if (issues.length > 0) throw new WorkflowFileError(file, issues);
  return { ...w, file };
}

export function summarizeWorkflow(w: WorkflowFile): z.infer<typeof WorkflowSummary> {
  return {
    name: w.name,
    description: w.description,
    entry_point: w.entry_point,
    initiator: w.initiator,
    starting_agent: w.starting_agent,
    agents: w.agents.map((a) => ({ name: a.name, description: a.description })),
    ui_tools: w.ui_tools.map((t) => ({ name: t.name, component: t.component, awaits_response: t.awaits_response, display: t.display })),
    context_variables: Object.keys(w.context_variables),
  };
}

const SCRIPT_PLACEHOLDER = /^(last_user_message|system_prompt|last_tool_response(\.[\w-]+)*|context\.[\w-]+(\.[\w-]+)*)$/;
const CONTEXT_PLACEHOLDER = /^context\.[\w-]+(\.[\w-]+)*$/;

function crossCheck(w: WorkflowFile): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = [];
  const add = (path: (string | number)[], message: string) => issues.push({ path: path.join('.'), message });

  const seenAgents = new Set<string>();
  w.agents.forEach((a, i) => {
    if (seenAgents.has(a.name)) add(['agents', i, 'name'], `duplicate agent "${a.name}"`);
    seenAgents.add(a.name);
  });
  const uiTools = new Set<string>();
  w.ui_tools.forEach((t, i) => {
    if (uiTools.has(t.name)) add(['ui_tools', i, 'name'], `duplicate ui_tool "${t.name}"`);
    if (t.name.startsWith('transfer_to_') && seenAgents.has(t.name.slice('transfer_to_'.length)))
      add(['ui_tools', i, 'name'], `"${t.name}" is the name of a handoff tool`);
    uiTools.add(t.name);
  });
  if (w.greeting !== undefined) checkPlaceholders(w.greeting, CONTEXT_PLACEHOLDER, ['greeting'], add);

  w.agents.forEach((a, i) => {
    a.handoffs.forEach((h, j) => {
      if (h === a.name) add(['agents', i, 'handoffs', j], 'an agent cannot hand off to itself');
    });
    if (a.system_prompt !== undefined) checkPlaceholders(a.system_prompt, CONTEXT_PLACEHOLDER, ['agents', i, 'system_prompt'], add);
    const own = new Set([...a.tools, ...a.handoffs.map(handoffToolName)]);
    (a.model.script ?? []).forEach((r, k) => {
      const at = ['agents', i, 'model', 'script', k];
      if (r.when?.startsWith('@tool:')) {
        const tool = r.when.slice('@tool:'.length);
        const known = uiTools.has(tool) || tool === COMPLETE_CHECKPOINT || w.agents.some((b) => handoffToolName(b.name) === tool);
        if (!known) add([...at, 'when'], `no tool named "${tool}"`);
      }
      if (r.text !== undefined) checkPlaceholders(r.text, SCRIPT_PLACEHOLDER, [...at, 'text'], add);
      (r.tool_calls ?? []).forEach((c, n) => {
        // complete_checkpoint is every agent's in a mission chat (engine/checkpoints.ts).
        if (!own.has(c.tool) && c.tool !== COMPLETE_CHECKPOINT)
          add([...at, 'tool_calls', n, 'tool'], `agent "${a.name}" has no tool "${c.tool}" (its tools: ${[...own].join(', ') || 'none'})`);
      });
    });
  });
  return issues;
}

function checkPlaceholders(
  text: string,
  allowed: RegExp,
  path: (string | number)[],
  add: (path: (string | number)[], message: string) => void,
): void {
  for (const name of placeholderNames(text)) if (!allowed.test(name)) add(path, `unknown placeholder {{${name}}}`);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
