import type { mission as m } from '@tessera/contracts';
import type { MissionStore } from '../store/missions';

/** The example mission: the id of document 002's examples, so its snippets work as written. */
export const EXAMPLE_MISSION: m.CreateMissionBody & { id: string } = {
  id: 'p3BpROIATqthZT3ckEzd',
  app_id: 'demo-app',
  title: 'Your first agent workflow',
  description: 'Set up a workflow, run it, and read its timeline.',
  workflow_name: 'mission_ally',
  checkpoints: [
    { id: 'checkpoint_1', title: 'Install the tools', description: 'The learner has Node 20 and the repository installed.', keyword: 'installed' },
    { id: 'checkpoint_2', title: 'Run a workflow', description: 'The learner has started a chat and had an answer.', keyword: 'ran' },
    { id: 'checkpoint_3', title: 'Read the timeline', description: 'The learner can say what chat.run_complete means.', keyword: 'timeline' },
  ],
};

/**
 * Loads the example mission and enrolls `users` (idempotent: a second run changes nothing, and a
 * learner's progress is kept). `npm start` calls it with the development user.
 */
export async function seedExampleMission(missions: MissionStore, users: string[] = ['dev-user'], appId = EXAMPLE_MISSION.app_id) {
  const mission = await missions.upsert({ ...EXAMPLE_MISSION, app_id: appId });
  for (const u of users) await missions.enroll(mission.key, u);
  return mission;
}
