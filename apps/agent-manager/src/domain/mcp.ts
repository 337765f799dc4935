import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { agents, ErrorCode } from '@tessera/contracts';
import { BadRequest } from '@tessera/kit';

/**
 * `mcp_servers` of a request → `agent.mcp.json`'s `mcpServers`. The API speaks in names (document
 * 001 §2.2); the file needs how each server starts. A name takes its definition from the request,
 * else from what the agent already has, else from the project's `.mcp.json` (the same format,
 * shared by the project's tools). A name defined nowhere is refused rather than written as a
 * server nobody can start.
 */
export async function resolveMcpServers(refs: agents.McpServerRef[], current: Record<string, unknown>, projectDir: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  let catalog: Record<string, unknown> | undefined;
  for (const [i, ref] of refs.entries()) {
    const name = typeof ref === 'string' ? ref : ref.name;
    if (Object.hasOwn(out, name)) throw invalid(i, `MCP server "${name}" is listed twice`);
    if (typeof ref !== 'string') {
      const { name: _name, ...definition } = ref;
      out[name] = definition;
    } else if (Object.hasOwn(current, name)) {
      out[name] = current[name];
    } else {
      catalog ??= await projectServers(projectDir);
      if (!Object.hasOwn(catalog, name)) throw invalid(i, `no definition of MCP server "${name}": send {"name","command","args"} or define it in the project's .mcp.json`);
      out[name] = catalog[name];
    }
  }
  return out;
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
