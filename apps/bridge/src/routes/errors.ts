import { ErrorCode } from '@tessera/contracts';
import { HttpError } from '@tessera/kit';

export { Conflict, parseOr400, Unavailable as ServiceUnavailable } from '@tessera/kit';

/** A request/response event nobody answered in time. */
export class GatewayTimeoutError extends HttpError {
  constructor(message: string, details?: unknown) {
    super(504, ErrorCode.GatewayTimeout, message, details);
  }
}
