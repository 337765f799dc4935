-- A chat's next index is read from its events (primary key chat_id, idx), not kept on the chat
-- row: no chat row is updated per append any more.
ALTER TABLE "chats" DROP COLUMN "last_index";
