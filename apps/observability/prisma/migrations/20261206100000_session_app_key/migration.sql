-- A session id is an app's: sessions are keyed by (app_id, id), so the same id in two apps is two
-- sessions. '' is the app of sessions that name none (the service key's events without app_id).
UPDATE "sessions" SET "app_id" = '' WHERE "app_id" IS NULL;
ALTER TABLE "sessions" ALTER COLUMN "app_id" SET DEFAULT '',
  ALTER COLUMN "app_id" SET NOT NULL;
ALTER TABLE "sessions" DROP CONSTRAINT "sessions_pkey",
  ADD CONSTRAINT "sessions_pkey" PRIMARY KEY ("app_id", "id");
DROP INDEX "sessions_modified_at_id_idx";
CREATE INDEX "sessions_modified_at_id_app_id_idx" ON "sessions"("modified_at" DESC, "id" DESC, "app_id" DESC);

-- Events carry their session's app: stored ones take it from their session.
ALTER TABLE "events" ADD COLUMN "app_id" TEXT NOT NULL DEFAULT '';
UPDATE "events" e SET "app_id" = s."app_id" FROM "sessions" s WHERE s."id" = e."session_id" AND s."app_id" <> '';
ALTER TABLE "events" DROP CONSTRAINT "events_pkey",
  ADD CONSTRAINT "events_pkey" PRIMARY KEY ("app_id", "session_id", "seq");
DROP INDEX "events_session_id_event_id_key";
CREATE UNIQUE INDEX "events_app_id_session_id_event_id_key" ON "events"("app_id", "session_id", "event_id");

-- Tombstones name the app too. Those from before did not, so they hold their id in every app ('*').
ALTER TABLE "tombstones" ADD COLUMN "app_id" TEXT NOT NULL DEFAULT '*';
ALTER TABLE "tombstones" ALTER COLUMN "app_id" DROP DEFAULT;
ALTER TABLE "tombstones" DROP CONSTRAINT "tombstones_pkey",
  ADD CONSTRAINT "tombstones_pkey" PRIMARY KEY ("app_id", "session_id");
