-- CreateTable
CREATE TABLE "missions" (
    "id" TEXT NOT NULL,
    "app_id" TEXT NOT NULL,
    "title" TEXT NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "workflow_name" TEXT NOT NULL,
    "checkpoints" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "missions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "mission_enrollments" (
    "mission_id" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'active',
    "chat_id" TEXT,
    "enrolled_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "completed_at" TIMESTAMPTZ(3),

    CONSTRAINT "mission_enrollments_pkey" PRIMARY KEY ("mission_id","user_id")
);

-- CreateTable
CREATE TABLE "mission_progress" (
    "mission_id" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "checkpoint_id" TEXT NOT NULL,
    "completed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "mission_progress_pkey" PRIMARY KEY ("mission_id","user_id","checkpoint_id")
);

-- CreateIndex
CREATE INDEX "mission_enrollments_user_id_idx" ON "mission_enrollments"("user_id");

-- AddForeignKey
ALTER TABLE "mission_enrollments" ADD CONSTRAINT "mission_enrollments_mission_id_fkey" FOREIGN KEY ("mission_id") REFERENCES "missions"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "mission_progress" ADD CONSTRAINT "mission_progress_mission_id_user_id_fkey" FOREIGN KEY ("mission_id", "user_id") REFERENCES "mission_enrollments"("mission_id", "user_id") ON DELETE CASCADE ON UPDATE CASCADE;
