/**
 * What every service's prisma.config.ts shares: Prisma's CLI drives the schema engine in
 * WebAssembly through the pg driver adapter, so no native engine is downloaded (README "Data").
 * The service's tables live in the PostgreSQL schema named by `?schema=` in DATABASE_URL.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineConfig } from 'prisma/config';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';

// The schema engine's catalog queries return internal types ("char", name, regproc, ...) that
// adapter-pg cannot decode (prisma/orm#27403): present them as text / text[].
const AS_TEXT = new Set([18, 19, 22, 24, 30, 194, 2205, 2206, 1033]);
const AS_TEXT_ARRAY = new Set([1002, 1003, 1006, 1008, 1013, 1023]);
 
const Result = (pg as any).Result;
if (!Result.prototype.__tesseraPatched) {
  const addFields = Result.prototype.addFields;
  Result.prototype.addFields = function (fields: { dataTypeID: number }[]) {
    for (const f of fields) {
      if (AS_TEXT.has(f.dataTypeID)) f.dataTypeID = 25;
      else if (AS_TEXT_ARRAY.has(f.dataTypeID)) f.dataTypeID = 1009;
    }
    return addFields.call(this, fields);
  };
  Result.prototype.__tesseraPatched = true;
}

function split(databaseUrl: string): { connectionString: string; schema: string } {
  const u = new URL(databaseUrl);
  const schema = u.searchParams.get('schema') ?? 'public';
  u.searchParams.delete('schema');
  return { connectionString: u.toString(), schema };
}

// adapter-pg drops the shadow database while still connected to it; manage it here.
function factory(databaseUrl: string) {
  const { connectionString, schema } = split(databaseUrl);
  // search_path puts the migration table and the service's tables in its own schema.
  const options = `-c search_path="${schema}"`;
  // allowExitOnIdle: the CLI exits as soon as its work is done instead of waiting on idle clients.
  const base = new PrismaPg({ connectionString, options, allowExitOnIdle: true }, { schema });
  return {
    provider: base.provider,
    adapterName: base.adapterName,
    async connect() {
      const admin = new pg.Client({ connectionString });
      await admin.connect();
      await admin.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`).finally(() => admin.end());
      return base.connect();
    },
    async connectToShadowDb() {
      const admin = await base.connect();
      const name = `prisma_shadow_${process.pid}_${Date.now()}`;
      await admin.executeScript(`CREATE DATABASE "${name}"`);
      const url = new URL(connectionString);
      url.pathname = '/' + name;
      const shadowAdmin = new pg.Client({ connectionString: url.toString() });
      await shadowAdmin.connect();
      await shadowAdmin.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`).finally(() => shadowAdmin.end());
      const shadow = await new PrismaPg({ connectionString: url.toString(), options }, { schema }).connect();
      const dispose = shadow.dispose.bind(shadow);
      shadow.dispose = async () => {
        await dispose();
        await admin.executeScript(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        await admin.dispose();
      };
      return shadow;
    },
  };
}

// npm's scripts pass DATABASE_URL; a prisma command run by hand gets this checkout's PostgreSQL
// with the password tools/scripts/lib.sh generated into .data/secrets/.
function localDatabaseUrl(): string {
  try {
    return `postgresql://tessera:${readFileSync(resolve(__dirname, '../../.data/secrets/postgres.password'), 'utf8').trim()}@127.0.0.1:5432/tessera`;
  } catch {
    return 'postgresql://tessera@127.0.0.1:5432/tessera';
  }
}

export function serviceConfig(defaultSchema: string) {
  const base = process.env.DATABASE_URL || localDatabaseUrl();
  const u = new URL(base);
  if (!u.searchParams.get('schema')) u.searchParams.set('schema', defaultSchema);
  const databaseUrl = u.toString();
  return defineConfig({
    experimental: { adapter: true },
    schema: 'prisma/schema.prisma',
    engine: 'js',
     
    async adapter() {
      return factory(databaseUrl) as any;
    },
  });
}
