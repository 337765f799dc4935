import express, { type RequestHandler } from 'express';
import { ErrorCode } from '@tessera/contracts';
import { HttpError } from '@tessera/kit';
import { z } from 'zod';
import { decodeTraceRequest, encodeTraceResponse, encodingOf, OTLP_MEDIA_TYPES, type OtlpEncoding } from '../otlp/decode';
import { spansToEvents } from '../otlp/spans';
import type { ObservabilityRoutes, ObservabilityServices } from '../services';

/**
 * Largest protobuf body, after gzip is undone (the gateway forwards up to 8mb too). JSON bodies
 * are read by the app's JSON parser first and so are bounded by INGEST_BODY_LIMIT.
 */
export const OTLP_BODY_LIMIT = '8mb';

const ExportTraceServiceRequest = z
  .object({ resourceSpans: z.array(z.record(z.string(), z.unknown())) })
  .describe('OTLP ExportTraceServiceRequest: application/x-protobuf (optionally gzip) or its OTLP/JSON form (application/json, hex ids)')
  .meta({ id: 'OtlpExportTraceServiceRequest' });
const ExportTraceServiceResponse = z
  .object({ partialSuccess: z.object({ rejectedSpans: z.string(), errorMessage: z.string() }).optional() })
  .describe('In the request encoding; partialSuccess names how many spans were not stored and why')
  .meta({ id: 'OtlpExportTraceServiceResponse' });

/**
 * `POST /v1/traces`: what any OpenTelemetry exporter sends (OTLP_EXPORTER_OTLP_TRACES_ENDPOINT
 * pointed here). Keys like POST /events, checked (the ingest guard) before the body is read; a
 * span that cannot be stored is counted in partialSuccess and never costs the others.
 */
export function otlpRoutes(routes: ObservabilityRoutes, s: ObservabilityServices): void {
  const knownType: RequestHandler = (req, res, next) => {
    const encoding = encodingOf(req.header('content-type'));
    if (!encoding) throw new HttpError(415, ErrorCode.BadRequest, `send ${OTLP_MEDIA_TYPES.protobuf} or ${OTLP_MEDIA_TYPES.json}`);
    res.locals.encoding = encoding;
    next();
  };
  const readProtobuf = express.raw({ type: [OTLP_MEDIA_TYPES.protobuf, 'application/protobuf'], limit: OTLP_BODY_LIMIT });

  routes.route(
    {
      method: 'post',
      path: '/v1/traces',
      summary:
        'OTLP/HTTP trace export: each span becomes an event; a trace goes to the session its gen_ai.conversation.id names, whichever span and export carries it (spans before it wait in otel:<trace id>, merged into it when it comes), else to otel:<trace id>. The resource attribute tessera.app_id names the app. Needs x-ingest-key or x-tessera-service-key.',
      tags: ['ingest'],
      access: 'ingest',
      body: ExportTraceServiceRequest,
      bodyMediaType: OTLP_MEDIA_TYPES.protobuf,
      responses: {
        200: { description: 'stored, or partly (partialSuccess)', schema: ExportTraceServiceResponse },
        400: { description: 'the body is not an ExportTraceServiceRequest' },
        401: { description: 'no valid ingest key or service key' },
        413: { description: 'the body is larger than 8mb (protobuf) or INGEST_BODY_LIMIT (JSON)' },
        415: { description: 'neither application/x-protobuf nor application/json' },
      },
    },
    async (_input, req, res) => {
      const encoding = res.locals.encoding as OtlpEncoding;
      const spans = spansToEvents(decodeTraceRequest(encoding, req.body), req.sessionScope!);
      const { rejected, reasons } = spans;
      let dropped = 0;
      for (const result of await s.traceSessions.accept(spans)) {
        if (result.status !== 'dropped') continue;
        dropped++;
        if (reasons.length < 5 && !reasons.includes(result.reason)) reasons.push(result.reason);
      }
      const reply = encodeTraceResponse(encoding, { rejectedSpans: rejected + dropped, errorMessage: reasons.join('; ') });
      if (Buffer.isBuffer(reply)) res.type(OTLP_MEDIA_TYPES.protobuf).send(reply);
      else res.json(reply);
    },
    { before: [knownType, readProtobuf] },
  );
}
