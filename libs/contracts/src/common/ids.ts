import { z } from 'zod';

/** Identifiers that appear in URL paths: no slashes, no whitespace, bounded. */
export const PathId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:@-]+$/, 'only letters, digits and . _ : @ - are allowed');
export const AppId = PathId.describe('Tenant / application boundary');
/**
 * The token's subject, as identity providers spell it: Auth0's `auth0|abc` and
 * `google-oauth2|1234`, base64-ish ids with `+ = ~`. Still nothing that splits or ends a path
 * (`/ ? # %`), no whitespace, no control characters.
 */
export const UserId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:@|+=~-]+$/, 'only letters, digits and . _ : @ | + = ~ - are allowed')
  .describe('Authenticated principal');
export const ChatId = PathId.describe('Chat (run/session) id');
export const WorkflowName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, 'workflow names are letters, digits, _ and -');
