/**
 * Writes the client's validators of runtime → client socket messages (src/wire.gen.ts) from the
 * contracts (libs/contracts/src/runtime/ws.ts), as `zod/mini` code: the same shapes, checked by
 * the same zod core, without the full zod build in a phone's bundle. The contracts stay the one
 * source; test/wire.test.ts fails when the file and this output differ, and proves with fast-check
 * that the client accepts exactly what the contracts accept.
 *
 * Only the schema kinds these messages use are translated; any other throws, so a contract that
 * grows a new kind fails here, loudly, instead of being checked more loosely by the client.
 */
import { ControlData, ServerEnvelope, TimelineData, WsErrorCode } from '@tessera/contracts';

/** What a zod 4 schema keeps in `_zod.def`, as far as the contracts' socket messages use it. */
export interface Def {
  type: string;
  checks?: { _zod: { def: CheckDef } }[];
  shape?: Record<string, Schema>;
  catchall?: Schema;
  innerType?: Schema;
  element?: Schema;
  keyType?: Schema;
  valueType?: Schema;
  entries?: Record<string, string | number>;
  values?: unknown[];
}
interface CheckDef {
  check: string;
  format?: string;
  value?: number;
  inclusive?: boolean;
  minimum?: number;
  maximum?: number;
}
export type Schema = { _zod: { def: Def } };

function checks(def: Def): string[] {
  return (def.checks ?? []).map(({ _zod: { def: c } }) => {
    switch (c.check) {
      case 'greater_than':
        return `z.${c.inclusive ? 'gte' : 'gt'}(${c.value})`;
      case 'less_than':
        return `z.${c.inclusive ? 'lte' : 'lt'}(${c.value})`;
      case 'min_length':
        return `z.minLength(${c.minimum})`;
      case 'max_length':
        return `z.maxLength(${c.maximum})`;
      default:
        throw new Error(`wire-codegen: check ${c.check}${c.format ? ` (${c.format})` : ''} is not translated`);
    }
  });
}

function base(def: Def, indent: string): string {
  const inner = (s: Schema) => schema(s, indent);
  switch (def.type) {
    case 'string':
    case 'boolean':
    case 'unknown':
      return `z.${def.type}()`;
    case 'number': {
      const int = def.checks?.some((c) => c._zod.def.check === 'number_format' && c._zod.def.format === 'safeint');
      return int ? 'z.int()' : 'z.number()';
    }
    case 'enum':
      return `z.enum(${lit(Object.values(def.entries!))})`;
    case 'literal':
      return def.values!.length === 1 ? `z.literal(${lit(def.values![0])})` : `z.literal(${lit(def.values)})`;
    case 'optional':
    case 'nullable':
      return `z.${def.type}(${inner(def.innerType!)})`;
    case 'array':
      return `z.array(${inner(def.element!)})`;
    case 'record':
      return `z.record(${inner(def.keyType!)}, ${inner(def.valueType!)})`;
    case 'object': {
      const kind = def.catchall === undefined ? 'object' : def.catchall._zod.def.type === 'never' ? 'strictObject' : def.catchall._zod.def.type === 'unknown' ? 'looseObject' : null;
      if (!kind) throw new Error(`wire-codegen: an object with a ${def.catchall!._zod.def.type} catchall is not translated`);
      const pad = `${indent}  `;
      const fields = Object.entries(def.shape!).map(([k, v]) => `${pad}${key(k)}: ${schema(v, pad)},`);
      return fields.length ? `z.${kind}({\n${fields.join('\n')}\n${indent}})` : `z.${kind}({})`;
    }
    default:
      throw new Error(`wire-codegen: schema type ${def.type} is not translated`);
  }
}

function schema(s: Schema, indent: string): string {
  const def = s._zod.def;
  const code = base(def, indent);
  const rest = def.type === 'number' ? { ...def, checks: def.checks?.filter((c) => c._zod.def.check !== 'number_format') } : def;
  const more = checks(rest);
  return more.length ? `${code}.check(${more.join(', ')})` : code;
}

/** A value as the repository writes it: single-quoted strings. */
function lit(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(lit).join(', ')}]`;
  return typeof v === 'string' ? `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'` : String(v);
}

function key(k: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(k) ? k : lit(k);
}

function map(name: string, doc: string, m: Record<string, unknown>): string {
  const lines = Object.entries(m).map(([k, v]) => `  ${key(k)}: ${schema(v as Schema, '  ')},`);
  return `/** ${doc} */\nexport const ${name} = {\n${lines.join('\n')}\n} as const;\n`;
}

/** The text of src/wire.gen.ts. */
export function generateWire(): string {
  return [
    '// Generated from libs/contracts/src/runtime/ws.ts by `npx tsx libs/client/scripts/generate-wire.ts`: do not edit.',
    '// test/wire.test.ts fails when this file and the contracts differ.',
    "import * as z from 'zod/mini';",
    '',
    map('TimelineData', 'Data of each timeline event type (the contracts\' TimelineData).', TimelineData),
    map('ControlData', 'Data of messages outside the timeline (the contracts\' ControlData).', ControlData),
    `/** Every runtime → client message (the contracts' ServerEnvelope). */\nexport const ServerEnvelope = ${schema(ServerEnvelope as unknown as Schema, '')};\n`,
    `/** \`chat.error\` codes sent on the socket (the contracts' WsErrorCode). */\nexport const WsErrorCode = {\n${Object.entries(WsErrorCode)
      .map(([k, v]) => `  ${key(k)}: ${lit(v)},`)
      .join('\n')}\n} as const;\n`,
  ].join('\n');
}
