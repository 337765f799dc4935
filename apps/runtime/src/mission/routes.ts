import { Router, type RequestHandler } from 'express';
import { mission as m, type RouteSpec } from '@tessera/contracts';
import { BadRequest, canUseApp, Forbidden, hasRole, NotFound, parseOr400, type Principal } from '@tessera/kit';
import type { LoadedWorkflow } from '../engine/types';
import { missionReply, type MissionRow, type MissionStore } from './mission-store';

export const MISSIONS_PATH = '/api/v1/mission-ally/missions';

const refusals = { 400: { description: 'a field is invalid (named)' }, 401: { description: 'no valid token' }, 403: { description: 'not an operator, or not of this app' } };
const missing = { 404: { description: 'no such mission (or not of the token’s apps)' } };
const tags = ['mission-ally'];

export const missionRoutes: RouteSpec[] = [
  { method: 'get', path: MISSIONS_PATH, access: 'operator', summary: "Missions of the token's apps, newest first", tags, query: m.MissionsQuery, responses: { 200: { description: 'missions', schema: m.MissionsReply }, ...refusals } },
  { method: 'post', path: MISSIONS_PATH, access: 'operator', summary: 'Create a mission with its ordered checkpoints', tags, body: m.CreateMissionBody, responses: { 201: { description: 'created', schema: m.Mission }, ...refusals, 409: { description: 'the app has a mission with this id (ids are per app: another app\'s does not count)' } } },
  { method: 'get', path: `${MISSIONS_PATH}/{mission_id}`, access: 'operator', summary: 'One mission', tags, params: m.MissionParams, responses: { 200: { description: 'the mission', schema: m.Mission }, ...refusals, ...missing } },
  {
    method: 'patch',
    path: `${MISSIONS_PATH}/{mission_id}`,
    access: 'operator',
    summary: "Change a mission (learners' tutors see it from their next connection)",
    tags,
    params: m.MissionParams,
    body: m.UpdateMissionBody,
    responses: { 200: { description: 'the mission as it now is', schema: m.Mission }, ...refusals, ...missing },
  },
  {
    method: 'post',
    path: `${MISSIONS_PATH}/{mission_id}/enrollments`,
    access: 'operator',
    summary: 'Enroll a user (idempotent: 200 with the existing enrollment)',
    tags,
    params: m.MissionParams,
    body: m.EnrollBody,
    responses: { 201: { description: 'enrolled', schema: m.Enrollment }, 200: { description: 'already enrolled', schema: m.Enrollment }, ...refusals, ...missing },
  },
  { method: 'get', path: `${MISSIONS_PATH}/{mission_id}/enrollments`, access: 'operator', summary: "Every learner's progress", tags, params: m.MissionParams, responses: { 200: { description: 'enrollments', schema: m.EnrollmentsReply }, ...refusals, ...missing } },
  {
    method: 'get',
    path: `${MISSIONS_PATH}/{mission_id}/enrollments/{user_id}`,
    access: 'operator',
    summary: "One learner's progress",
    tags,
    params: m.EnrollmentParams,
    responses: { 200: { description: 'the enrollment', schema: m.Enrollment }, ...refusals, 404: { description: 'no such mission or enrollment' } },
  },
];

export interface MissionRouteDeps {
  missions: MissionStore;
  workflows: Map<string, LoadedWorkflow>;
  operatorClaim: string;
  operatorRole: string;
}

/** The operator's API; mounted after the token check (req.principal is set). */
export function missionsRouter(d: MissionRouteDeps): Router {
  const r = Router();
  const operator: RequestHandler = (req, _res, next) => {
    const p = req.principal;
    // Auth disabled (local development): the stand-in may do anything.
    if (!p || p.anonymous) return next();
    if (!hasRole(p, d.operatorClaim, d.operatorRole)) return next(new Forbidden(`missions need an operator token (claim "${d.operatorClaim}" holding "${d.operatorRole}")`));
    next();
  };
  const tutor = (name: string | undefined) => {
    if (name !== undefined && !d.workflows.has(name)) throw new BadRequest(`invalid body: workflow_name: no workflow named "${name}"`);
  };
  const own = async (principal: Principal | undefined, id: unknown): Promise<MissionRow> => {
    const { mission_id } = parseOr400(m.MissionParams, { mission_id: id }, 'path');
    // Looked up among the token's apps only: another app's mission is a missing one, to the byte.
    const mission = await d.missions.find(mission_id, principal?.apps ?? '*');
    if (!mission) throw new NotFound(`no mission "${mission_id}"`);
    return mission;
  };

  r.use(MISSIONS_PATH, operator);
  r.get(MISSIONS_PATH, async (req, res) => {
    const q = parseOr400(m.MissionsQuery, req.query, 'query');
    const apps = req.principal?.apps ?? '*';
    const scope = q.app_id ? (apps === '*' || apps.includes(q.app_id) ? [q.app_id] : []) : apps;
    res.json((await d.missions.list(scope)).map(missionReply));
  });
  r.post(MISSIONS_PATH, async (req, res) => {
    const body = parseOr400(m.CreateMissionBody, req.body, 'body');
    if (req.principal && !canUseApp(req.principal, body.app_id)) throw new Forbidden(`token does not allow app "${body.app_id}"`);
    tutor(body.workflow_name);
    res.status(201).json(missionReply(await d.missions.create(body)));
  });
  r.get(`${MISSIONS_PATH}/:mission_id`, async (req, res) => {
    res.json(missionReply(await own(req.principal, req.params.mission_id)));
  });
  r.patch(`${MISSIONS_PATH}/:mission_id`, async (req, res) => {
    const mission = await own(req.principal, req.params.mission_id);
    const body = parseOr400(m.UpdateMissionBody, req.body, 'body');
    tutor(body.workflow_name);
    res.json(missionReply(await d.missions.update(mission.key, body)));
  });
  r.post(`${MISSIONS_PATH}/:mission_id/enrollments`, async (req, res) => {
    const mission = await own(req.principal, req.params.mission_id);
    const body = parseOr400(m.EnrollBody, req.body, 'body');
    const { created } = await d.missions.enroll(mission.key, body.user_id);
    res.status(created ? 201 : 200).json(await d.missions.progress(mission.key, body.user_id));
  });
  r.get(`${MISSIONS_PATH}/:mission_id/enrollments`, async (req, res) => {
    const mission = await own(req.principal, req.params.mission_id);
    res.json(await d.missions.enrollments(mission.key));
  });
  r.get(`${MISSIONS_PATH}/:mission_id/enrollments/:user_id`, async (req, res) => {
    const mission = await own(req.principal, req.params.mission_id);
    const { user_id } = parseOr400(m.EnrollmentParams, req.params, 'path');
    const e = await d.missions.progress(mission.key, user_id);
    if (!e) throw new NotFound(`user "${user_id}" is not enrolled in mission "${mission.id}"`);
    res.json(e);
  });
  return r;
}
