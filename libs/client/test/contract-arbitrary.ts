/**
 * fast-check arbitraries made from a zod schema's definition (the contracts' schemas): every value
 * such a schema accepts can come out, including the edges (empty strings, 0, huge integers, null
 * where nullable, absent where optional, extra keys an object strips).
 */
import fc from 'fast-check';
import type { Schema } from '../scripts/wire-codegen';

export function arbitraryOf(s: unknown): fc.Arbitrary<unknown> {
  const def = (s as Schema)._zod.def;
  const check = (name: string) => def.checks?.find((c) => c._zod.def.check === name)?._zod.def;
  switch (def.type) {
    case 'string':
      return fc.string({ minLength: check('min_length')?.minimum ?? 0, maxLength: check('max_length')?.maximum ?? 40, unit: 'binary' });
    case 'boolean':
      return fc.boolean();
    case 'unknown':
      return fc.jsonValue();
    case 'number': {
      const gt = check('greater_than');
      const min = gt ? (gt.inclusive ? gt.value! : gt.value! + 1) : Number.MIN_SAFE_INTEGER;
      if (check('number_format')?.format === 'safeint') return fc.maxSafeInteger().filter((n) => n >= min);
      return fc.double({ noNaN: true, noDefaultInfinity: true, min: gt ? gt.value : undefined, minExcluded: gt ? !gt.inclusive : false });
    }
    case 'enum':
      return fc.constantFrom(...Object.values(def.entries!));
    case 'literal':
      return fc.constantFrom(...def.values!);
    case 'optional':
      return fc.option(arbitraryOf(def.innerType), { nil: undefined });
    case 'nullable':
      return fc.option(arbitraryOf(def.innerType), { nil: null });
    case 'array':
      return fc.array(arbitraryOf(def.element), { maxLength: 4 });
    case 'record':
      return fc.dictionary(arbitraryOf(def.keyType) as fc.Arbitrary<string>, arbitraryOf(def.valueType), { maxKeys: 4 });
    case 'object': {
      const fields = Object.fromEntries(Object.entries(def.shape!).map(([k, v]) => [k, arbitraryOf(v)]));
      const optional = Object.entries(def.shape!).filter(([, v]) => v._zod.def.type === 'optional').map(([k]) => k);
      const known = fc.record(fields, { requiredKeys: Object.keys(fields).filter((k) => !optional.includes(k)) });
      if (def.catchall?._zod.def.type === 'never') return known;
      // Keys the schema does not name: a newer runtime may add fields, and the client must still read the message.
      const extra = fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }).filter((k) => !(k in fields) && k !== '__proto__'), fc.jsonValue(), { maxKeys: 2 });
      return fc.tuple(known, extra).map(([k, e]) => ({ ...e, ...k }));
    }
    default:
      throw new Error(`arbitraryOf: schema type ${def.type} is not covered`);
  }
}
