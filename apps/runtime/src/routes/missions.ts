import type { RequestHandler } from 'express';
import { mission as m, type RouteSpec } from '@tessera/contracts';
import { BadRequest, canUseApp, Forbidden, hasRole, NotFound, type Principal } from '@tessera/kit';
import type { z } from 'zod';
import { agentOfWorkflow } from '../blueprints/agent-workflows';
import type { LoadedWorkflow } from '../engine/types';
import type { RuntimeRoutes } from '../services';
import { missionReply, type MissionRow, type MissionStore } from '../store/missions';

export const MISSIONS_PATH = '/api/v1/mission-ally/missions';

const refusals = { 400: { description: 'a field is invalid (named)' }, 401: { description: 'no valid token' }, 403: { description: 'not an operator, or not of this app' } };
const missing = { 404: { description: 'no such mission (or not of the token’s apps)' } };
const tags = ['mission-ally'];

const listMissions = { method: 'get', path: MISSIONS_PATH, access: 'operator', summary: "Missions of the token's apps, newest first", tags, query: m.MissionsQuery, responses: { 200: { description: 'missions', schema: m.MissionsReply }, ...refusals } } as const satisfies RouteSpec;
const createMission = { method: 'post', path: MISSIONS_PATH, access: 'operator', summary: 'Create a mission with its ordered checkpoints', tags, body: m.CreateMissionBody, examples: { mission: { summary: 'A mission of two checkpoints, scripted tutor', value: { id: 'intro-ratios', app_id: 'demo-app', title: 'Ratios', workflow_name: 'mission_ally', checkpoints: [{ id: 'define', title: 'Say what a ratio is' }, { id: 'simplify', title: 'Simplify 6:4' }] } } }, responses: { 201: { description: 'created', schema: m.Mission }, ...refusals, 409: { description: 'the app has a mission with this id (ids are per app: another app\'s does not count)' } } } as const satisfies RouteSpec;
const getMission = { method: 'get', path: `${MISSIONS_PATH}/{mission_id}`, access: 'operator', summary: 'One mission', tags, params: m.MissionParams, responses: { 200: { description: 'the mission', schema: m.Mission }, ...refusals, ...missing } } as const satisfies RouteSpec;
const updateMission = {
  method: 'patch',
  path: `${MISSIONS_PATH}/{mission_id}`,
  access: 'operator',
  summary: "Change a mission (learners' tutors see it from their next connection)",
  tags,
  params: m.MissionParams,
  body: m.UpdateMissionBody,
  responses: { 200: { description: 'the mission as it now is', schema: m.Mission }, ...refusals, ...missing },
} as const satisfies RouteSpec;
const enroll = {
  method: 'post',
  path: `${MISSIONS_PATH}/{mission_id}/enrollments`,
  access: 'operator',
  summary: 'Enroll a user (idempotent: 200 with the existing enrollment)',
  tags,
  params: m.MissionParams,
  body: m.EnrollBody,
  responses: { 201: { description: 'enrolled', schema: m.Enrollment }, 200: { description: 'already enrolled', schema: m.Enrollment }, ...refusals, ...missing },
} as const satisfies RouteSpec;
const listEnrollments = { method: 'get', path: `${MISSIONS_PATH}/{mission_id}/enrollments`, access: 'operator', summary: "Every learner's progress", tags, params: m.MissionParams, responses: { 200: { description: 'enrollments', schema: m.EnrollmentsReply }, ...refusals, ...missing } } as const satisfies RouteSpec;
const getEnrollment = {
  method: 'get',
  path: `${MISSIONS_PATH}/{mission_id}/enrollments/{user_id}`,
  access: 'operator',
  summary: "One learner's progress",
  tags,
  params: m.EnrollmentParams,
  responses: { 200: { description: 'the enrollment', schema: m.Enrollment }, ...refusals, 404: { description: 'no such mission or enrollment' } },
} as const satisfies RouteSpec;

export const missionRoutes: RouteSpec[] = [listMissions, createMission, getMission, updateMission, enroll, listEnrollments, getEnrollment];

export interface MissionRouteDeps {
  missions: MissionStore;
  workflows: Map<string, LoadedWorkflow>;
}

/**
 * The operator's API (the guards check the token and the operator role): missions are looked up
 * among the token's apps only, so another app's mission answers as a missing one, to the byte.
 */
export function missionsRoutes(routes: RuntimeRoutes, d: MissionRouteDeps): void {
  const tutor = (name: string | undefined) => {
    if (name !== undefined && !d.workflows.has(name)) throw new BadRequest(`invalid body: workflow_name: no workflow named "${name}"`);
    // A tutor completes checkpoints by its script or prompt: a workflow file's, not a bare agent chat.
    if (name !== undefined && agentOfWorkflow(name) !== undefined) throw new BadRequest(`invalid body: workflow_name: a mission's tutor is a workflow of GET /api/workflows, not a chat with an agent ("${name}")`);
  };
  const own = async (principal: Principal | undefined, mission_id: string): Promise<MissionRow> => {
    const mission = await d.missions.find(mission_id, principal?.apps ?? '*');
    if (!mission) throw new NotFound(`no mission "${mission_id}"`);
    return mission;
  };

  routes.route(listMissions, async ({ query: q }, req, res) => {
    const apps = req.principal?.apps ?? '*';
    const scope = q.app_id ? (apps === '*' || apps.includes(q.app_id) ? [q.app_id] : []) : apps;
    const reply: z.infer<typeof m.MissionsReply> = { missions: (await d.missions.list(scope)).map(missionReply) };
    res.json(reply);
  });
  routes.route(createMission, async ({ body }, req, res) => {
    if (req.principal && !canUseApp(req.principal, body.app_id)) throw new Forbidden(`token does not allow app "${body.app_id}"`);
    tutor(body.workflow_name);
    res.status(201).json(missionReply(await d.missions.create(body)));
  });
  routes.route(getMission, async ({ params }, req, res) => {
    res.json(missionReply(await own(req.principal, params.mission_id)));
  });
  routes.route(updateMission, async ({ params, body }, req, res) => {
    const mission = await own(req.principal, params.mission_id);
    tutor(body.workflow_name);
    res.json(missionReply(await d.missions.update(mission.key, body)));
  });
  routes.route(enroll, async ({ params, body }, req, res) => {
    const mission = await own(req.principal, params.mission_id);
    const { created } = await d.missions.enroll(mission.key, body.user_id);
    res.status(created ? 201 : 200).json(await d.missions.progress(mission.key, body.user_id));
  });
  routes.route(listEnrollments, async ({ params }, req, res) => {
    const mission = await own(req.principal, params.mission_id);
    const reply: z.infer<typeof m.EnrollmentsReply> = { enrollments: await d.missions.enrollments(mission.key) };
    res.json(reply);
  });
  routes.route(getEnrollment, async ({ params: { mission_id, user_id } }, req, res) => {
    const mission = await own(req.principal, mission_id);
    const e = await d.missions.progress(mission.key, user_id);
    if (!e) throw new NotFound(`user "${user_id}" is not enrolled in mission "${mission.id}"`);
    res.json(e);
  });
}

/** The operator API (missions, budgets) needs an operator token (claim OPERATOR_CLAIM holding OPERATOR_ROLE); with auth disabled, the stand-in may do anything. */
export function operatorOnly(operatorClaim: string, operatorRole: string): RequestHandler {
  return (req, _res, next) => {
    const p = req.principal;
    if (!p || p.anonymous) return next();
    if (!hasRole(p, operatorClaim, operatorRole)) return next(new Forbidden(`an operator token is required (claim "${operatorClaim}" holding "${operatorRole}")`));
    next();
  };
}
