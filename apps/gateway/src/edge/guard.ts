import type { IncomingMessage } from 'node:http';
import { Forbidden, TooManyRequests, type Auth, type Principal, type TokenLookup } from '@tessera/kit';
import { isPublic } from '../domain/routing';
import { clientIpOf } from '../proxy/headers';
import type { RateLimiter, RateVerdict } from './rate-limit';

/**
 * Where the gateway finds a token. HTTP: the Authorization header (document 003 §2). WebSocket
 * upgrades, which browsers cannot give headers: `access_token` query parameter (document 003),
 * `token` query parameter and cookie (document 002, mission ally), then the header.
 */
const HTTP_LOOKUPS: TokenLookup[] = [{ sources: ['header'] }];
const WS_LOOKUPS: TokenLookup[] = [
  { sources: ['query'], queryParam: 'access_token' },
  { sources: ['query'], queryParam: 'token' },
  { sources: ['header'] },
  { sources: ['cookie'], cookieName: 'access_token' },
  { sources: ['cookie'], cookieName: 'token' },
];

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
    if (kind === 'ws' && !this.originAllowed(req.headers.origin)) refusal = new Forbidden(`origin ${req.headers.origin} is not allowed`);
    else if (kind === 'ws' || !isPublic(req.method ?? 'GET', path, { publicWorkflows: this.o.publicWorkflows })) {
      try {
        principal = await this.authenticate(req, kind);
      } catch (e) {
        refusal = e;
      }
    }
    const client = principal && !principal.anonymous ? `user:${principal.sub}` : `ip:${clientIp}`;
    const rate = await this.o.limiter.take(client);
    if (!rate.allowed) throw new TooManyRequests(rate.retryAfterS ?? 1);
    if (refusal) throw refusal;
    return { principal, client, clientIp, rate };
  }

  private async authenticate(req: IncomingMessage, kind: 'http' | 'ws'): Promise<Principal> {
    const lookups = kind === 'ws' ? WS_LOOKUPS : HTTP_LOOKUPS;
    const found = lookups.find((l) => this.o.auth.tokenFrom(req, l) !== undefined);
    return this.o.auth.authenticate(req, found ?? lookups[0]);
  }

  /** Browsers send Origin on upgrades; CORS does not cover WebSockets, so the allow-list is checked here. */
  private originAllowed(origin: string | undefined): boolean {
    if (!origin) return true;
    return this.o.corsOrigins.includes('*') || this.o.corsOrigins.includes(origin);
  }
}
