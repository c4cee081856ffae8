/** Bounded concurrency for backends that make one request per file (S3), and retry pacing. */

/**
 * The pause before the next try of a read-modify-write that lost a race (attempt from 1): random,
 * up to 5 ms doubling to 200 ms, so writers that collided do not collide again in step.
 */
export const jitteredBackoff = (attempt: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 5 * 2 ** Math.min(attempt, 6))));

/** Maps `items` with at most `limit` calls in flight; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i], i);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/**
 * `fetch` over `items` with up to `limit` in flight, yielded strictly in input order: ordered
 * output and bounded parallelism. A consumer that stops (return() of the iterator) starts no more
 * fetches; those in flight settle quietly. Used by grep on S3, which stops at its cap.
 */
export async function* orderedFetches<T, R>(
  items: readonly T[],
  limit: number,
  fetch: (item: T) => Promise<R>,
): AsyncGenerator<[R, T]> {
  const inFlight: Array<Promise<R>> = [];
  let started = 0;
  const fill = () => {
    while (started < items.length && inFlight.length < limit) {
      const p = fetch(items[started++]);
      // Awaited in order below; a fetch that fails while an earlier one is still awaited (the
      // endpoint went down under several requests), or after the consumer stopped or failed,
      // must not be an unhandled rejection (which ends the process).
      p.catch(() => {});
      inFlight.push(p);
    }
  };
  fill();
  for (let i = 0; i < items.length; i++) {
    const result = await inFlight.shift()!;
    yield [result, items[i]];
    fill(); // only once the consumer asks for more: a consumer that stopped starts nothing new
  }
}
