-- AlterTable
ALTER TABLE "chat_inputs" ADD COLUMN     "attempt" INTEGER NOT NULL DEFAULT 0;

-- AlterTable
ALTER TABLE "chats" ADD COLUMN     "stop_reason" TEXT;
