import { z } from 'zod';
import { API_TAGS } from './openapi';

/**
 * WebSocket protocols described with their contract schemas, turned into an AsyncAPI 3.0 document
 * with zod 4's `toJSONSchema`, as openapi.ts does for HTTP. AsyncAPI 3.0's default schema format
 * is JSON Schema draft-07, so schemas are written in that dialect.
 *
 * The document speaks for Tessera (the server): a message the client sends is one Tessera
 * `receive`s, one the client reads is one Tessera `send`s.
 */
type JsonSchema = Record<string, unknown>;

/** One place a socket accepts a credential. */
export interface SocketCredential {
  in: 'query' | 'header' | 'cookie';
  /** Query parameter, header or cookie name; `authorization` (header) is a bearer token. */
  name: string;
  description: string;
}

export interface SocketMessage {
  /** The message's `type` (its name in the document). */
  name: string;
  summary: string;
  description?: string;
  schema: z.ZodType;
  /** Each one parses with `schema` (the builder refuses a document whose example does not). */
  examples?: unknown[];
}

export interface SocketSpec {
  /** The channel's id in the document, e.g. `runtimeChat`. */
  id: string;
  /** The path as clients open it, with `{param}` templates. */
  address: string;
  title: string;
  summary: string;
  /** CommonMark: the protocol's order of messages, its errors, anything a client must know. */
  description: string;
  /** Path parameters; their descriptions come from the schemas (`.describe()`). */
  params?: z.ZodObject;
  /** Query parameters other than credentials (the WebSocket binding's `query`). */
  query?: z.ZodObject;
  /** Where a credential may be, in the order the server looks; any one of them is enough. */
  credentials: SocketCredential[];
  /** Close codes the server uses on this socket and what each means. */
  closeCodes: Record<number, string>;
  /** Client → server. */
  receives: SocketMessage[];
  /** Server → client. */
  sends: SocketMessage[];
  tags?: string[];
}

export interface AsyncApiServer {
  /** `host[:port]`. */
  host: string;
  protocol: 'ws' | 'wss';
  /** Path prefix in front of every channel address ('' or '/…'). */
  pathname?: string;
  description?: string;
}

/** `#/definitions/X` (zod's draft-07 named schemas) → `#/components/schemas/X`, the definitions hoisted there. */
function toSchema(schema: z.ZodType, io: 'input' | 'output', components: Record<string, unknown>): JsonSchema {
  const json = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-7' }) as JsonSchema;
  delete json.$schema;
  const defs = (json.definitions ?? {}) as Record<string, JsonSchema>;
  delete json.definitions;
  const rewrite = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(rewrite);
    if (node && typeof node === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(node)) out[k] = k === '$ref' && typeof v === 'string' ? v.replace('#/definitions/', '#/components/schemas/') : rewrite(v);
      return out;
    }
    return node;
  };
  for (const [name, def] of Object.entries(defs)) components[name] ??= rewrite(def);
  return rewrite(json) as JsonSchema;
}

/** A component key: AsyncAPI allows `[A-Za-z0-9._-]`. */
const key = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_');

function credentialScheme(c: SocketCredential): { id: string; scheme: JsonSchema } {
  if (c.in === 'header' && c.name.toLowerCase() === 'authorization') {
    return { id: 'bearerHeader', scheme: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: c.description } };
  }
  return { id: key(`${c.in}-${c.name}`), scheme: { type: 'httpApiKey', in: c.in, name: c.name, description: c.description } };
}

function closeCodeTable(codes: Record<number, string>): string {
  const rows = Object.entries(codes).map(([code, meaning]) => `| ${code} | ${meaning} |`);
  return ['| close code | meaning |', '| --- | --- |', ...rows].join('\n');
}

/** A document's `servers`: the one server, `gateway`. */
export function asyncApiServers(server: AsyncApiServer): Record<string, unknown> {
  const pathname = server.pathname?.replace(/\/+$/, '');
  return {
    gateway: {
      host: server.host,
      protocol: server.protocol,
      ...(pathname && { pathname }),
      ...(server.description && { description: server.description }),
    },
  };
}

/** The sockets' AsyncAPI document; throws when a message's example does not parse with its schema. */
export function buildAsyncApi(opts: { title: string; version: string; description?: string; server?: AsyncApiServer; sockets: SocketSpec[] }): JsonSchema {
  const schemas: Record<string, unknown> = {};
  const securitySchemes: Record<string, unknown> = {};
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const tags = new Set<string>();

  for (const s of opts.sockets) {
    const security = s.credentials.map((c) => {
      const { id, scheme } = credentialScheme(c);
      securitySchemes[id] ??= scheme;
      return { $ref: `#/components/securitySchemes/${id}` };
    });
    const messages: Record<string, unknown> = {};
    const message = (m: SocketMessage, io: 'input' | 'output') => {
      for (const [i, example] of (m.examples ?? []).entries()) {
        const r = m.schema.safeParse(example);
        if (!r.success) throw new Error(`socket ${s.id}, message ${m.name}: example ${i} does not match its schema: ${r.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`);
      }
      const id = key(m.name);
      if (messages[id]) throw new Error(`socket ${s.id}: two messages named ${m.name}`);
      messages[id] = {
        name: m.name,
        title: m.name,
        summary: m.summary,
        ...(m.description && { description: m.description }),
        contentType: 'application/json',
        payload: toSchema(m.schema, io, schemas),
        ...(m.examples?.length && { examples: m.examples.map((payload) => ({ payload })) }),
      };
      return { $ref: `#/channels/${s.id}/messages/${id}` };
    };
    const received = s.receives.map((m) => message(m, 'input'));
    const sent = s.sends.map((m) => message(m, 'output'));

    const params = s.params ? (toSchema(s.params, 'input', schemas) as { properties?: Record<string, JsonSchema> }).properties ?? {} : {};
    const query = s.query ? toSchema(s.query, 'input', schemas) : undefined;
    for (const t of s.tags ?? []) tags.add(t);
    channels[s.id] = {
      address: s.address,
      title: s.title,
      summary: s.summary,
      description: `${s.description}\n\n${closeCodeTable(s.closeCodes)}`,
      messages,
      ...(Object.keys(params).length && {
        parameters: Object.fromEntries(
          Object.entries(params).map(([name, schema]) => [
            name,
            { ...(typeof schema.description === 'string' && { description: schema.description }), ...(Array.isArray(schema.enum) && { enum: schema.enum.map(String) }) },
          ]),
        ),
      }),
      ...(s.tags && { tags: s.tags.map((name) => ({ name })) }),
      bindings: { ws: { method: 'GET', ...(query && { query }), bindingVersion: '0.1.0' } },
      'x-close-codes': Object.fromEntries(Object.entries(s.closeCodes).map(([c, m]) => [c, m])),
    };
    if (received.length) {
      operations[`${s.id}.receive`] = {
        action: 'receive',
        channel: { $ref: `#/channels/${s.id}` },
        title: `${s.title}: client to server`,
        summary: `What a client sends on ${s.address}`,
        security,
        messages: received,
      };
    }
    if (sent.length) {
      operations[`${s.id}.send`] = {
        action: 'send',
        channel: { $ref: `#/channels/${s.id}` },
        title: `${s.title}: server to client`,
        summary: `What a client reads on ${s.address}`,
        security,
        messages: sent,
      };
    }
  }

  return {
    asyncapi: '3.0.0',
    info: { title: opts.title, version: opts.version, ...(opts.description && { description: opts.description }), ...(tags.size && { tags: [...tags].map((name) => ({ name, ...(API_TAGS[name] && { description: API_TAGS[name] }) })) }) },
    ...(opts.server && { servers: asyncApiServers(opts.server) }),
    defaultContentType: 'application/json',
    channels,
    operations,
    components: { schemas, securitySchemes },
  };
}
