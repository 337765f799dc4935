-- What the console's Sessions list shows and searches, kept on the session row by the ingest:
-- the first user message (the title of a session without a name), the model of its last call,
-- the cost of its priced calls (NULL while none was priced: unknown, not 0) and its unpriced calls.
-- (No semicolon in these comments: Prisma cuts a migration into statements at each one.)
ALTER TABLE "sessions" ADD COLUMN "title" TEXT,
  ADD COLUMN "model" TEXT,
  ADD COLUMN "cost_usd" DECIMAL(24,12),
  ADD COLUMN "unpriced_calls" INTEGER NOT NULL DEFAULT 0;

-- GET /sessions?q= finds text anywhere in a name, title, user id or id (ILIKE '%…%') through a
-- trigram index, not a scan of every row. The extension is the database's, in public: each
-- service, and each test file, has a schema of its own, and a schema may be dropped.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
CREATE INDEX "sessions_search_idx" ON "sessions" USING GIN (
  "session_name" public.gin_trgm_ops, "title" public.gin_trgm_ops, "user_id" public.gin_trgm_ops, "id" public.gin_trgm_ops
);
