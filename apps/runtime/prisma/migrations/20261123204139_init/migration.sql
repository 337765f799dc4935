-- CreateTable
CREATE TABLE "chats" (
    "id" TEXT NOT NULL,
    "app_id" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "workflow_name" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'created',
    "mode" TEXT NOT NULL DEFAULT 'workflow',
    "cache_seed" INTEGER NOT NULL,
    "client_request_id" TEXT,
    "context" JSONB NOT NULL DEFAULT '{}',
    "state" JSONB NOT NULL DEFAULT '{}',
    "last_index" INTEGER NOT NULL DEFAULT 0,
    "last_artifact" JSONB,
    "artifact_index" INTEGER,
    "usage" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "chats_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "chat_events" (
    "chat_id" TEXT NOT NULL,
    "idx" INTEGER NOT NULL,
    "key" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "data" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "chat_events_pkey" PRIMARY KEY ("chat_id","idx")
);

-- CreateTable
CREATE TABLE "chat_inputs" (
    "id" TEXT NOT NULL,
    "seq" BIGSERIAL NOT NULL,
    "chat_id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "client_message_id" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "done_at" TIMESTAMPTZ(3),

    CONSTRAINT "chat_inputs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "tool_calls" (
    "event_id" TEXT NOT NULL,
    "chat_id" TEXT NOT NULL,
    "tool_call_id" TEXT NOT NULL,
    "tool_name" TEXT NOT NULL,
    "agent" TEXT NOT NULL,
    "awaiting" BOOLEAN NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'awaiting',
    "response" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "answered_at" TIMESTAMPTZ(3),

    CONSTRAINT "tool_calls_pkey" PRIMARY KEY ("event_id")
);

-- CreateTable
CREATE TABLE "attachments" (
    "id" TEXT NOT NULL,
    "chat_id" TEXT NOT NULL,
    "filename" TEXT NOT NULL,
    "content_type" TEXT NOT NULL,
    "size" INTEGER NOT NULL,
    "intent" TEXT,
    "bundle_path" TEXT,
    "uploaded_by" TEXT NOT NULL,
    "data" BYTEA NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "attachments_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "chats_app_id_user_id_updated_at_idx" ON "chats"("app_id", "user_id", "updated_at" DESC);

-- CreateIndex
CREATE UNIQUE INDEX "chats_app_id_user_id_workflow_name_client_request_id_key" ON "chats"("app_id", "user_id", "workflow_name", "client_request_id");

-- CreateIndex
CREATE UNIQUE INDEX "chat_events_chat_id_key_key" ON "chat_events"("chat_id", "key");

-- CreateIndex
CREATE INDEX "chat_inputs_chat_id_status_seq_idx" ON "chat_inputs"("chat_id", "status", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "chat_inputs_chat_id_client_message_id_key" ON "chat_inputs"("chat_id", "client_message_id");

-- CreateIndex
CREATE INDEX "tool_calls_chat_id_status_idx" ON "tool_calls"("chat_id", "status");

-- CreateIndex
CREATE INDEX "attachments_chat_id_idx" ON "attachments"("chat_id");

-- AddForeignKey
ALTER TABLE "chat_events" ADD CONSTRAINT "chat_events_chat_id_fkey" FOREIGN KEY ("chat_id") REFERENCES "chats"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "chat_inputs" ADD CONSTRAINT "chat_inputs_chat_id_fkey" FOREIGN KEY ("chat_id") REFERENCES "chats"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "tool_calls" ADD CONSTRAINT "tool_calls_chat_id_fkey" FOREIGN KEY ("chat_id") REFERENCES "chats"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "attachments" ADD CONSTRAINT "attachments_chat_id_fkey" FOREIGN KEY ("chat_id") REFERENCES "chats"("id") ON DELETE CASCADE ON UPDATE CASCADE;
