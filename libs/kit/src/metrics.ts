import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler, Router } from 'express';
import express from 'express';

/** Prometheus metrics of one service: HTTP latency, open sockets, queue depth, plus process defaults. */
export class Metrics {
  readonly registry = new Registry();
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  readonly openSockets: Gauge<'kind'>;
  readonly queueDepth: Gauge<'queue' | 'state'>;
  readonly events: Counter<'kind'>;
  private readonly depthSources: (() => Promise<Record<string, Record<string, number>>>)[] = [];

  constructor(service: string) {
    this.registry.setDefaultLabels({ service });
    collectDefaultMetrics({ register: this.registry });
    this.httpDuration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.openSockets = new Gauge({ name: 'websocket_open', help: 'Open WebSocket connections', labelNames: ['kind'], registers: [this.registry] });
    this.events = new Counter({ name: 'events_total', help: 'Events handled', labelNames: ['kind'], registers: [this.registry] });
    const sources = this.depthSources;
    this.queueDepth = new Gauge({
      name: 'queue_depth',
      help: 'BullMQ jobs per queue and state',
      labelNames: ['queue', 'state'],
      registers: [this.registry],
      async collect() {
        for (const src of sources) {
          try {
            for (const [queue, counts] of Object.entries(await src())) for (const [state, n] of Object.entries(counts)) this.set({ queue, state }, n);
          } catch {
            /* a scrape must not fail because Redis is briefly away */
          }
        }
      },
    });
  }

  /** Report a queue's depth on each scrape. */
  watchQueue(name: string, counts: () => Promise<Record<string, number>>): void {
    this.depthSources.push(async () => ({ [name]: await counts() }));
  }

  httpMiddleware(): RequestHandler {
    return (req, res, next) => {
      // Route templates keep label cardinality bounded; unmatched paths share one label.
      this.timeHttp(req, res, () => (req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched'));
      next();
    };
  }

  /** Times one request until its response finishes, labelled with its route template (asked then). */
  timeHttp(req: IncomingMessage, res: ServerResponse, route: () => string): void {
    const end = this.httpDuration.startTimer();
    res.on('finish', () => end({ method: req.method, route: route(), status: String(res.statusCode) }));
  }

  router(): Router {
    const r = express.Router();
    r.get('/metrics', async (_req, res) => {
      res.setHeader('Content-Type', this.registry.contentType);
      res.send(await this.registry.metrics());
    });
    return r;
  }
}
