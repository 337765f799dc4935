-- The inputs still waiting or running, oldest first: what the input sweep reads (only a few rows
-- are ever open, so the index stays small however many inputs are done).
CREATE INDEX "chat_inputs_open_created_at_idx" ON "chat_inputs" ("created_at") WHERE "status" IN ('pending', 'processing');
