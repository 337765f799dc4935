-- Model calls' usage summed per app, user, workflow, agent, model and hour, for GET /usage.
CREATE TABLE "usage_hourly" (
    "app_id" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "workflow" TEXT NOT NULL,
    "agent" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "hour" TIMESTAMPTZ(0) NOT NULL,
    "calls" BIGINT NOT NULL DEFAULT 0,
    "input_tokens" BIGINT NOT NULL DEFAULT 0,
    "output_tokens" BIGINT NOT NULL DEFAULT 0,
    "cache_read_tokens" BIGINT NOT NULL DEFAULT 0,
    "cache_write_tokens" BIGINT NOT NULL DEFAULT 0,
    "reasoning_tokens" BIGINT NOT NULL DEFAULT 0,
    "cost_usd" DECIMAL(24,12) NOT NULL DEFAULT 0,
    "unpriced_calls" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "usage_hourly_pkey" PRIMARY KEY ("app_id","user_id","workflow","agent","model","hour")
);

CREATE INDEX "usage_hourly_app_id_hour_idx" ON "usage_hourly"("app_id", "hour");

CREATE INDEX "usage_hourly_hour_idx" ON "usage_hourly"("hour");
