-- Budgets: an app's (user_id ''), each user's ('*') or one user's limits on model calls.
CREATE TABLE "budgets" (
    "app_id" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "tokens_per_day" BIGINT,
    "tokens_per_month" BIGINT,
    "cost_usd_per_day" DOUBLE PRECISION,
    "cost_usd_per_month" DOUBLE PRECISION,
    "turns_per_minute" INTEGER,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "budgets_pkey" PRIMARY KEY ("app_id","user_id")
);
