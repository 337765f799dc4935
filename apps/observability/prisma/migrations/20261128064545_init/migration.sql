-- CreateTable
CREATE TABLE "sessions" (
    "id" TEXT NOT NULL,
    "session_name" TEXT NOT NULL DEFAULT '',
    "status" TEXT NOT NULL DEFAULT 'running',
    "source" TEXT NOT NULL,
    "app_id" TEXT,
    "user_id" TEXT,
    "workflow" TEXT,
    "agent_name" TEXT,
    "project_dir" TEXT,
    "last_seq" INTEGER NOT NULL DEFAULT 0,
    "event_count" INTEGER NOT NULL DEFAULT 0,
    "input_tokens" BIGINT NOT NULL DEFAULT 0,
    "output_tokens" BIGINT NOT NULL DEFAULT 0,
    "error_count" INTEGER NOT NULL DEFAULT 0,
    "first_event_at" TIMESTAMPTZ(3),
    "last_event_at" TIMESTAMPTZ(3),
    "last_event_type" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "modified_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "sessions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "events" (
    "session_id" TEXT NOT NULL,
    "seq" INTEGER NOT NULL,
    "event_id" TEXT,
    "event_type" TEXT NOT NULL,
    "timestamp" TIMESTAMPTZ(3) NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL,
    "agent_name" TEXT,
    "tool_name" TEXT,
    "tool_input" JSONB,
    "tool_output" JSONB,
    "error" TEXT,
    "exit_code" INTEGER,
    "reason" TEXT,
    "role" TEXT,
    "content" JSONB,
    "attributes" JSONB NOT NULL DEFAULT '{}',

    CONSTRAINT "events_pkey" PRIMARY KEY ("session_id","seq")
);

-- CreateTable
CREATE TABLE "tombstones" (
    "session_id" TEXT NOT NULL,
    "deleted_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "tombstones_pkey" PRIMARY KEY ("session_id")
);

-- CreateIndex
CREATE INDEX "sessions_modified_at_id_idx" ON "sessions"("modified_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "sessions_app_id_modified_at_id_idx" ON "sessions"("app_id", "modified_at" DESC, "id" DESC);

-- CreateIndex
CREATE UNIQUE INDEX "events_session_id_event_id_key" ON "events"("session_id", "event_id");

-- CreateIndex
CREATE INDEX "tombstones_deleted_at_idx" ON "tombstones"("deleted_at");
