import type { IncomingMessage } from 'node:http';
import { Forbidden, originAllowed, TooManyRequests, type Auth, type Principal } from '@tessera/kit';
import { authenticatesInProtocol, isPublic } from '../domain/routing';
import { clientIpOf } from '../proxy/headers';
import type { RateLimiter, RateVerdict } from './rate-limit';

export interface Admission {
  principal?: Principal;
  /** The rate-limited identity: `user:<sub>` when authenticated, else `ip:<address>`. */
  client: string;
  clientIp: string;
  rate: RateVerdict;
}

export interface EdgeGuardOptions {
  auth: Auth;
  limiter: RateLimiter;
  trustHops: number;
  publicWorkflows: boolean;
  corsOrigins: string[];
}

/**
 * What every request passes before it is forwarded: token check (401), rate limit (429) and,
 * for WebSocket upgrades from browsers, the origin allow-list (403). Refusals are counted
 * against the client too, so guessing tokens is rate limited by address.
 */
export class EdgeGuard {
  constructor(private readonly o: EdgeGuardOptions) {}

  async admit(req: IncomingMessage, path: string, kind: 'http' | 'ws'): Promise<Admission> {
    const clientIp = clientIpOf(req, this.o.trustHops);
    let principal: Principal | undefined;
    let refusal: unknown;
    if (kind === 'ws' && !originAllowed(req.headers.origin, this.o.corsOrigins)) refusal = new Forbidden(`origin ${req.headers.origin} is not allowed`);
    else if (kind === 'ws' || !isPublic(req.method ?? 'GET', path, { publicWorkflows: this.o.publicWorkflows })) {
      try {
        principal = await this.authenticate(req, kind);
      } catch (e) {
        // The service refuses it in its own protocol (see authenticatesInProtocol).
        if (!(kind === 'ws' && authenticatesInProtocol(path))) refusal = e;
      }
    }
    const client = principal && !principal.anonymous ? `user:${principal.sub}` : `ip:${clientIp}`;
    const rate = await this.o.limiter.take(client);
    if (!rate.allowed) throw new TooManyRequests(rate.retryAfterS ?? 1);
    if (refusal) throw refusal;
    return { principal, client, clientIp, rate };
  }

  private async authenticate(req: IncomingMessage, kind: 'http' | 'ws'): Promise<Principal> {
    // The kit's places (TOKEN_PLACES), the same the services behind the gateway read.
    return this.o.auth.authenticate(req, kind);
  }
}
