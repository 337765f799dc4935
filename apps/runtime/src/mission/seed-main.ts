import { runTask } from '@tessera/kit';
import { createDb } from '../store/db';
import { loadRuntimeConfig } from '../config';
import { MissionStore } from '../store/missions';
import { seedExampleMission } from './seed';

/**
 * `tsx apps/runtime/src/mission/seed-main.ts [user…]`: loads the example mission into the
 * runtime's database (after its migrations) and enrolls the users (default `dev-user`). Idempotent.
 */
runTask(async () => {
  const config = loadRuntimeConfig();
  const db = createDb(config.DATABASE_URL, 1);
  try {
    const users = process.argv.slice(2);
    const mission = await seedExampleMission(new MissionStore(db.pool), users.length ? users : undefined);
    process.stdout.write(`mission ${mission.id} ("${mission.title}") ready; enrolled: ${(users.length ? users : ['dev-user']).join(', ')}\n`);
  } finally {
    await db.close();
  }
});
