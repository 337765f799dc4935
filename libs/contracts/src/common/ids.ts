import { z } from 'zod';

/** Identifiers that appear in URL paths: no slashes, no whitespace, bounded. */
export const PathId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:@-]+$/, 'only letters, digits and . _ : @ - are allowed');
export const AppId = PathId.describe('Tenant / application boundary');
export const UserId = PathId.describe('Authenticated principal');
export const ChatId = PathId.describe('Chat (run/session) id');
export const WorkflowName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, 'workflow names are letters, digits, _ and -');
