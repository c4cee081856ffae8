/**
 * Object texts keyed by (key, ETag), bounded in bytes, least recently used out first: a second
 * grep over unchanged objects downloads nothing, and a changed object (new ETag) is never served
 * stale.
 */
export class TextCache {
  readonly #entries = new Map<string, { etag: string; text: string; bytes: number }>();
  #bytes = 0;

  constructor(readonly capacityBytes: number) {}

  get size(): number {
    return this.#bytes;
  }

  get(key: string, etag: string): string | undefined {
    const entry = this.#entries.get(key);
    if (!entry || entry.etag !== etag) return undefined;
    this.#entries.delete(key); // re-insert: most recently used last
    this.#entries.set(key, entry);
    return entry.text;
  }

  set(key: string, etag: string, text: string, bytes: number): void {
    this.delete(key);
    if (bytes > this.capacityBytes) return;
    this.#entries.set(key, { etag, text, bytes });
    this.#bytes += bytes;
    for (const [oldest, entry] of this.#entries) {
      if (this.#bytes <= this.capacityBytes) break;
      this.#entries.delete(oldest);
      this.#bytes -= entry.bytes;
    }
  }

  delete(key: string): void {
    const entry = this.#entries.get(key);
    if (entry) {
      this.#entries.delete(key);
      this.#bytes -= entry.bytes;
    }
  }
}
