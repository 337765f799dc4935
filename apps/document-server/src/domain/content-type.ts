import { fileTypeFromBuffer } from 'file-type';

/** Bytes of the start of a file kept for sniffing: enough for file-type's deepest probes (zip-based formats). */
export const SNIFF_BYTES = 64 * 1024;

/**
 * The content type of a file from its first bytes, never from the client's claim: a client that
 * labels HTML as image/png must not get it served as an image (or the reverse). Formats with a
 * signature come from file-type; text without one is text/plain; anything else is opaque.
 */
export async function sniffContentType(head: Buffer): Promise<string> {
  if (head.length === 0) return 'application/octet-stream';
  const found = await fileTypeFromBuffer(head);
  if (found) return found.mime;
  return looksLikeText(head) ? 'text/plain' : 'application/octet-stream';
}

/** Valid UTF-8 (a character cut at the end of the sample is fine) without control characters other than whitespace. */
function looksLikeText(head: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: true });
  } catch {
    return false;
  }
  for (const b of head) if ((b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x0c) || b === 0x7f) return false;
  return true;
}
