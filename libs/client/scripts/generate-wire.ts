/** Writes src/wire.gen.ts from the contracts: `npx tsx libs/client/scripts/generate-wire.ts`. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateWire } from './wire-codegen';

const out = join(__dirname, '../src/wire.gen.ts');
writeFileSync(out, generateWire());
process.stdout.write(`wrote ${out}\n`);
