import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { mission as m } from '@tessera/contracts';
import { Conflict, NotFound } from '@tessera/kit';

export interface MissionRow {
  /** The id its app's operators and learners name (unique within the app). */
  id: string;
  /** The row's key (`missions.id`, what enrollments and progress reference): the id itself, or `<app_id>:<id>` when another app held the id first. */
  key: string;
  appId: string;
  title: string;
  description: string;
  workflowName: string;
  checkpoints: m.Checkpoint[];
  createdAt: Date;
  updatedAt: Date;
}

export interface EnrollmentRow {
  missionId: string;
  userId: string;
  status: 'active' | 'completed';
  chatId: string | null;
}

/**
 * Mission ids are unique within an app, not across apps: an id another app holds must look, to
 * this app's operators and learners, exactly like one nobody holds (no 409 that says it exists).
 * The row's key is the id when it was free, else `<app_id>:<id>`; ids never hold ':', so the key
 * of each (app, id) is distinct and the id is the key without its app's prefix.
 */
const publicId = (t: string) => `(CASE WHEN left(${t}.id, length(${t}.app_id) + 1) = ${t}.app_id || ':' THEN substr(${t}.id, length(${t}.app_id) + 2) ELSE ${t}.id END)`;
const MISSION_COLS = `missions.id AS "key", ${publicId('missions')} AS "id", app_id AS "appId", title, description, workflow_name AS "workflowName", checkpoints, created_at AS "createdAt", updated_at AS "updatedAt"`;

/**
 * What completed means for an enrollment: the recorded checkpoints and those the tutor completed
 * in the chat's state (recorded by whichever socket saw the event; none may have been open), in
 * the mission's order, only ids the mission still has.
 */
const ENROLLMENT_SQL = /* sql */ `
SELECT ${publicId('m')} AS mission_id, e.user_id, e.status, e.chat_id, e.enrolled_at, e.completed_at, m.checkpoints,
  ARRAY(
    SELECT p.checkpoint_id FROM mission_progress p WHERE p.mission_id = e.mission_id AND p.user_id = e.user_id
    UNION
    SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(c.state -> 'completed_checkpoints') = 'array' THEN c.state -> 'completed_checkpoints' ELSE '[]'::jsonb END)
  ) AS completed
FROM mission_enrollments e
JOIN missions m ON m.id = e.mission_id
LEFT JOIN chats c ON c.id = e.chat_id`;

type EnrollmentSqlRow = {
  mission_id: string;
  user_id: string;
  status: string;
  chat_id: string | null;
  enrolled_at: Date;
  completed_at: Date | null;
  checkpoints: m.Checkpoint[];
  completed: string[];
};

/** Missions, enrollments and progress (PostgreSQL, schema `runtime`), in plain SQL. */
export class MissionStore {
  constructor(private readonly pool: Pool) {}

  /**
   * A new mission in `b.app_id`; 409 only when that app already has the id. The key is the id
   * when no app holds it, else `<app_id>:<id>` (keys are unique: two creates racing for one id
   * in one app get one mission and a 409).
   */
  async create(b: m.CreateMissionBody): Promise<MissionRow> {
    const id = b.id ?? randomBytes(15).toString('base64url').replace(/[-_]/g, 'x').slice(0, 20);
    const taken = () => new Conflict(`mission "${id}" exists`);
    const insert = (key: string) =>
      this.pool.query<MissionRow>(
        `INSERT INTO missions (id, app_id, title, description, workflow_name, checkpoints) VALUES ($1, $2, $3, $4, $5, $6::jsonb)
         ON CONFLICT (id) DO NOTHING RETURNING ${MISSION_COLS}`,
        [key, b.app_id, b.title, b.description, b.workflow_name, JSON.stringify(b.checkpoints)],
      );
    const prefixed = `${b.app_id}:${id}`;
    // A prefixed key exists only if the plain one was another app's when it was made (missions are never deleted).
    if ((await this.pool.query(`SELECT 1 FROM missions WHERE id = $1`, [prefixed])).rowCount) throw taken();
    const plain = await insert(id);
    if (plain.rows[0]) return plain.rows[0];
    const holder = await this.pool.query<{ app_id: string }>(`SELECT app_id FROM missions WHERE id = $1`, [id]);
    if (holder.rows[0]?.app_id === b.app_id) throw taken();
    const own = await insert(prefixed);
    if (!own.rows[0]) throw taken();
    return own.rows[0];
  }

  /** Creates the mission in its app or, when the app has it, replaces what `b` gives (the seed's path). */
  async upsert(b: m.CreateMissionBody & { id: string }): Promise<MissionRow> {
    const found = await this.find(b.id, [b.app_id]);
    if (!found) {
      try {
        return await this.create(b);
      } catch (e) {
        if (!(e instanceof Conflict)) throw e;
      }
    }
    const row = found ?? (await this.find(b.id, [b.app_id]))!;
    const r = await this.pool.query<MissionRow>(
      `UPDATE missions SET title = $2, description = $3, workflow_name = $4, checkpoints = $5::jsonb, updated_at = now()
       WHERE id = $1 AND (title, description, workflow_name, checkpoints) IS DISTINCT FROM ($2, $3, $4, $5::jsonb)
       RETURNING ${MISSION_COLS}`,
      [row.key, b.title, b.description, b.workflow_name, JSON.stringify(b.checkpoints)],
    );
    return r.rows[0] ?? row;
  }

  /** Changes the mission of that key (a MissionRow's `key`). */
  async update(key: string, b: m.UpdateMissionBody): Promise<MissionRow> {
    const r = await this.pool.query<MissionRow>(
      `UPDATE missions SET title = COALESCE($2, title), description = COALESCE($3, description), workflow_name = COALESCE($4, workflow_name),
         checkpoints = COALESCE($5::jsonb, checkpoints), updated_at = now() WHERE id = $1 RETURNING ${MISSION_COLS}`,
      [key, b.title ?? null, b.description ?? null, b.workflow_name ?? null, b.checkpoints ? JSON.stringify(b.checkpoints) : null],
    );
    if (!r.rows[0]) throw new NotFound(`no mission "${key}"`);
    return r.rows[0];
  }

  /**
   * The mission named `id` among those of `apps` (`'*'`: every app), or null: another app's
   * mission is not found, as a missing one. When several of the apps have the id, the one `userId`
   * is enrolled in comes first, then the oldest.
   */
  async find(id: string, apps: string[] | '*', userId?: string): Promise<MissionRow | null> {
    if (apps !== '*' && apps.length === 0) return null;
    const params: unknown[] = [id, userId ?? null];
    let where = `(missions.id = $1 OR (right(missions.id, length($1) + 1) = ':' || $1 AND ${publicId('missions')} = $1))`;
    if (apps !== '*') {
      params.push([id, ...apps.map((a) => `${a}:${id}`)], apps);
      where = `missions.id = ANY($3::text[]) AND app_id = ANY($4::text[]) AND ${publicId('missions')} = $1`;
    }
    const enrolled = `EXISTS (SELECT 1 FROM mission_enrollments e WHERE e.mission_id = missions.id AND e.user_id = $2)`;
    const r = await this.pool.query<MissionRow>(`SELECT ${MISSION_COLS} FROM missions WHERE ${where} ORDER BY ${enrolled} DESC, created_at, missions.id LIMIT 1`, params);
    return r.rows[0] ?? null;
  }

  /** Missions of the given apps (`'*'`: all), newest first. */
  async list(apps: string[] | '*'): Promise<MissionRow[]> {
    const r =
      apps === '*'
        ? await this.pool.query<MissionRow>(`SELECT ${MISSION_COLS} FROM missions ORDER BY created_at DESC LIMIT 1000`)
        : await this.pool.query<MissionRow>(`SELECT ${MISSION_COLS} FROM missions WHERE app_id = ANY($1) ORDER BY created_at DESC LIMIT 1000`, [apps]);
    return r.rows;
  }

  /** The methods below take a mission's `key` (MissionRow.key). Idempotent: enrolling twice keeps the first enrollment (and its progress). */
  async enroll(missionId: string, userId: string): Promise<{ created: boolean }> {
    const r = await this.pool.query(`INSERT INTO mission_enrollments (mission_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [missionId, userId]);
    return { created: r.rowCount === 1 };
  }

  async enrollment(missionId: string, userId: string): Promise<EnrollmentRow | null> {
    const r = await this.pool.query<EnrollmentRow>(
      `SELECT mission_id AS "missionId", user_id AS "userId", status, chat_id AS "chatId" FROM mission_enrollments WHERE mission_id = $1 AND user_id = $2`,
      [missionId, userId],
    );
    return r.rows[0] ?? null;
  }

  async setChat(missionId: string, userId: string, chatId: string): Promise<void> {
    await this.pool.query(`UPDATE mission_enrollments SET chat_id = $3 WHERE mission_id = $1 AND user_id = $2`, [missionId, userId, chatId]);
  }

  /**
   * Records completed checkpoints (a second record of one is a no-op) and, when every checkpoint
   * of the mission is done, marks the enrollment completed. Returns the enrollment as it now is.
   */
  async record(missionId: string, userId: string, checkpointIds: string[]): Promise<m.Enrollment | null> {
    if (checkpointIds.length)
      await this.pool.query(
        `INSERT INTO mission_progress (mission_id, user_id, checkpoint_id) SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING`,
        [missionId, userId, checkpointIds],
      );
    const e = await this.progress(missionId, userId);
    if (e && e.status === 'active' && e.progress >= 100) {
      await this.pool.query(`UPDATE mission_enrollments SET status = 'completed', completed_at = now() WHERE mission_id = $1 AND user_id = $2 AND status = 'active'`, [missionId, userId]);
      return { ...e, status: 'completed', completed_at: new Date().toISOString() };
    }
    return e;
  }

  async progress(missionId: string, userId: string): Promise<m.Enrollment | null> {
    const r = await this.pool.query<EnrollmentSqlRow>(`${ENROLLMENT_SQL} WHERE e.mission_id = $1 AND e.user_id = $2`, [missionId, userId]);
    return r.rows[0] ? toEnrollment(r.rows[0]) : null;
  }

  async enrollments(missionId: string): Promise<m.Enrollment[]> {
    const r = await this.pool.query<EnrollmentSqlRow>(`${ENROLLMENT_SQL} WHERE e.mission_id = $1 ORDER BY e.enrolled_at, e.user_id LIMIT 10000`, [missionId]);
    return r.rows.map(toEnrollment);
  }
}

function toEnrollment(row: EnrollmentSqlRow): m.Enrollment {
  const done = new Set(row.completed);
  const completed = row.checkpoints.filter((c) => done.has(c.id)).map((c) => c.id);
  const progress = m.progressOf(completed.length, row.checkpoints.length);
  return {
    mission_id: row.mission_id,
    user_id: row.user_id,
    status: row.status === 'completed' || progress >= 100 ? 'completed' : 'active',
    chat_id: row.chat_id,
    completed_checkpoints: completed,
    progress,
    enrolled_at: row.enrolled_at.toISOString(),
    completed_at: row.completed_at?.toISOString() ?? null,
  };
}

export function missionReply(row: MissionRow): m.Mission {
  return {
    id: row.id,
    app_id: row.appId,
    title: row.title,
    description: row.description,
    workflow_name: row.workflowName,
    checkpoints: row.checkpoints.map((c) => ({ id: c.id, title: c.title, description: c.description ?? '', ...(c.keyword && { keyword: c.keyword }) })),
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}
