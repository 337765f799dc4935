-- GET /latency reads the runtime's turn ends of an app in a time range: only those rows are indexed
CREATE INDEX "events_turn_end_idx" ON "events" ("app_id", "timestamp") WHERE "event_type" = 'chat.run_complete';
