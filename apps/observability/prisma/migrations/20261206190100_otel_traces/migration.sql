-- Which session an OpenTelemetry trace belongs to, once a span of it named its conversation
-- (gen_ai.conversation.id): spans of the trace without the id, before or after it, join that session.
CREATE TABLE "otel_traces" (
    "app_id" TEXT NOT NULL,
    "trace_id" TEXT NOT NULL,
    "session_id" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "otel_traces_pkey" PRIMARY KEY ("app_id","trace_id")
);

CREATE INDEX "otel_traces_created_at_idx" ON "otel_traces"("created_at");
