-- The model a model call used, a field of its own (OpenTelemetry's gen_ai.response.model, else
-- gen_ai.request.model), not only somewhere in the attributes.
ALTER TABLE "events" ADD COLUMN "model" TEXT;
