/**
 * Imported first by jsdom tests: the pg client (used to make the runtime's schema) needs the
 * TextEncoder/TextDecoder that every browser and Node have but jest's jsdom environment lacks.
 */
import { TextDecoder, TextEncoder } from 'node:util';

const g = globalThis as Record<string, unknown>;
g.TextEncoder ??= TextEncoder;
g.TextDecoder ??= TextDecoder;
