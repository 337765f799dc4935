import { BadRequest } from '@tessera/kit';
import { Root, type Type } from 'protobufjs';
import { asArray, asObject } from './values';
import schema from './otlp-trace.schema.json';

/**
 * OTLP/HTTP trace requests (https://opentelemetry.io/docs/specs/otlp/#otlphttp): protobuf
 * (`application/x-protobuf`, the exporters' default) or JSON (`application/json`, hex ids).
 *
 * protobufjs decodes. `otlp-trace.schema.json` is the official schema, open-telemetry/opentelemetry-proto
 * v1.11.0 (common, resource, trace and collector/trace/v1/trace_service.proto, commit 790608c4),
 * as protobufjs's JSON descriptor (`Root.loadSync(...).toJSON()`, services and options left out):
 * `@opentelemetry/otlp-transformer` no longer ships a decoder (since 0.2xx it encodes with its own
 * writer), and a JSON descriptor bundles with esbuild where `.proto` files would not.
 */

export type OtlpEncoding = 'json' | 'protobuf';

export const OTLP_MEDIA_TYPES: Record<OtlpEncoding, string> = { json: 'application/json', protobuf: 'application/x-protobuf' };

const root = Root.fromJSON(schema);
const RequestType: Type = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const ResponseType: Type = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');

/** The request in OTLP/JSON's shape (ids hex or base64, int64 as strings or numbers); everything below resourceSpans is unchecked. */
export interface OtlpTraceRequest {
  resourceSpans: unknown[];
}

export interface PartialSuccess {
  rejectedSpans: number;
  errorMessage: string;
}

/** The encoding a Content-Type asks for; null for any other type (a 415). */
export function encodingOf(contentType: string | undefined): OtlpEncoding | null {
  const media = contentType?.split(';')[0].trim().toLowerCase();
  if (media === 'application/x-protobuf' || media === 'application/protobuf') return 'protobuf';
  if (media === 'application/json') return 'json';
  return null;
}

/**
 * The body (already inflated from gzip by the body reader) as a request; a body that is not an
 * ExportTraceServiceRequest at all is a 400. Spans are read one by one later: a bad span is
 * rejected there, not here.
 */
export function decodeTraceRequest(encoding: OtlpEncoding, body: unknown): OtlpTraceRequest {
  if (encoding === 'protobuf') return fromProtobuf(body);
  return fromJson(typeof body === 'string' || Buffer.isBuffer(body) ? parseJson(body) : body);
}

function fromProtobuf(body: unknown): OtlpTraceRequest {
  if (!Buffer.isBuffer(body)) throw new BadRequest('the body must be a protobuf ExportTraceServiceRequest');
  let decoded: Record<string, unknown>;
  try {
    // longs as decimal strings and bytes as base64, as protobuf's JSON mapping has them; defaults
    // left out, so an unset field reads as absent, as in OTLP/JSON.
    decoded = RequestType.toObject(RequestType.decode(body), { longs: String, bytes: String, enums: Number });
  } catch (e) {
    // protobufjs's errors name the offset and wire type; a stack overflow (absurd nesting) too is the body's fault.
    throw new BadRequest(`the body is not a protobuf ExportTraceServiceRequest: ${(e as Error).message.slice(0, 200)}`);
  }
  return { resourceSpans: asArray(decoded.resourceSpans) };
}

function parseJson(body: string | Buffer): unknown {
  try {
    return JSON.parse(body.toString());
  } catch {
    throw new BadRequest('the body is not JSON');
  }
}

/** JSON must at least have OTLP's envelope: an object whose resourceSpans, scopeSpans and spans are arrays of objects when present. */
function fromJson(body: unknown): OtlpTraceRequest {
  const o = asObject(body);
  if (!o) throw new BadRequest('the body must be a JSON ExportTraceServiceRequest object');
  const rs = o.resourceSpans ?? [];
  if (!Array.isArray(rs)) throw new BadRequest('resourceSpans must be an array');
  rs.forEach((r, i) => {
    const ro = asObject(r);
    if (!ro) throw new BadRequest(`resourceSpans[${i}] must be an object`);
    const ss = ro.scopeSpans ?? [];
    if (!Array.isArray(ss)) throw new BadRequest(`resourceSpans[${i}].scopeSpans must be an array`);
    ss.forEach((s, j) => {
      const so = asObject(s);
      if (!so) throw new BadRequest(`resourceSpans[${i}].scopeSpans[${j}] must be an object`);
      if (so.spans !== undefined && !Array.isArray(so.spans)) throw new BadRequest(`resourceSpans[${i}].scopeSpans[${j}].spans must be an array`);
    });
  });
  return { resourceSpans: rs };
}

/** ExportTraceServiceResponse in the request's encoding; partialSuccess only when spans were rejected. */
export function encodeTraceResponse(encoding: OtlpEncoding, partial: PartialSuccess | null): Buffer | Record<string, unknown> {
  const reply = partial && partial.rejectedSpans > 0 ? { partialSuccess: { rejectedSpans: partial.rejectedSpans, errorMessage: partial.errorMessage } } : {};
  if (encoding === 'json') {
    // int64 goes out as a string in OTLP/JSON.
    return reply.partialSuccess ? { partialSuccess: { ...reply.partialSuccess, rejectedSpans: String(reply.partialSuccess.rejectedSpans) } } : {};
  }
  return Buffer.from(ResponseType.encode(ResponseType.fromObject(reply)).finish());
}
