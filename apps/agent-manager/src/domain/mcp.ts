import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { agents, ErrorCode } from '@tessera/contracts';
import { BadRequest } from '@tessera/kit';

/** What an agent's `mcp_servers` resolve to: every name in order, and the definitions found. */
export interface ResolvedMcp {
  /** Every name, as the request gave them (document 001 §2.2's field). */
  names: string[];
  /** `agent.mcp.json`'s `mcpServers`: the names with a definition. */
  servers: Record<string, unknown>;
}

/**
 * `mcp_servers` of a request → the names and `agent.mcp.json`'s `mcpServers`. The API speaks in
 * names (document 001 §2.2); the file needs how each server starts. A name takes its definition
 * from the request, else from what the agent already has, else from the project's `.mcp.json`
 * (the same format, shared by the project's tools). A name defined nowhere is kept, without a
 * definition, and reported unresolved (`unresolvedOf`): the document's own example names
 * `github`, which a project need not define, and refusing it would refuse the document's client.
 */
export async function resolveMcpServers(refs: agents.McpServerRef[], current: Record<string, unknown>, projectDir: string): Promise<ResolvedMcp> {
  const servers: Record<string, unknown> = {};
  const names: string[] = [];
  let catalog: Record<string, unknown> | undefined;
  for (const [i, ref] of refs.entries()) {
    const name = typeof ref === 'string' ? ref : ref.name;
    if (names.includes(name)) throw invalid(i, `MCP server "${name}" is listed twice`);
    names.push(name);
    if (typeof ref !== 'string') {
      const { name: _name, ...definition } = ref;
      servers[name] = definition;
    } else if (Object.hasOwn(current, name)) {
      servers[name] = current[name];
    } else {
      catalog ??= await projectServers(projectDir);
      if (Object.hasOwn(catalog, name)) servers[name] = catalog[name];
    }
  }
  return { names, servers };
}

/** The names among `names` that `servers` (agent.mcp.json) has no definition of. */
export function unresolvedOf(names: readonly string[], servers: Record<string, unknown>): string[] {
  return names.filter((n) => !Object.hasOwn(servers, n));
}

/** Whether `names` say no more than `servers`' keys, in their order (then agent.json need not list them). */
export function namesAreKeys(names: readonly string[], servers: Record<string, unknown>): boolean {
  const keys = Object.keys(servers);
  return keys.length === names.length && keys.every((k, i) => k === names[i]);
}

async function projectServers(projectDir: string): Promise<Record<string, unknown>> {
  try {
    const servers = (JSON.parse(await readFile(join(projectDir, '.mcp.json'), 'utf8')) as { mcpServers?: unknown }).mcpServers;
    return servers && typeof servers === 'object' && !Array.isArray(servers) ? (servers as Record<string, unknown>) : {};
  } catch {
    // Absent or unreadable: no project-wide servers.
    return {};
  }
}

function invalid(i: number, message: string): BadRequest {
  const path = `body.mcp_servers.${i}`;
  return new BadRequest(`invalid body: ${path}: ${message}`, { issues: [{ path, message }] }, ErrorCode.ValidationFailed);
}
