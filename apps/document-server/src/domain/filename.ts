import { create as contentDisposition } from 'content-disposition';
import { toStorableText } from '@tessera/contracts';

/**
 * A client's filename is a label, never a path: the last segment of whatever it sent (browsers
 * on Windows send `C:\Users\…\a.txt`), without control characters, what PostgreSQL cannot store,
 * or names that mean a directory; at most 255 characters. Nothing of it ever reaches a file path
 * (blobs are named by hash, documents by UUID).
 */
export function storedFilename(sent: string | undefined): string {
  const last = (sent ?? '').split(/[/\\]/).pop() ?? '';
  const clean = toStorableText(last)
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '_')
    .trim()
    .slice(0, 255);
  return clean === '' || clean === '.' || clean === '..' ? 'upload' : clean;
}

/**
 * `Content-Disposition` for a download: the name in both forms (an ASCII `filename` with `?` for
 * what ASCII cannot spell, and RFC 5987 `filename*` in UTF-8), quoted and escaped by
 * content-disposition; `inline` only when the caller asks and the type is safe to show.
 */
export function dispositionHeader(filename: string, inline: boolean): string {
  return contentDisposition(storedFilename(filename), { type: inline ? 'inline' : 'attachment' });
}

/** Types a browser may show in place: none of them runs script. */
const INLINE_SAFE = /^(image\/(png|jpeg|gif|webp|avif|bmp)|application\/pdf|text\/plain|audio\/[a-z0-9.+-]+|video\/[a-z0-9.+-]+)$/;
export const inlineSafe = (contentType: string) => INLINE_SAFE.test(contentType);
