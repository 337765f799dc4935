import { z } from 'zod';

/**
 * Numbers a client sends that end up in a database column must fit the column: PostgreSQL
 * refuses `2147483648` for an `integer` parameter and an invalid date for a `timestamptz` one,
 * and that refusal, deep inside a query, is a 500. Bounding them here, at the contract edge,
 * makes each a 400 naming the field (or the socket protocol's error message).
 */
export const INT4_MAX = 2_147_483_647;
export const INT4_MIN = -2_147_483_648;
/** int8 (`bigint`); beyond Number.MAX_SAFE_INTEGER a JavaScript number is not exact anyway. */
export const INT8_SAFE_MAX = Number.MAX_SAFE_INTEGER;

/** Epoch milliseconds of 0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: what PostgreSQL and every client store and show. */
export const TIME_MIN_MS = -62_135_596_800_000;
export const TIME_MAX_MS = 253_402_300_799_999;

/** A timestamp (epoch milliseconds) between the years 1 and 9999. */
export const timeInRange = (ms: number): boolean => Number.isFinite(ms) && ms >= TIME_MIN_MS && ms <= TIME_MAX_MS;
export const TIME_RANGE_MESSAGE = 'must be between the years 1 and 9999';

/** An integer that fits `integer` (int4); narrow it further with `.min()` / `.max()`. */
export const Int4 = () => z.number().int().min(INT4_MIN).max(INT4_MAX);
/** The same for a query parameter (text coerced to a number). */
export const QueryInt4 = () => z.coerce.number().int().min(INT4_MIN).max(INT4_MAX);

/** An ISO 8601 date-time with offset whose instant lies between the years 1 and 9999. */
export const IsoTimeInRange = () => z.iso.datetime({ offset: true }).refine((t) => timeInRange(Date.parse(t)), TIME_RANGE_MESSAGE);
