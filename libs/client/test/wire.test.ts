/**
 * The client's validators (src/wire.gen.ts, zod/mini) are the contracts' (libs/contracts, full
 * zod), not a copy that can drift: the file is what the generator writes from the contracts today,
 * their types are equal, and for any message the contracts allow the client reads the same value,
 * while anything the contracts refuse the client refuses too (fast-check, over every type).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import * as contracts from '@tessera/contracts';
import type { z } from 'zod';
import type * as zm from 'zod/mini';
import { parseServerMessage, WsErrorCode } from '../src';
import * as wire from '../src/wire.gen';
import { generateWire } from '../scripts/wire-codegen';
import { arbitraryOf } from './contract-arbitrary';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Same<T extends true> = T;
type TimelineSame = { [K in keyof typeof contracts.TimelineData]: Equal<z.infer<(typeof contracts.TimelineData)[K]>, zm.infer<(typeof wire.TimelineData)[K]>> };
type ControlSame = { [K in keyof typeof contracts.ControlData]: Equal<z.infer<(typeof contracts.ControlData)[K]>, zm.infer<(typeof wire.ControlData)[K]>> };
// Compile-time: `npx nx run client:typecheck` fails when a generated type differs from the contract's.
export type Checked = [
  Same<Equal<keyof typeof contracts.TimelineData, keyof typeof wire.TimelineData>>,
  Same<Equal<keyof typeof contracts.ControlData, keyof typeof wire.ControlData>>,
  Same<TimelineSame[keyof TimelineSame]>,
  Same<ControlSame[keyof ControlSame]>,
  Same<Equal<z.infer<typeof contracts.ServerEnvelope>, zm.infer<typeof wire.ServerEnvelope>>>,
  Same<Equal<typeof contracts.WsErrorCode, typeof wire.WsErrorCode>>,
];

const RUNS = 300;
const timelineTypes = Object.keys(contracts.TimelineData) as (keyof typeof contracts.TimelineData)[];
const controlTypes = Object.keys(contracts.ControlData) as (keyof typeof contracts.ControlData)[];
const timestamp = fc.date({ noInvalidDate: true }).map((d) => d.toISOString());

test('src/wire.gen.ts is what the generator writes from the contracts today', () => {
  // After a contract change: npx tsx libs/client/scripts/generate-wire.ts
  expect(readFileSync(join(__dirname, '../src/wire.gen.ts'), 'utf8')).toBe(generateWire());
  expect(WsErrorCode).toEqual(contracts.WsErrorCode);
});

test('every timeline event the contracts allow is read by the client as the same typed event', () => {
  for (const type of timelineTypes) {
    fc.assert(
      fc.property(arbitraryOf(contracts.TimelineData[type]), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), timestamp, (data, index, ts) => {
        const frame = JSON.stringify({ type, data, timestamp: ts, index });
        const sent = JSON.parse(frame) as { data: unknown };
        const expected = contracts.TimelineData[type].parse(sent.data);
        expect(parseServerMessage(frame)).toEqual({ kind: 'timeline', event: { type, index, data: expected, timestamp: ts } });
      }),
      { numRuns: RUNS },
    );
  }
});

test('every control message the contracts allow is read by the client as the same typed message', () => {
  for (const type of controlTypes) {
    fc.assert(
      fc.property(arbitraryOf(contracts.ControlData[type]), timestamp, (data, ts) => {
        const frame = JSON.stringify({ type, data, timestamp: ts });
        const expected = contracts.ControlData[type].parse((JSON.parse(frame) as { data: unknown }).data);
        expect(parseServerMessage(frame)).toEqual({ kind: 'control', event: { type, data: expected, timestamp: ts } });
      }),
      { numRuns: RUNS },
    );
  }
});

test('what the contracts refuse the client refuses too: a field replaced by any JSON value', () => {
  const all = [...timelineTypes.map((t) => ['timeline', t] as const), ...controlTypes.map((t) => ['control', t] as const)];
  fc.assert(
    fc.property(
      fc.constantFrom(...all).chain(([kind, type]) => {
        const schema = kind === 'timeline' ? contracts.TimelineData[type as keyof typeof contracts.TimelineData] : contracts.ControlData[type as keyof typeof contracts.ControlData];
        const keys = Object.keys(schema.shape);
        return fc.tuple(fc.constant(kind), fc.constant(type), arbitraryOf(schema), fc.constantFrom(...keys), fc.option(fc.jsonValue(), { nil: undefined }));
      }),
      ([kind, type, data, key, value]) => {
        const broken = { ...(data as Record<string, unknown>), [key]: value };
        const schemas = kind === 'timeline' ? [contracts.TimelineData, wire.TimelineData] : [contracts.ControlData, wire.ControlData];
        const ok = (schemas[0] as Record<string, z.ZodType>)[type].safeParse(broken).success;
        expect((schemas[1] as unknown as Record<string, zm.ZodMiniType>)[type].safeParse(broken).success).toBe(ok);
        const frame = JSON.stringify({ type, data: broken, timestamp: 't', ...(kind === 'timeline' && { index: 1 }) });
        const read = parseServerMessage(frame)!;
        // JSON drops an undefined field: judge what went on the wire.
        const wireOk = (schemas[0] as Record<string, z.ZodType>)[type].safeParse(JSON.parse(frame).data).success;
        expect(read.kind).toBe(wireOk ? kind : 'unknown');
      },
    ),
    { numRuns: 2000 },
  );
});

test('a type the client does not know, or data it cannot read, is passed on as unknown, keeping its index', () => {
  expect(parseServerMessage('{"type":"chat.new_thing","data":{"a":1},"timestamp":"t","index":7}')).toEqual({ kind: 'unknown', message: { type: 'chat.new_thing', data: { a: 1 }, index: 7 } });
  expect(parseServerMessage('{"type":"chat.text","data":{"delta":5},"timestamp":"t","index":3}')).toEqual({ kind: 'unknown', message: { type: 'chat.text', data: { delta: 5 }, index: 3 } });
  expect(parseServerMessage('{"type":"chat.text","data":"not an object","index":4}')).toEqual({ kind: 'unknown', message: { type: 'chat.text', data: 'not an object', index: 4 } });
  expect(parseServerMessage('{"type":"chat_meta","data":{},"timestamp":"t"}')).toEqual({ kind: 'unknown', message: { type: 'chat_meta', data: {} } });
  expect(parseServerMessage('not json')).toBeNull();
  expect(parseServerMessage('{"data":{}}')).toBeNull();
  expect(parseServerMessage('null')).toBeNull();
});
