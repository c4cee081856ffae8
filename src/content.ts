/**
 * What a file's body is, decided once for every backend: text (valid UTF-8 without NUL, kept
 * losslessly) or bytes. write() takes text, or base64 for a binary file type (as deepagents
 * does); uploads are byte-exact, so bytes under a text extension that are not valid UTF-8 are
 * kept as binary (application/octet-stream) instead of being decoded lossily.
 */
import { errors, INT4_MAX, InputError } from "./protocol.js";
import { getMimeType, isTextMimeType, OCTET_STREAM } from "./mime.js";

/** Content a backend cannot store as given (the message is the protocol's error string). */
export class ContentError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = "ContentError";
  }
}

export interface FileBody {
  mimeType: string;
  /** Set for text bodies. */
  text: string | null;
  /** Set for binary bodies. */
  bytes: Buffer | null;
  size: number;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function checkSize(displayPath: string, size: number, limit: number): void {
  if (size > limit) throw new ContentError(errors.tooLarge(displayPath, size, limit));
}

/** Text PostgreSQL (and S3 users) can hold as text: no NUL, no unpaired surrogate. */
export function isStorableText(s: string): boolean {
  return !s.includes("\u0000") && s.isWellFormed();
}

export function bodyForWrite(displayPath: string, path: string, content: unknown, maxBytes: number): FileBody {
  if (typeof content !== "string") throw new ContentError(errors.malformedText(displayPath));
  const mimeType = getMimeType(path);
  if (!isTextMimeType(mimeType)) {
    const trimmed = content.trim();
    const payload = (trimmed.startsWith("data:") ? trimmed.slice(trimmed.indexOf(",") + 1) : trimmed).replace(
      /\s/g,
      "",
    );
    if (!BASE64.test(payload)) throw new ContentError(errors.invalidBase64(displayPath));
    const bytes = Buffer.from(payload, "base64");
    checkSize(displayPath, bytes.length, maxBytes);
    return { mimeType, text: null, bytes, size: bytes.length };
  }
  if (!isStorableText(content)) throw new ContentError(errors.malformedText(displayPath));
  const size = Buffer.byteLength(content, "utf8");
  checkSize(displayPath, size, maxBytes);
  return { mimeType, text: content, bytes: null, size };
}

export function bodyForUpload(path: string, data: Uint8Array, maxBytes: number): FileBody {
  if (!(data instanceof Uint8Array)) throw new ContentError(errors.uploadNotBytes(path));
  checkSize(path, data.byteLength, maxBytes);
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const mimeType = getMimeType(path);
  if (isTextMimeType(mimeType)) {
    let text: string | null = null;
    try {
      text = strictUtf8.decode(bytes);
    } catch {
      // not UTF-8: falls through to binary
    }
    if (text !== null && !text.includes("\u0000")) return { mimeType, text, bytes: null, size: bytes.length };
    return { mimeType: OCTET_STREAM, text: null, bytes: Buffer.from(bytes), size: bytes.length };
  }
  return { mimeType, text: null, bytes: Buffer.from(bytes), size: bytes.length };
}

/** A plain Uint8Array view (deepagents and users compare with ArrayBuffer.isView). */
export function toBytes(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** edit()'s old and new strings must be storable text, like written content. */
export function checkEditStrings(displayPath: string, ...strings: unknown[]): void {
  for (const s of strings) {
    if (typeof s !== "string" || !isStorableText(s)) throw new ContentError(errors.malformedText(displayPath));
  }
}

/** A search's time budget: the caller's `timeoutMs` when given (a positive number), else the default. */
export function searchBudgetMs(requested: unknown, fallback: number): number {
  if (requested === undefined || requested === null) return fallback;
  if (typeof requested !== "number" || !Number.isFinite(requested) || requested < 1 || requested > INT4_MAX) {
    throw new ContentError(errors.invalidTimeout(requested));
  }
  return Math.floor(requested);
}
