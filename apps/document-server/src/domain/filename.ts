import { create as contentDisposition } from 'content-disposition';
import { toStorableText } from '@tessera/contracts';

/**
 * Invisible characters that change how a name reads without showing themselves: every Unicode
 * format character (category Cf: the bidi embeddings, overrides and isolates U+202A–U+202E and
 * U+2066–U+2069, the marks U+200E, U+200F and U+061C, zero-width space, joiners and non-joiners,
 * the word joiner, invisible operators, the BOM, soft hyphen, tag characters…) and the blank
 * Hangul fillers. `\u202Egnp.exe` would read `exe.png`; without them it reads `gnp.exe`.
 */
export const INVISIBLE_IN_NAMES = /[\p{Cf}\u115F\u1160\u3164\uFFA0]/gu;

/**
 * A client's filename is a label, never a path: the last segment of whatever it sent (browsers
 * on Windows send `C:\Users\…\a.txt`), without control characters, what PostgreSQL cannot store,
 * invisible format characters (dropped: the name reads as its bytes are, its true extension
 * last), or names that mean a directory; at most 255 characters. Nothing of it ever reaches a file
 * path (blobs are named by hash, documents by UUID).
 */
export function storedFilename(sent: string | undefined): string {
  const last = (sent ?? '').split(/[/\\]/).pop() ?? '';
  const clean = toStorableText(last)
    .replace(INVISIBLE_IN_NAMES, '')
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '_')
    .trim()
    .slice(0, 255);
  return clean === '' || clean === '.' || clean === '..' ? 'upload' : clean;
}

/**
 * `Content-Disposition` for a download: the name in both forms (an ASCII `filename` with `?` for
 * what ASCII cannot spell, and RFC 5987 `filename*` in UTF-8), quoted and escaped by
 * content-disposition; `inline` only when the caller asks and the type is safe to show. The name
 * is cleaned again, so one stored before a rule existed is sent as the rule says now.
 */
export function dispositionHeader(filename: string, inline: boolean): string {
  return contentDisposition(storedFilename(filename), { type: inline ? 'inline' : 'attachment' });
}

/** Types a browser may show in place: none of them runs script. */
const INLINE_SAFE = /^(image\/(png|jpeg|gif|webp|avif|bmp)|application\/pdf|text\/plain|audio\/[a-z0-9.+-]+|video\/[a-z0-9.+-]+)$/;
export const inlineSafe = (contentType: string) => INLINE_SAFE.test(contentType);
