-- AlterTable
ALTER TABLE "sessions" ADD COLUMN     "source_index" INTEGER NOT NULL DEFAULT 0;
